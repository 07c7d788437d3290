/**
 * What a push decides (src/remote/push-plan.ts), on made-up histories: which updates the remote
 * accepts, in git's own words, and the refs, HEAD and peeled tags of the manifest it publishes.
 * The end-to-end tests (git-semantics-local, e2e-local) drive the same rules through git.
 */
import t from 'tap';
import type { ContainerRef, Manifest } from '../src/format/manifest';
import { changesAnything, DELETE_CURRENT_BRANCH, evaluateUpdates, LocalHistory, plannedContent, ResolvedUpdate } from '../src/remote/push-plan';

const oid = (c: string) => c.repeat(40);
const [A, B, C, X, T1, T2] = ['a', 'b', 'c', 'e', '1', '2'].map(oid);

/** A local history from "child: parents" lines; `has` is every commit named there. */
function history(lines: string[]): LocalHistory & { asked: string[] } {
  const parents = new Map<string, string[]>();
  for (const line of lines) {
    const [child, rest] = line.split(':');
    parents.set(oid(child.trim()), (rest ?? '').trim().split(/\s+/).filter(Boolean).map(oid));
  }
  const asked: string[] = [];
  return {
    asked,
    async isAncestor(ancestor, descendant) {
      asked.push(`${ancestor.slice(0, 1)}..${descendant.slice(0, 1)}`);
      for (const todo = [descendant], seen = new Set<string>(); todo.length;) {
        const at = todo.pop()!;
        if (at === ancestor) return true;
        if (seen.has(at)) continue;
        seen.add(at);
        todo.push(...(parents.get(at) ?? []));
      }
      return false;
    },
    async has(o) {
      return parents.has(o);
    },
  };
}

function manifest(refs: Record<string, string>, over: Partial<Manifest> = {}): Manifest {
  return {
    repositoryId: '00000000-0000-4000-8000-000000000001',
    objectFormat: 'sha1',
    generation: 3,
    previous: null,
    createdAt: '2024-01-01T00:00:00.000Z',
    descriptorHash: '0'.repeat(64),
    keyId: 'arn:aws:kms:local:000000000000:key/k',
    head: 'refs/heads/main',
    refs,
    containers: [],
    ...over,
  };
}

const update = (dst: string, to: string | null, force = false): ResolvedUpdate => ({ dst, oid: to, force });
const NO_LEASES = new Map<string, string>();

// a ← b ← c on main; x is a commit of its own (a rewritten history).
const local = history(['a:', 'b: a', 'c: b', 'e:']);

t.test('a fast-forward is accepted; a non-fast-forward is refused unless forced', async (t) => {
  const remote = manifest({ 'refs/heads/main': B });
  const ff = await evaluateUpdates([update('refs/heads/main', C)], remote, NO_LEASES, local);
  t.same([...ff], [['refs/heads/main', undefined]], 'b → c moves forward');
  const rewind = await evaluateUpdates([update('refs/heads/main', A)], remote, NO_LEASES, local);
  t.same([...rewind], [['refs/heads/main', 'non-fast-forward']], "b → a would drop b: refused in git's words");
  const other = await evaluateUpdates([update('refs/heads/main', X)], remote, NO_LEASES, local);
  t.same([...other], [['refs/heads/main', 'non-fast-forward']], 'b → x (unrelated history) refused');
  const forced = await evaluateUpdates([update('refs/heads/main', X, true)], remote, NO_LEASES, local);
  t.same([...forced], [['refs/heads/main', undefined]], '+x is accepted');
});

t.test('a remote value this clone has never seen is "fetch first", as git says', async (t) => {
  const remote = manifest({ 'refs/heads/main': oid('9') });
  const verdicts = await evaluateUpdates([update('refs/heads/main', C)], remote, NO_LEASES, local);
  t.same([...verdicts], [['refs/heads/main', 'fetch first']]);
});

t.test('new refs, unchanged refs and deletions of missing refs are accepted without asking git', async (t) => {
  const h = history(['a:', 'b: a']);
  const remote = manifest({ 'refs/heads/main': B });
  const verdicts = await evaluateUpdates([update('refs/heads/new', A), update('refs/heads/main', B), update('refs/heads/gone', null)], remote, NO_LEASES, h);
  t.same([...verdicts.values()], [undefined, undefined, undefined]);
  t.same(h.asked, [], 'no ancestry question was needed');
  t.notOk(changesAnything([update('refs/heads/main', B), update('refs/heads/gone', null)], remote), 'nothing would change: no manifest to publish');
  t.ok(changesAnything([update('refs/heads/new', A)], remote));
});

t.test('an existing tag is never moved without force', async (t) => {
  const remote = manifest({ 'refs/heads/main': C, 'refs/tags/v1': A });
  const moved = await evaluateUpdates([update('refs/tags/v1', B)], remote, NO_LEASES, local);
  t.same([...moved], [['refs/tags/v1', 'already exists']], 'even a fast-forward of a tag is refused');
  const forced = await evaluateUpdates([update('refs/tags/v1', B, true)], remote, NO_LEASES, local);
  t.same([...forced], [['refs/tags/v1', undefined]]);
});

t.test('--force-with-lease: a stale lease refuses even a forced update; a lease that holds allows a rewind', async (t) => {
  const remote = manifest({ 'refs/heads/main': B });
  const stale = await evaluateUpdates([update('refs/heads/main', X, true)], remote, new Map([['refs/heads/main', A]]), local);
  t.same([...stale], [['refs/heads/main', 'stale info']]);
  const holds = await evaluateUpdates([update('refs/heads/main', A)], remote, new Map([['refs/heads/main', B]]), local);
  t.same([...holds], [['refs/heads/main', undefined]]);
  const expectAbsent = await evaluateUpdates([update('refs/heads/new', A)], remote, new Map([['refs/heads/new', '']]), local);
  t.same([...expectAbsent], [['refs/heads/new', undefined]], "'' leases a ref that must not exist yet");
  const butExists = await evaluateUpdates([update('refs/heads/main', C)], remote, new Map([['refs/heads/main', '']]), local);
  t.same([...butExists], [['refs/heads/main', 'stale info']]);
});

t.test('the branch HEAD names cannot be deleted, even with force', async (t) => {
  const remote = manifest({ 'refs/heads/main': B, 'refs/heads/topic': A });
  const verdicts = await evaluateUpdates([update('refs/heads/main', null, true), update('refs/heads/topic', null)], remote, NO_LEASES, local);
  t.same(
    [...verdicts],
    [
      ['refs/heads/main', DELETE_CURRENT_BRANCH],
      ['refs/heads/topic', undefined],
    ],
  );
});

t.test('the next manifest: refs updated, deleted and sorted; the container added once', async (t) => {
  const container = { id: 'f'.repeat(32) } as ContainerRef;
  const old = { id: '0'.repeat(32) } as ContainerRef;
  const base = manifest({ 'refs/heads/main': B, 'refs/heads/topic': A }, { containers: [old] });
  const planned = plannedContent(
    base,
    [update('refs/heads/zeta', C), update('refs/heads/main', C), update('refs/heads/topic', null)],
    container,
    undefined,
    new Map(),
  );
  t.same(planned.refs, { 'refs/heads/main': C, 'refs/heads/zeta': C });
  t.same(Object.keys(planned.refs), ['refs/heads/main', 'refs/heads/zeta'], 'in name order');
  t.equal(planned.head, 'refs/heads/main', 'HEAD is kept');
  t.same(
    planned.containers.map((c) => c.id),
    [old.id, container.id],
  );
  const again = plannedContent({ ...base, containers: [old, container] }, [update('refs/heads/main', C)], container, undefined, new Map());
  t.same(
    again.containers.map((c) => c.id),
    [old.id, container.id],
    'a retry after a lost race does not list it twice',
  );
  t.same(plannedContent(base, [update('refs/heads/main', C)], undefined, undefined, new Map()).containers, [old], 'nothing new to store: no container');
});

t.test('the first branch pushed to an empty remote becomes HEAD, the local current branch if pushed', async (t) => {
  const pushed = [update('refs/heads/alpha', A), update('refs/heads/main', B), update('refs/tags/v1', C)];
  t.equal(plannedContent(null, pushed, undefined, 'refs/heads/main', new Map()).head, 'refs/heads/main');
  t.equal(plannedContent(null, pushed, undefined, 'refs/heads/other', new Map()).head, 'refs/heads/alpha', 'not pushed: the first branch');
  t.equal(plannedContent(null, [update('refs/tags/v1', C)], undefined, undefined, new Map()).head, null, 'no branch: no HEAD');
  const preset = manifest({}, { head: 'refs/heads/trunk' });
  t.equal(
    plannedContent(preset, [update('refs/heads/alpha', A), update('refs/heads/trunk', B)], undefined, undefined, new Map()).head,
    'refs/heads/trunk',
    'a HEAD set before any branch existed (set-head) stays when its branch is pushed',
  );
});

t.test("peeled tags: what this clone peeled, or the base's entry for the same tag object", async (t) => {
  const base = manifest({ 'refs/heads/main': C, 'refs/tags/v1': T1 }, { peeled: { 'refs/tags/v1': A } });
  const planned = plannedContent(base, [update('refs/tags/v2', T2), update('refs/tags/v1-copy', T1)], undefined, undefined, new Map([[T2, B]]));
  t.same(planned.peeled, { 'refs/tags/v1': A, 'refs/tags/v1-copy': A, 'refs/tags/v2': B });
  const deleted = plannedContent(base, [update('refs/tags/v1', null)], undefined, undefined, new Map());
  t.same(deleted.peeled, {}, 'a deleted tag leaves no peeled entry');
});
