/**
 * The 6 MiB suite boundary (docs/FORMAT.md §5.2): below 6 × 2^20 bytes a record is AES-256-GCM, from
 * 6 × 2^20 on it is AES-256-CBC + HMAC-SHA-256, decided by the object's inflated size.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { GCM_LIMIT, Suite, suiteForSize } from '../src/format/constants';
import { decodeIndex, encodeIndex } from '../src/format/container-index';
import { openRecord, RecordHeader, recordKeys, sealedLength, sealRecord } from '../src/format/record';

const MiB6 = 6 * 2 ** 20;

t.test('suiteForSize at the boundary', async (t) => {
  t.equal(GCM_LIMIT, MiB6);
  t.equal(suiteForSize(MiB6 - 1), Suite.Gcm);
  t.equal(suiteForSize(MiB6), Suite.CbcHmac);
  t.equal(suiteForSize(MiB6 + 1), Suite.CbcHmac);
  t.equal(suiteForSize(0), Suite.Gcm);
  t.equal(suiteForSize(2 * 2 ** 30), Suite.CbcHmac);
});

const keys = recordKeys(randomBytes(32), 'c0ffee00-0000-4000-8000-000000000001', randomBytes(16));
// One buffer; each case seals a prefix of it as the payload, its length equal to the object size.
const content = randomBytes(MiB6 + 1);

for (const [size, suite] of [
  [MiB6 - 1, Suite.Gcm],
  [MiB6, Suite.CbcHmac],
  [MiB6 + 1, Suite.CbcHmac],
] as const) {
  t.test(`a ${size}-byte object is sealed as ${Suite[suite]} and opens`, async (t) => {
    const header: RecordHeader = { oid: randomBytes(20), type: 3, size, base: Buffer.alloc(0) };
    const payload = content.subarray(0, size);
    const sealed = sealRecord(keys, 9, header, payload);
    const expectedLength = suite === Suite.Gcm ? size + 16 : 16 + (Math.floor(size / 16) + 1) * 16 + 32;
    t.equal(sealed.length, expectedLength, 'sealed length of the suite');
    t.equal(sealedLength(suite, size), expectedLength, 'sealedLength agrees');
    t.ok(openRecord(keys, 9, header, sealed, 'x').equals(payload), 'round trip');
    // The index records the suite in its flags (0x08 = CBC) and refuses it if it disagrees with the size.
    const plain = encodeIndex(20, 0, [{ oid: header.oid, type: 3, size, sealedLength: sealed.length }]);
    t.equal(plain[9 + 20] & 0x08, suite === Suite.CbcHmac ? 0x08 : 0, 'index flag');
    t.equal(decodeIndex(plain, sealed.length, 'x', 1).sizes[0], size);
  });
}

t.test('the suite follows the inflated size, not the payload length', async (t) => {
  const small = randomBytes(100);
  const big: RecordHeader = { oid: randomBytes(20), type: 3, size: MiB6, base: Buffer.alloc(0) };
  const sealedBig = sealRecord(keys, 0, big, small);
  t.equal(sealedBig.length, sealedLength(Suite.CbcHmac, small.length), 'a 100-byte payload of a 6 MiB object is CBC');
  const tiny: RecordHeader = { ...big, size: MiB6 - 1 };
  t.equal(sealRecord(keys, 0, tiny, small).length, small.length + 16, 'the same payload of a smaller object is GCM');
});
