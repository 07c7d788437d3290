/**
 * What a whole-container fetch downloads (src/remote/fetch-selection.ts), against a LocalStorage
 * store with real containers: the containers a clone has not fetched, the objects it lacks and
 * the delta bases those need, each once. The local repository's objects are a set here; the
 * end-to-end tests (e2e-local, request-counts) fetch through git.
 */
import t from 'tap';
import { isKmscryptError } from '../src/errors';
import type { ContainerRef } from '../src/format/manifest';
import { openContainers } from '../src/remote/container-reader';
import { ObjectPresence, Selection, selectRecords, unfetchedContainers } from '../src/remote/fetch-selection';
import type { RemoteRepository } from '../src/remote/remote-repository';
import { localRemote, publishManifest, pushObjects } from './support/local-remote';
import { blob } from './support/test-pack';

const a = blob('alpha\n'.repeat(40));
const b = blob('bravo\n');
const c = blob('charlie\n');
const aEdited = blob('alpha\n'.repeat(39) + 'alpha, edited\n');
const missing = blob('never stored\n');

/** The local repository: a fixed set of objects. */
function has(...oids: string[]): ObjectPresence {
  const set = new Set(oids);
  return { present: async (asked) => new Set([...asked].filter((o) => set.has(o))) };
}

/** Container → object IDs chosen from it, in the order a fetch sends them. */
function chosen(selections: Selection[], containers: ContainerRef[]): Array<[number, string[]]> {
  return selections.map((s) => [containers.findIndex((r) => r.id === s.container.ref.id), s.records.map((i) => s.container.index.oidHex(i))]);
}

async function choose(repo: RemoteRepository, fetchFrom: number[], local: ObjectPresence | null) {
  const { manifest } = await repo.latest('read');
  const opened = await openContainers(
    repo,
    fetchFrom.map((k) => manifest!.containers[k]),
  );
  return chosen(await selectRecords(repo, manifest!, opened, local), manifest!.containers);
}

t.test('a clone takes every object once, one that two pushes both stored included', async (t) => {
  const { repo } = await localRemote(t);
  await pushObjects(repo, [{ data: a.data }, { data: b.data }], { 'refs/heads/main': a.oid });
  await pushObjects(repo, [{ data: b.data }, { data: c.data }], { 'refs/heads/other': c.oid });
  const picked = await choose(repo, [0, 1], null);
  t.same(picked, [
    [0, [a.oid, b.oid]],
    [1, [c.oid]],
  ]);
});

t.test('a fetch takes only the objects the clone lacks', async (t) => {
  const { repo } = await localRemote(t);
  await pushObjects(repo, [{ data: a.data }], { 'refs/heads/main': a.oid });
  await pushObjects(repo, [{ data: b.data }, { data: c.data }], { 'refs/heads/main': c.oid });
  t.same(await choose(repo, [1], has(a.oid, b.oid)), [[1, [c.oid]]], 'b, which the clone has, is left out');
  t.same(await choose(repo, [1], has(a.oid, b.oid, c.oid)), [], 'nothing to download');
});

t.test('a delta whose base the clone lacks brings the base, from the older container that holds it', async (t) => {
  const { repo } = await localRemote(t);
  await pushObjects(repo, [{ data: a.data }, { data: b.data }], { 'refs/heads/main': a.oid });
  await pushObjects(repo, [{ data: aEdited.data, deltaOf: a }], { 'refs/heads/main': aEdited.oid });
  t.same(
    await choose(repo, [1], has(b.oid)),
    [
      [1, [aEdited.oid]],
      [0, [a.oid]],
    ],
    'the base a, and nothing else of the first container',
  );
  t.same(await choose(repo, [1], has(a.oid, b.oid)), [[1, [aEdited.oid]]], 'a base the clone has is not downloaded');
});

t.test('a delta base in no container is a corrupt store, named as such', async (t) => {
  const { repo } = await localRemote(t);
  await pushObjects(repo, [{ data: a.data }], { 'refs/heads/main': a.oid });
  await pushObjects(repo, [{ data: aEdited.data, deltaOf: missing }], { 'refs/heads/main': aEdited.oid });
  const err = await choose(repo, [1], has()).catch((e: unknown) => e);
  t.ok(isKmscryptError(err, 'CORRUPT'), 'CORRUPT');
  t.match(isKmscryptError(err) ? err.data : {}, { fix: "run 'git kmscrypt verify'" }, 'with the command that says more');
});

t.test("containers a clone has fetched are not fetched again, nor a gc's container made only of them", async (t) => {
  const { repo } = await localRemote(t);
  const first = (await pushObjects(repo, [{ data: a.data }], { 'refs/heads/main': a.oid })).container;
  const second = (await pushObjects(repo, [{ data: b.data }], { 'refs/heads/main': b.oid })).container;
  const { manifest } = await publishManifest(repo, (m) => ({ containers: [{ ...m!.containers[1], id: 'c'.repeat(32), consolidates: [first.id, second.id] }] }));
  const ids = (refs: ContainerRef[]) => refs.map((r) => r.id);
  t.same(ids(unfetchedContainers(manifest!, new Set([first.id, second.id]))), [], 'a clone that fetched both skips the consolidated one');
  t.same(ids(unfetchedContainers(manifest!, new Set([first.id]))), ['c'.repeat(32)], 'a clone that missed one fetches it');
  t.same(ids(unfetchedContainers(manifest!, new Set(['c'.repeat(32)]))), [], 'one fetched is not fetched again');
  t.same(ids(unfetchedContainers(manifest!, new Set())), ['c'.repeat(32)], 'a new clone (or --refetch) fetches it');
});
