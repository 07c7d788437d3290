/**
 * Streaming verification of large CBC records (docs/FORMAT.md §5.5): CbcRecordVerifier must reach the
 * same verdict as openRecord whatever the chunking, and only then may the bytes be deciphered.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { GCM_LIMIT } from '../src/format/constants';
import { CBC_IV, CBC_MAC, CbcRecordVerifier, openRecord, RecordHeader, recordKeys, sealRecord } from '../src/format/record';

const keys = recordKeys(randomBytes(32), 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d', randomBytes(16));
const header: RecordHeader = { oid: randomBytes(20), type: 3, size: GCM_LIMIT + 123, base: Buffer.alloc(0) };
const payload = randomBytes(100_003);
const sealed = sealRecord(keys, 4, header, payload);

function verify(bytes: Buffer, chunk: number, length = bytes.length, seq = 4): boolean {
  const v = new CbcRecordVerifier(keys, seq, header, length);
  for (let p = 0; p < bytes.length; p += chunk) v.update(bytes.subarray(p, Math.min(bytes.length, p + chunk)));
  return v.verified();
}

function decipher(bytes: Buffer): Buffer {
  const v = new CbcRecordVerifier(keys, 4, header, bytes.length);
  v.update(bytes);
  if (!v.verified()) throw new Error('not verified');
  const d = v.decipher(bytes.subarray(0, CBC_IV));
  return Buffer.concat([d.update(bytes.subarray(CBC_IV, bytes.length - CBC_MAC)), d.final()]);
}

t.test('an intact record verifies under any chunking and deciphers to the payload', async (t) => {
  for (const chunk of [1 << 20, 65536, 4096, 31, 32, 33, 7]) t.ok(verify(sealed, chunk), `chunks of ${chunk}`);
  t.ok(decipher(sealed).equals(payload));
  t.ok(openRecord(keys, 4, header, sealed, 'x').equals(payload), 'openRecord agrees');
});

t.test('a flipped byte anywhere fails verification', async (t) => {
  const positions = [0, CBC_IV - 1, CBC_IV, 5000, sealed.length - CBC_MAC - 1, sealed.length - CBC_MAC, sealed.length - 1];
  for (const i of positions) {
    const copy = Buffer.from(sealed);
    copy[i] ^= 0x01;
    t.notOk(verify(copy, 4096), `byte ${i}`);
  }
});

t.test('wrong length, wrong position or too many bytes fail', async (t) => {
  t.notOk(verify(sealed.subarray(0, sealed.length - 1), 4096, sealed.length), 'a byte missing');
  t.notOk(verify(sealed, 4096, sealed.length, 5), 'another sequence number');
  const v = new CbcRecordVerifier(keys, 4, header, sealed.length);
  t.throws(() => v.update(Buffer.concat([sealed, Buffer.alloc(1)])), RangeError, 'more bytes than the record holds');
  const tooShort = Buffer.alloc(CBC_IV + CBC_MAC);
  t.notOk(verify(tooShort, 16), 'shorter than IV + one block + MAC');
});

t.test('only CBC-sized records are streamed', async (t) => {
  t.throws(() => new CbcRecordVerifier(keys, 0, { ...header, size: GCM_LIMIT - 1 }, 100), RangeError);
});
