/**
 * PackIndexFile (src/git/pack-index-file.ts) over hand-built indexes: the 64-bit offset table,
 * IDs sharing a prefix, and the refusals. Real packs are compared with `git show-index` in
 * pack-index-file-vs-git.test.ts.
 */
import t from 'tap';
import { PackIndexFile } from '../src/git/pack-index-file';
import { handIndex } from './support/hand-pack-index';

t.test('offsets beyond 2 GiB come from the 64-bit table', async (t) => {
  const items = [
    { oid: Buffer.alloc(20, 0xc0), offset: 12 },
    { oid: Buffer.alloc(20, 0x10), offset: 2 ** 33 + 7 },
    { oid: Buffer.alloc(20, 0x80), offset: 0x7fffffff },
    { oid: Buffer.alloc(20, 0x20), offset: 2 ** 31 },
  ];
  const file = new PackIndexFile(handIndex(items, 20), 20);
  t.same([...file.offsets], [12, 0x7fffffff, 2 ** 31, 2 ** 33 + 7]);
  t.same(file.oid(3), Buffer.alloc(20, 0x10));
  t.equal(file.positionOf(Buffer.alloc(20, 0x10)), 3);
  t.equal(file.positionOf(Buffer.alloc(20, 0x20)), 2);
  t.equal(file.positionAtOffset(2 ** 33 + 7), 3);
});

t.test('IDs that share their first four bytes are told apart by the whole name', async (t) => {
  const id = (tail: number) => {
    const oid = Buffer.alloc(20, 0x5a);
    oid[19] = tail;
    return oid;
  };
  const items = [1, 3, 5, 7, 9].map((tail, k) => ({ oid: id(tail), offset: 12 + 100 * k }));
  const file = new PackIndexFile(handIndex(items, 20), 20);
  for (const [k, item] of items.entries()) {
    t.equal(file.positionOf(item.oid), k, `present ...${item.oid[19]}`);
    t.ok(file.has(item.oid));
  }
  for (const tail of [0, 2, 4, 6, 8, 10]) {
    t.equal(file.positionOf(id(tail)), -1, `absent ...${tail} between present ones`);
    t.notOk(file.has(id(tail)));
  }
});

t.test('refusals', async (t) => {
  const good = handIndex([{ oid: Buffer.alloc(20, 1), offset: 12 }], 20);
  t.doesNotThrow(() => new PackIndexFile(good, 20));
  t.throws(() => new PackIndexFile(good.subarray(0, 1000), 20), { name: 'RangeError', message: 'not a version 2 pack index' }, 'shorter than a fan-out table');
  const v1 = Buffer.from(good);
  v1.writeUInt32BE(1, 4);
  t.throws(() => new PackIndexFile(v1, 20), { message: 'not a version 2 pack index' }, 'version 1');
  const noMagic = Buffer.from(good);
  noMagic[0] = 0;
  t.throws(() => new PackIndexFile(noMagic, 20), { message: 'not a version 2 pack index' }, 'no magic');
  t.throws(() => new PackIndexFile(good.subarray(0, good.length - 1), 20), { message: 'truncated pack index' }, 'one byte short');
  const lying = Buffer.from(good);
  lying.writeUInt32BE(1000, 8 + 255 * 4);
  t.throws(() => new PackIndexFile(lying, 20), { message: 'truncated pack index' }, 'a count larger than the file');
});

t.test('hasAt reads an ID in place, at any offset of a larger buffer', async (t) => {
  const present = [Buffer.alloc(20, 0x11), Buffer.alloc(20, 0x99), Buffer.alloc(20, 0xee)];
  const file = new PackIndexFile(handIndex(present.map((oid, k) => ({ oid, offset: 12 + 50 * k })), 20), 20);
  const absent = Buffer.alloc(20, 0x99);
  absent[19] = 0;
  const ids = Buffer.concat([Buffer.alloc(3), present[2], absent, present[0], present[1]]);
  t.same(
    [3, 23, 43, 63].map((at) => file.hasAt(ids, at)),
    [true, false, true, true],
  );
});
