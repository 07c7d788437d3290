/**
 * decodeIndex (docs/FORMAT.md §6.4) trusts no length it reads: every lie about counts, lengths,
 * types or bases in an index plaintext is refused with CORRUPT, never a RangeError or a bad read.
 * These are version 1 indexes; format-segments.test.ts adds version 2's segment rules.
 */
import t from 'tap';
import { isKmscryptError } from '../src/errors';
import { GCM_LIMIT } from '../src/format/constants';
import { decodeIndex, encodeIndex, IndexEntry } from '../src/format/container-index';
import { encodeVarint } from '../src/format/varint';

const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const varint = (n: number) => {
  const out: number[] = [];
  encodeVarint(n, out);
  return Buffer.from(out);
};
const head = (hashLength: number, count: number, recordsStart: number) => Buffer.concat([Buffer.from([hashLength]), u32(count), u32(recordsStart)]);
const entry = (oidByte: number, flags: number, size: number, length: number, ...rest: Buffer[]) =>
  Buffer.concat([Buffer.alloc(20, oidByte), Buffer.from([flags]), varint(size), varint(length), ...rest]);

/** The CORRUPT message decodeIndex gives, or what happened instead. */
function refusal(buf: Buffer, recordsEnd: number): string {
  try {
    decodeIndex(buf, recordsEnd, 'test', 1);
    return 'accepted';
  } catch (err) {
    return isKmscryptError(err, 'CORRUPT') ? err.message : `not CORRUPT: ${String(err)}`;
  }
}

t.test('a well-formed index decodes (the baseline the cases below change)', async (t) => {
  const buf = Buffer.concat([head(20, 2, 10), entry(1, 0x03, 5, 21), entry(2, 0x17, 9, 30, varint(0))]);
  const index = decodeIndex(buf, 61, 'test', 1);
  t.equal(index.count, 2);
  t.same([...index.offsets], [10, 31]);
  t.same(index.base(1), Buffer.alloc(20, 1), 'a local base is resolved to its object ID');
  t.same(index.base(0), Buffer.alloc(0), 'a non-delta has no base');
});

t.test('round trip through encodeIndex for both hash lengths', async (t) => {
  for (const h of [20, 32]) {
    const entries: IndexEntry[] = [
      { oid: Buffer.alloc(h, 1), type: 4, size: 0, sealedLength: 16 },
      { oid: Buffer.alloc(h, 2), type: 7, size: 2 ** 31, sealedLength: 2 ** 31 + 64, base: Buffer.alloc(h, 7) },
      { oid: Buffer.alloc(h, 3), type: 7, size: 3, sealedLength: 19, base: 1 },
    ];
    const end = 100 + 16 + 2 ** 31 + 64 + 19;
    const index = decodeIndex(encodeIndex(h, 100, entries), end, 'test', 1);
    t.equal(index.hashLength, h);
    t.same([...index.sizes], [0, 2 ** 31, 3]);
    t.same([...index.offsets], [100, 116, 116 + 2 ** 31 + 64]);
    t.same(index.base(1), Buffer.alloc(h, 7));
    t.same(index.base(2), Buffer.alloc(h, 2));
  }
});

t.test('encodeIndex refuses what it cannot write', async (t) => {
  t.throws(() => encodeIndex(20, 0, [{ oid: Buffer.alloc(32), type: 1, size: 1, sealedLength: 17 }]), RangeError);
  t.throws(() => encodeIndex(20, 0, [{ oid: Buffer.alloc(20), type: 7, size: 1, sealedLength: 17 }]), RangeError, 'delta without base');
  t.throws(() => encodeIndex(20, 0, [{ oid: Buffer.alloc(20), type: 7, size: 1, sealedLength: 17, base: Buffer.alloc(32) }]), RangeError);
});

const corrupt: Array<[string, Buffer, number, RegExp]> = [
  ['empty', Buffer.alloc(0), 0, /too short/],
  ['shorter than its head', Buffer.alloc(8), 0, /too short/],
  ['hash length 21', head(21, 0, 0), 0, /hash length 21/],
  ['hash length 0', head(0, 0, 0), 0, /hash length 0/],
  ['count far beyond the buffer', Buffer.concat([head(20, 0xffffffff, 0), entry(1, 0x03, 1, 17)]), 17, /count 4294967295 exceeds its size/],
  ['count one more than fits', Buffer.concat([head(20, 2, 0), entry(1, 0x03, 1, 17)]), 17, /count 2 exceeds its size/],
  ['count fits the minimum entry size but the entries are longer', Buffer.concat([head(20, 2, 0), entry(1, 0x03, 1, 17), Buffer.alloc(5)]), 17, /truncated|records|trailing|type|malformed/],
  ['records start beyond the records section', head(20, 0, 50), 40, /records start beyond/],
  ['an entry ending beyond the records section', Buffer.concat([head(20, 1, 0), entry(1, 0x03, 1, 1000)]), 999, /ends beyond the records section/],
  ['a length of 2^53-1', Buffer.concat([head(20, 1, 0), entry(1, 0x03, 1, 2 ** 53 - 1)]), 1000, /ends beyond the records section/],
  ['records not filling the records section', Buffer.concat([head(20, 1, 0), entry(1, 0x03, 1, 17)]), 18, /do not fill/],
  ['no entries but a records section', head(20, 0, 0), 1, /do not fill/],
  ['trailing bytes', Buffer.concat([head(20, 1, 0), entry(1, 0x03, 1, 17), Buffer.from([0])]), 17, /trailing bytes/],
  ['type 0', Buffer.concat([head(20, 1, 0), entry(1, 0x00, 1, 17)]), 17, /object type 0/],
  ['type 5', Buffer.concat([head(20, 1, 0), entry(1, 0x05, 1, 17)]), 17, /object type 5/],
  ['type 6 (OFS_DELTA is never stored)', Buffer.concat([head(20, 1, 0), entry(1, 0x06, 1, 17)]), 17, /object type 6/],
  ['CBC flag on a GCM-sized entry', Buffer.concat([head(20, 1, 0), entry(1, 0x0b, GCM_LIMIT - 1, 80)]), 80, /suite/],
  ['no CBC flag on a CBC-sized entry', Buffer.concat([head(20, 1, 0), entry(1, 0x03, GCM_LIMIT, 80)]), 80, /suite/],
  ['a truncated oid after a long first entry', Buffer.concat([head(20, 2, 0), entry(1, 0x07, 1, 17, Buffer.alloc(20, 9)), Buffer.alloc(3)]), 17, /truncated entry/],
  ['a truncated varint', Buffer.concat([head(20, 1, 0), Buffer.alloc(20, 1), Buffer.from([0x03, 0x80, 0x80])]), 0, /truncated varint/],
  ['a varint of 9 bytes', Buffer.concat([head(20, 1, 0), Buffer.alloc(20, 1), Buffer.from([0x03, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x81, 0x01])]), 0, /varint too long/],
  ['a size above 2^53', Buffer.concat([head(20, 1, 0), Buffer.alloc(20, 1), Buffer.from([0x0b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x11])]), 17, /varint overflow/],
  ['a truncated external base', Buffer.concat([head(20, 1, 0), entry(1, 0x07, 1, 17, Buffer.alloc(19))]), 17, /truncated base/],
  ['a local base beyond the count', Buffer.concat([head(20, 2, 0), entry(1, 0x03, 1, 17), entry(2, 0x17, 1, 17, varint(2))]), 34, /names base entry 2/],
  ['a local base that is the entry itself', Buffer.concat([head(20, 2, 0), entry(1, 0x03, 1, 17), entry(2, 0x17, 1, 17, varint(1))]), 34, /names base entry 1/],
  ['a truncated local base', Buffer.concat([head(20, 2, 0), entry(1, 0x03, 1, 17), entry(2, 0x17, 1, 17)]), 34, /truncated varint/],
];

for (const [name, buf, end, why] of corrupt) {
  t.test(`CORRUPT: ${name}`, async (t) => {
    const message = refusal(buf, end);
    t.match(message, /index is malformed/, 'refused as a malformed index');
    t.match(message, why);
  });
}
