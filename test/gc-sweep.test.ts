/**
 * collectGarbage (src/remote/gc.ts) in this process, on stores whose newest manifest lists one
 * container: gc then only sweeps, and needs no git. What it schedules and deletes is what a user
 * stakes their data on: every container the newest manifest lists stays, a push still under way
 * keeps its container, nothing goes before the grace period, and a schedule this clone cannot
 * authenticate is never acted on. Consolidation (git repacks) is in test/gc-consolidate.test.ts.
 */
import { utimesSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { containerKey, STORE_KEYS } from '../src/format/constants';
import { repositoryContext } from '../src/keys/key-provider';
import { collectGarbage } from '../src/remote/gc';
import { storeSchedule } from '../src/remote/gc-schedules';
import { localRemote, publishManifest, pushObjects, readObjects, storeObjects, createKey } from './support/local-remote';
import { blob } from './support/test-pack';

const HOUR = 3_600_000;
const a = blob('alpha\n'.repeat(30));
const b = blob('bravo\n');
const c = blob('charlie\n');
const d = blob('delta\n');

/**
 * A store after an earlier gc: pushes A and B, then X holding both objects, listed alone (it
 * consolidates A and B); C, an unlisted container of a push under way; D, one an interrupted push
 * left two days ago. gc opens the store as `git kmscrypt gc` does: outside any clone (no state).
 */
async function afterEarlierGc(t: Parameters<typeof localRemote>[0]) {
  const remote = await localRemote(t);
  const A = (await pushObjects(remote.repo, [{ data: a.data }], { 'refs/heads/main': a.oid })).container;
  const B = (await pushObjects(remote.repo, [{ data: b.data }], { 'refs/heads/main': b.oid, 'refs/heads/old': a.oid })).container;
  const X = (await pushObjects(remote.repo, [{ data: a.data }, { data: b.data }], {})).container;
  await publishManifest(remote.repo, () => ({ containers: [{ ...X, consolidates: [A.id, B.id] }] }));
  const C = await storeObjects(remote.repo, [{ data: c.data }]);
  const D = await storeObjects(remote.repo, [{ data: d.data }]);
  const twoDaysAgo = new Date(Date.now() - 48 * HOUR);
  utimesSync(join(remote.dir, 'store', containerKey(D.id)), twoDaysAgo, twoDaysAgo);
  const gcRepo = await remote.clone('gc', { stateDir: undefined });
  return { remote, gcRepo, A, B, C, D, X };
}

async function storedContainers(remote: { storage: { list(prefix: string): Promise<Array<{ key: string }>> } }): Promise<string[]> {
  return (await remote.storage.list(STORE_KEYS.containerPrefix)).map((o) => o.key.slice(STORE_KEYS.containerPrefix.length)).sort();
}

t.test('gc schedules what the newest manifest no longer needs and deletes it only after the grace period', async (t) => {
  const { remote, gcRepo, A, B, C, D, X } = await afterEarlierGc(t);
  const manifests = (await remote.storage.list(STORE_KEYS.manifestPrefix)).length;

  const first = await collectGarbage(gcRepo, { graceMs: HOUR, progress: false });
  t.same(
    first,
    {
      scheduled: 3,
      deletedContainers: 0,
      deletedManifests: 0,
      generation: manifests,
      containersBefore: 1,
      objectsBefore: 2,
      objectsAfter: 2,
      bytesBefore: X.size,
      bytesAfter: X.size,
    },
    'A, B (superseded by X) and D (left two days ago) scheduled; nothing deleted within the grace period',
  );
  t.same(await storedContainers(remote), [A.id, B.id, C.id, D.id, X.id].sort(), 'every container is still stored');
  t.equal((await remote.storage.list(STORE_KEYS.schedulePrefix)).length, 1, 'one sealed schedule');

  const second = await collectGarbage(gcRepo, { graceMs: 0, progress: false });
  t.equal(second.scheduled, 0, 'nothing new to schedule');
  t.equal(second.deletedContainers, 3, 'past the grace period the three are deleted');
  t.same(await storedContainers(remote), [C.id, X.id].sort(), "X, which the manifest lists, and C, a push's under way, are kept");
  t.equal(second.deletedManifests, 0, 'no history object attests the old manifests: none is deleted');
  t.equal((await remote.storage.list(STORE_KEYS.manifestPrefix)).length, manifests, 'every manifest is still stored');
  t.equal((await remote.storage.list(STORE_KEYS.schedulePrefix)).length, 0, 'the schedule acted on is removed');

  const objects = await readObjects(await remote.clone('after'), [a.oid, b.oid]);
  t.same([...objects.values()], [a.data, b.data], 'a new clone reads every object the refs name');
});

t.test('a container the newest manifest lists again is not deleted, though a schedule names it', async (t) => {
  const { remote, gcRepo, A, B, C, X } = await afterEarlierGc(t);
  await collectGarbage(gcRepo, { graceMs: HOUR, progress: false });
  // A later manifest lists A again (as a rollback of gc by hand would).
  await publishManifest(remote.repo, () => ({ refs: { 'refs/heads/main': a.oid }, containers: [A] }));
  const report = await collectGarbage(gcRepo, { graceMs: 0, progress: false });
  t.equal(report.deletedContainers, 2, 'B and D are deleted');
  t.same(await storedContainers(remote), [A.id, C.id, X.id].sort(), 'A stays; X, now listed by no manifest but young, waits a day');
  t.notOk((await storedContainers(remote)).includes(B.id));
});

t.test('a schedule sealed under a key this clone does not trust is never acted on', async (t) => {
  const { remote, gcRepo, C } = await afterEarlierGc(t);
  // Whoever can write to the store plants a schedule, dated two days back, that names C.
  const intruder = createKey(remote.keyring, 'alias/intruder');
  const dataKey = await remote.repo.config.keys.generateDataKey(intruder.arn, repositoryContext(remote.repo.repositoryId));
  const createdAt = new Date(Date.now() - 48 * HOUR).toISOString();
  t.ok(await storeSchedule(remote.repo, { createdAt, containers: [C.id], generation: 0 }, dataKey), 'planted');
  dataKey.plaintext.fill(0);

  const report = await collectGarbage(gcRepo, { graceMs: HOUR, progress: false });
  t.equal(report.deletedContainers, 0, 'nothing deleted');
  t.ok((await storedContainers(remote)).includes(C.id), "C, a push's under way, is still stored");
  t.equal((await remote.storage.list(STORE_KEYS.schedulePrefix)).length, 1, "the planted schedule is gone; gc's own remains");
});
