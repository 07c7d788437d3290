/**
 * git pack entry headers (src/git/pack-format.ts): round trips of encode/parse for every type and
 * for large sizes, OFS_DELTA and REF_DELTA base references, refusals. The headers of real packs are
 * compared with `git verify-pack -v` in pack-format-vs-git.test.ts.
 */
import t from 'tap';
import { encodeEntryHeader, OBJ_BLOB, OBJ_COMMIT, OBJ_OFS_DELTA, OBJ_REF_DELTA, OBJ_TAG, OBJ_TREE, packHeader, parseEntryHeader } from '../src/git/pack-format';

const sizes = [0, 1, 15, 16, 17, 2047, 2048, 262143, 262144, 6 * 2 ** 20 - 1, 6 * 2 ** 20, 2 ** 31, 2 ** 32 + 1, 2 ** 40 + 3];

/** git's own OFS_DELTA offset encoding (pack-objects.c, write_no_reuse_object). */
function ofsBytes(rel: number): Buffer {
  const out = [rel % 128];
  let ofs = Math.floor(rel / 128);
  while (ofs > 0) {
    ofs -= 1;
    out.unshift(0x80 | ofs % 128);
    ofs = Math.floor(ofs / 128);
  }
  return Buffer.from(out);
}

t.test('whole objects: encode → parse round trip', async (t) => {
  for (const type of [OBJ_COMMIT, OBJ_TREE, OBJ_BLOB, OBJ_TAG]) {
    for (const size of sizes) {
      const bytes = encodeEntryHeader(type, size);
      const h = parseEntryHeader(Buffer.concat([bytes, Buffer.from([0x78, 0x9c])]), 12, 20);
      t.same(h, { type, size, headerLength: bytes.length }, `type ${type} size ${size}`);
    }
  }
});

t.test('known header bytes', async (t) => {
  t.equal(encodeEntryHeader(OBJ_BLOB, 0).toString('hex'), '30');
  t.equal(encodeEntryHeader(OBJ_BLOB, 15).toString('hex'), '3f');
  t.equal(encodeEntryHeader(OBJ_BLOB, 16).toString('hex'), 'b001');
  t.equal(encodeEntryHeader(OBJ_COMMIT, 165).toString('hex'), '950a');
  t.equal(encodeEntryHeader(OBJ_TREE, 2 ** 31).toString('hex'), 'a080808040');
});

t.test('REF_DELTA: encode → parse round trip with 20- and 32-byte bases', async (t) => {
  for (const h of [20, 32]) {
    const base = Buffer.alloc(h, 0x5a);
    for (const size of sizes) {
      const bytes = encodeEntryHeader(OBJ_REF_DELTA, size, base);
      const parsed = parseEntryHeader(bytes, 100, h);
      t.equal(parsed.type, OBJ_REF_DELTA);
      t.equal(parsed.size, size);
      t.equal(parsed.headerLength, bytes.length);
      t.same(parsed.baseOid, base);
      t.equal(parsed.baseOffset, undefined);
    }
  }
});

t.test('OFS_DELTA: parse of git-encoded relative offsets', async (t) => {
  for (const rel of [1, 127, 128, 129, 16511, 16512, 16513, 2113663, 2113664, 2 ** 31, 2 ** 40]) {
    for (const size of [5, 2 ** 20]) {
      const head = encodeEntryHeader(OBJ_OFS_DELTA, size);
      const bytes = Buffer.concat([head, ofsBytes(rel)]);
      const offset = rel + 12;
      const parsed = parseEntryHeader(bytes, offset, 20);
      t.same(parsed, { type: OBJ_OFS_DELTA, size, headerLength: bytes.length, baseOffset: 12 }, `rel ${rel} size ${size}`);
    }
  }
});

t.test('truncated headers throw RangeError', async (t) => {
  const cases = [
    encodeEntryHeader(OBJ_BLOB, 2 ** 40),
    encodeEntryHeader(OBJ_REF_DELTA, 300, Buffer.alloc(20, 1)),
    Buffer.concat([encodeEntryHeader(OBJ_OFS_DELTA, 300), ofsBytes(2 ** 30)]),
  ];
  for (const full of cases) {
    t.doesNotThrow(() => parseEntryHeader(full, 2 ** 31, 20), 'the whole header parses');
    for (let n = 0; n < full.length; n++) {
      t.throws(() => parseEntryHeader(full.subarray(0, n), 2 ** 31, 20), { name: 'RangeError', message: 'truncated pack entry header' }, `${n} of ${full.length} bytes`);
    }
  }
  t.throws(() => parseEntryHeader(encodeEntryHeader(OBJ_REF_DELTA, 1, Buffer.alloc(20)), 100, 32), RangeError, 'a 20-byte base in a SHA-256 pack');
});

t.test('invalid types and OFS_DELTA bases outside the pack throw', async (t) => {
  t.throws(() => parseEntryHeader(Buffer.from([0x05]), 12, 20), { name: 'RangeError', message: 'invalid pack object type 0' });
  t.throws(() => parseEntryHeader(Buffer.from([0x55]), 12, 20), { name: 'RangeError', message: 'invalid pack object type 5' });
  const head = encodeEntryHeader(OBJ_OFS_DELTA, 5);
  t.throws(() => parseEntryHeader(Buffer.concat([head, ofsBytes(101)]), 100, 20), { message: 'OFS_DELTA base outside the pack' }, 'before offset 0');
  t.throws(() => parseEntryHeader(Buffer.concat([head, Buffer.from([0])]), 100, 20), { message: 'OFS_DELTA base outside the pack' }, 'relative offset 0');
});

t.test('packHeader', async (t) => {
  t.equal(packHeader(3).toString('hex'), Buffer.concat([Buffer.from('PACK'), Buffer.from('0000000200000003', 'hex')]).toString('hex'));
  t.equal(packHeader(0xffffffff).readUInt32BE(8), 0xffffffff);
});
