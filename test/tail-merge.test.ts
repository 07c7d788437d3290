/**
 * Tail merging (src/remote/tail-merge.ts): after a push, the newest 16 containers of the same
 * weight become one, so that a store nobody runs gc on does not make every clone open one
 * container per push. What a user stakes on it: every object stays readable, by this clone and by
 * another, deltas included; refs do not move; a merge that loses the publication race changes
 * nothing; gc's containers are never merged.
 */
import t from 'tap';
import { containerKey } from '../src/format/constants';
import type { ContainerRef } from '../src/format/manifest';
import { keepsObjectsOf, MERGE_FANOUT, MERGE_MAX_BYTES, mergeTail, tailToMerge } from '../src/remote/tail-merge';
import { localRemote, publishManifest, pushObjects, readObjects } from './support/local-remote';
import { blob, TestObject } from './support/test-pack';

let n = 0;
/** A container as a manifest lists it; only the fields tailToMerge reads matter. */
function ref(over: Partial<ContainerRef> = {}): ContainerRef {
  const id = (n++).toString(16).padStart(32, '0');
  return {
    id,
    size: 1000,
    indexOffset: 0,
    indexLength: 0,
    objects: 1,
    indexHash: '',
    preambleLength: 0,
    preambleHash: '',
    keyId: 'k',
    wrappedKey: '',
    ...over,
  };
}
const many = (count: number, over: Partial<ContainerRef> = {}) => Array.from({ length: count }, () => ref(over));

t.test('which tail is merged: the newest 16 containers, when they stand for the same number of pushes', async (t) => {
  t.equal(MERGE_FANOUT, 16);
  t.equal(tailToMerge(many(15)), undefined, '15 one-push containers: not yet');
  const sixteen = many(16);
  t.same(tailToMerge([ref({ size: 1 << 30 }), ...sixteen]), sixteen, 'the newest 16; an older container is left out');
  t.equal(tailToMerge([...many(15), ref({ pushes: 16, consolidates: [] })]), undefined, 'weights differ');
  const tier = many(16, { pushes: 16, consolidates: [] });
  t.same(tailToMerge([...many(3), ...tier]), tier, 'sixteen merged containers of 16 pushes make one of 256');
  t.equal(tailToMerge([...many(15), ref({ consolidates: [] })]), undefined, "gc's consolidated container (no `pushes`) is never merged");
  t.equal(tailToMerge(many(16, { size: MERGE_MAX_BYTES / 16 + 1 })), undefined, `a tail over ${MERGE_MAX_BYTES} bytes is left alone`);
  t.ok(tailToMerge(many(16, { size: MERGE_MAX_BYTES / 16 })), 'exactly at the limit is merged');
});

t.test('keepsObjectsOf: a merged container keeps the objects of the containers it names, gc’s does not', async (t) => {
  const before = many(3);
  const ids = before.map((c) => c.id);
  t.ok(keepsObjectsOf({ containers: [ref({ pushes: 3, consolidates: ids })] }, { containers: before }));
  t.notOk(keepsObjectsOf({ containers: [ref({ consolidates: ids })] }, { containers: before }), "gc's consolidation dropped unreachable objects");
  t.notOk(keepsObjectsOf({ containers: before.slice(1) }, { containers: before }));
  t.ok(keepsObjectsOf(null, null));
});

t.test('a merge of 16 pushes: one container in their place, every object readable by any clone, refs unchanged', async (t) => {
  const remote = await localRemote(t);
  const first = blob('the first push, never merged\n'.repeat(20));
  await pushObjects(remote.repo, [{ data: first.data }], { 'refs/heads/main': first.oid });
  const expected = new Map<string, Buffer>([[first.oid, first.data]]);
  const earlier = blob('a base stored in the second push\n'.repeat(40));
  // 6 MiB of text: sealed with CBC-HMAC although it compresses to a few KiB.
  const cbc = Buffer.from('six mebibytes of the same line\n'.repeat(Math.ceil((6 << 20) / 31)));
  const parts: ContainerRef[] = [];
  for (let i = 0; i < MERGE_FANOUT; i++) {
    const own = blob(`push ${i}\n`);
    const objects: TestObject[] = [{ data: own.data }];
    if (i === 0) objects.push({ data: earlier.data });
    if (i === 3) objects.push({ data: Buffer.from('delta on a base two pushes back\n'), deltaOf: earlier });
    if (i === 5) objects.push({ data: Buffer.from('delta on a base outside the tail\n'), deltaOf: first });
    if (i === 7) objects.push({ data: earlier.data }); // the same object stored twice
    if (i === 9) objects.push({ data: cbc });
    const pushed = await pushObjects(remote.repo, objects, { [`refs/heads/b${i}`]: own.oid });
    pushed.oids.forEach((oid, k) => expected.set(oid, objects[k].data));
    parts.push(pushed.container);
  }
  const before = await remote.repo.latest();
  t.equal(before.manifest!.containers.length, MERGE_FANOUT + 1);

  t.equal(await mergeTail(remote.repo, before, remote.dir), 1, 'one merge published');
  const after = await remote.repo.latest();
  const listed = after.manifest!.containers;
  t.equal(after.manifest!.generation, before.manifest!.generation + 1);
  t.equal(listed.length, 2, 'the first push and the merged container');
  t.equal(listed[0].id, before.manifest!.containers[0].id);
  t.same(
    listed[1].consolidates,
    parts.map((c) => c.id),
    'it names the containers it stands for',
  );
  t.equal(listed[1].pushes, MERGE_FANOUT);
  t.equal(listed[1].objects, expected.size - 1, 'every object of the 16 once (the duplicate stored once)');
  t.same(after.manifest!.refs, before.manifest!.refs, 'no ref moved');
  t.ok(await remote.storage.head(containerKey(parts[0].id)), 'the merged containers stay for readers of older manifests');

  for (const [who, repo] of [
    ['this clone', remote.repo],
    ['another clone', await remote.clone('other')],
  ] as const) {
    const read = await readObjects(repo, [...expected.keys()]);
    const wrong = [...expected].filter(([oid, data]) => !read.get(oid)?.equals(data)).map(([oid]) => oid);
    t.same(wrong, [], `${who} reads every object back, deltas rebuilt and checked against their IDs`);
  }
});

t.test('a merge that loses the publication race changes nothing', async (t) => {
  const remote = await localRemote(t);
  for (let i = 0; i < MERGE_FANOUT; i++) {
    const b = blob(`race ${i}\n`);
    await pushObjects(remote.repo, [{ data: b.data }], { 'refs/heads/main': b.oid });
  }
  const stale = await remote.repo.latest();
  const late = blob('a push that lands first\n');
  await pushObjects(await remote.clone('pusher'), [{ data: late.data }], { 'refs/heads/late': late.oid });
  const published = await remote.repo.latest();
  t.equal(await mergeTail(remote.repo, stale, remote.dir), 0);
  const now = await remote.repo.latest();
  t.equal(now.hash, published.hash, 'the newest manifest is the push’s');
  t.equal(now.manifest!.containers.length, MERGE_FANOUT + 1);
  t.equal((await readObjects(remote.repo, [late.oid])).get(late.oid)?.toString(), late.data.toString());
});

t.test('fewer than 16 containers: nothing is merged or published', async (t) => {
  const remote = await localRemote(t);
  for (let i = 0; i < MERGE_FANOUT - 1; i++) {
    const b = blob(`few ${i}\n`);
    await pushObjects(remote.repo, [{ data: b.data }], { 'refs/heads/main': b.oid });
  }
  const snapshot = await remote.repo.latest();
  t.equal(await mergeTail(remote.repo, snapshot, remote.dir), 0);
  t.equal((await remote.repo.latest()).hash, snapshot.hash);
});

t.test('a merge that completes a tier merges the tier next: 15 containers of 16 pushes and 16 pushes make one of 256', async (t) => {
  const remote = await localRemote(t);
  const oids: string[] = [];
  for (let i = 0; i < 2 * MERGE_FANOUT - 1; i++) {
    const b = blob(`tier ${i}\n`);
    oids.push(b.oid);
    await pushObjects(remote.repo, [{ data: b.data }], { [`refs/heads/b${i}`]: b.oid });
    // The first 15 stand in for containers that earlier merges made of 16 pushes each.
    if (i === MERGE_FANOUT - 2) await publishManifest(remote.repo, (m) => ({ containers: m!.containers.map((c) => ({ ...c, pushes: 16, consolidates: [] })) }));
  }
  t.equal(await mergeTail(remote.repo, await remote.repo.latest(), remote.dir), 2, 'two merges in a row');
  const { manifest } = await remote.repo.latest();
  t.same(
    manifest!.containers.map((c) => [c.pushes, c.objects]),
    [[256, 31]],
    'one container, standing for 256 pushes, holding the 31 objects',
  );
  const read = await readObjects(await remote.clone('other'), oids);
  t.equal(read.size, oids.length, 'another clone reads them all');
});
