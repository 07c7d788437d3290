/**
 * The check that a pack git stored holds every object the store claimed (src/remote/claimed-ids.ts):
 * the claims sorted into a pack index's name table, the one-comparison path, and the search per
 * object when the claims are not exactly the pack's objects.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { PackIndexFile } from '../src/git/pack-index-file';
import { checkClaimedIds, sortClaimedIds } from '../src/remote/claimed-ids';
import { handIndex } from './support/hand-pack-index';

const H = 20;
const idsOf = (oids: Buffer[]) => Buffer.concat(oids);

t.test('sortClaimedIds sorts as Buffer.compare does, across claims and chosen records', async (t) => {
  // Many IDs sharing their first two bytes (one bucket), and others spread out.
  const oids = Array.from({ length: 3000 }, (_, i) => {
    const id = randomBytes(H);
    if (i % 3 === 0) id.writeUInt16BE(0xabcd, 0);
    return id;
  });
  const first = idsOf(oids.slice(0, 1000));
  const second = idsOf(oids.slice(1000));
  const chosen = [0, 5, 17, 1999];
  const sorted = sortClaimedIds([{ ids: first }, { ids: second, records: chosen }], H);
  const expected = [...oids.slice(0, 1000), ...chosen.map((i) => oids[1000 + i])].sort(Buffer.compare);
  t.same(sorted, Buffer.concat(expected));
});

t.test('checkClaimedIds', async (t) => {
  const oids = Array.from({ length: 50 }, () => randomBytes(H));
  const idx = new PackIndexFile(handIndex(oids.map((oid, k) => ({ oid, offset: 12 + 10 * k })), H), H);
  const check = (claimed: Array<{ ids: Buffer; records?: number[] }>) => () => checkClaimedIds(idx, claimed, sortClaimedIds(claimed, H));

  t.doesNotThrow(check([{ ids: idsOf(oids.slice(0, 20)) }, { ids: idsOf(oids.slice(20)) }]), 'exactly the pack: one comparison');
  t.doesNotThrow(check([{ ids: idsOf(oids), records: [3, 7, 7, 40] }]), 'some of them, one twice: looked up one by one');
  const stranger = randomBytes(H);
  t.throws(check([{ ids: idsOf([...oids.slice(0, 49), stranger]) }]), { code: 'TAMPERED', message: new RegExp(`object ${stranger.toString('hex')} decrypted to content with another ID`) }, 'as many objects, one of them not in the pack');
  t.throws(check([{ ids: idsOf([oids[0], stranger]), records: [1] }]), { code: 'TAMPERED' }, 'a chosen record not in the pack');
});
