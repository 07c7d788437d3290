/**
 * The commit choice of shallow fetches (src/remote/history-walk.ts) on small made-up histories,
 * with the boundaries git's upload-pack draws (shallow.c get_shallow_commits and
 * get_shallow_commits_by_rev_list); the end-to-end tests compare with git itself on real ones.
 */
import t from 'tap';
import type { CommitFacts } from '../src/git/git-object';
import { HistoryRequest, INFINITE_DEPTH, walkHistory } from '../src/remote/history-walk';

/** A history from "child: parent parent" lines; commit times are their position in `times` order. */
function graph(lines: string[], times: Record<string, number> = {}): Map<string, CommitFacts> {
  const g = new Map<string, CommitFacts>();
  for (const line of lines) {
    const [child, parents] = line.split(':');
    g.set(child.trim(), {
      tree: `tree-${child.trim()}`,
      parents: (parents ?? '').trim().split(/\s+/).filter(Boolean),
      committerTime: times[child.trim()] ?? 100,
    });
  }
  return g;
}

function request(g: Map<string, CommitFacts>, over: Partial<HistoryRequest>): HistoryRequest & { reads: string[][] } {
  const reads: string[][] = [];
  return {
    wants: [],
    clientShallow: new Set(),
    isLocal: () => false,
    inStore: (oid) => g.has(oid),
    read: async (oids) => {
      reads.push(oids);
      return new Map(
        oids.map((o) => {
          if (!g.has(o)) throw new Error(`read of unknown ${o}`);
          return [o, g.get(o)!] as [string, CommitFacts];
        }),
      );
    },
    reads,
    ...over,
  };
}

const sorted = (s: Iterable<string> | undefined) => [...(s ?? [])].sort();

// a linear history e ← d ← c ← b ← a, plus a merge: m has parents e and x, x ← y ← c
const linear = graph(['e: d', 'd: c', 'c: b', 'b: a', 'a:']);
const merged = graph(['m: e x', 'e: d', 'd: c', 'x: y', 'y: c', 'c: b', 'b: a', 'a:']);

t.test('depth N keeps N commits from each tip; the last are shallow', async (t) => {
  const one = await walkHistory(request(linear, { wants: ['e'], deepen: { depth: 1 } }));
  t.same(sorted(one.commits.keys()), ['e']);
  t.same(sorted(one.shallow), ['e']);
  const three = await walkHistory(request(linear, { wants: ['e'], deepen: { depth: 3 } }));
  t.same(sorted(three.commits.keys()), ['c', 'd', 'e']);
  t.same(sorted(three.shallow), ['c']);
  const all = await walkHistory(request(linear, { wants: ['e'], deepen: { depth: 5 } }));
  t.same(sorted(all.shallow), ['a'], 'a root at exactly the depth is marked shallow, as git does');
  const more = await walkHistory(request(linear, { wants: ['e'], deepen: { depth: 6 } }));
  t.same(sorted(more.shallow), [], 'a depth beyond the history: not shallow');
});

t.test('depth counts the shortest path through a merge', async (t) => {
  const r = await walkHistory(request(merged, { wants: ['m'], deepen: { depth: 3 } }));
  t.same(sorted(r.commits.keys()), ['d', 'e', 'm', 'x', 'y']);
  t.same(sorted(r.shallow), ['d', 'y']);
  const four = await walkHistory(request(merged, { wants: ['m'], deepen: { depth: 4 } }));
  t.same(sorted(four.commits.keys()), ['c', 'd', 'e', 'm', 'x', 'y']);
  t.same(sorted(four.shallow), ['c'], 'c is at distance 3 along both paths');
});

t.test('deepening a shallow clone: the old boundary is unshallowed, its parents come, local commits do not', async (t) => {
  const local = new Set(['e', 'd']);
  const r = await walkHistory(request(linear, { wants: ['e'], deepen: { depth: 4 }, clientShallow: new Set(['d']), isLocal: (o) => local.has(o) }));
  t.same(sorted(r.commits.keys()), ['b', 'c'], 'only what the clone lacks');
  t.same(sorted(r.shallow), ['b']);
});

t.test('--deepen=<n> counts from the current shallow commits', async (t) => {
  const local = new Set(['e', 'd']);
  const r = await walkHistory(
    request(linear, { wants: ['e'], deepen: { depth: 2, relative: true }, clientShallow: new Set(['d']), isLocal: (o) => local.has(o) }),
  );
  t.same(sorted(r.commits.keys()), ['b', 'c']);
  t.same(sorted(r.shallow), ['b']);
});

t.test('--unshallow: everything below the shallow commits, and no shallow file', async (t) => {
  const local = new Set(['e', 'd']);
  const r = await walkHistory(
    request(linear, { wants: ['e'], deepen: { depth: INFINITE_DEPTH }, clientShallow: new Set(['d']), isLocal: (o) => local.has(o) }),
  );
  t.same(sorted(r.commits.keys()), ['a', 'b', 'c']);
  t.same(sorted(r.shallow), []);
});

t.test('a fetch without depth into a shallow clone: new commits down to what the clone has; the shallow file stays', async (t) => {
  const g = graph(['g: f', 'f: e', 'e: d', 'd: c', 'c: b', 'b: a', 'a:']);
  const local = new Set(['e']);
  const r = await walkHistory(request(g, { wants: ['g'], clientShallow: new Set(['e']), isLocal: (o) => local.has(o) }));
  t.same(sorted(r.commits.keys()), ['f', 'g']);
  t.equal(r.shallow, undefined);
});

t.test('--shallow-since: commits at or after the time; those with an older parent are shallow', async (t) => {
  const times = { e: 50, d: 40, x: 45, y: 35, m: 60, c: 30, b: 20, a: 10 };
  const g = graph(['m: e x', 'e: d', 'd: c', 'x: y', 'y: c', 'c: b', 'b: a', 'a:'], times);
  const r = await walkHistory(request(g, { wants: ['m'], deepen: { since: 40 } }));
  t.same(sorted(r.commits.keys()), ['d', 'e', 'm', 'x']);
  t.same(sorted(r.shallow), ['d', 'x']);
  const none = walkHistory(request(g, { wants: ['m'], deepen: { since: 100 } }));
  await t.rejects(none, { code: 'BAD_CONFIG', message: /no commits selected for shallow requests/ });
});

t.test('--shallow-exclude: commits reachable from the excluded ref are left out', async (t) => {
  const r = await walkHistory(request(merged, { wants: ['m'], deepen: { not: ['y'] } }));
  t.same(sorted(r.commits.keys()), ['d', 'e', 'm', 'x']);
  t.same(sorted(r.shallow), ['d', 'x']);
});

t.test('the history walk reads commits in batches, level by level', async (t) => {
  const req = request(merged, { wants: ['m'] });
  const r = await walkHistory(req);
  t.equal(r.commits.size, 8);
  t.ok(req.reads.length <= 6, `${req.reads.length} batches for 8 commits`);
  t.same(req.reads[1].sort(), ['e', 'x'], 'both parents of the merge in one batch');
});
