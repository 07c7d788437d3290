/**
 * Format-level tamper tests for records (docs/FORMAT.md §5): any change to a sealed record, or
 * opening it in any other place or under any other header, fails with TAMPERED.
 */
import t from 'tap';
import { createCipheriv, createHmac, randomBytes } from 'node:crypto';
import { deflateSync } from 'node:zlib';
import { GCM_LIMIT, Suite, suiteForSize } from '../src/format/constants';
import { CBC_IV, CBC_MAC, GCM_TAG, openRecord, recordAad, RecordHeader, recordKeys, sealRecord } from '../src/format/record';
import { outcome } from './support/outcome';

const dataKey = Buffer.from(Array.from({ length: 32 }, (_, i) => 0xa0 ^ i));
const repositoryId = '0b7e3c52-9d1a-4c8e-b2f6-3a4d5e6f7081';
const containerId = Buffer.from('f0e1d2c3b4a5968778695a4b3c2d1e0f', 'hex');
const keys = recordKeys(dataKey, repositoryId, containerId);
const payload = deflateSync(Buffer.from('tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 0 +0000\n'));
const oid = Buffer.from('1f2e3d4c5b6a798897a6b5c4d3e2f10011223344', 'hex');
const otherOid = Buffer.from('1f2e3d4c5b6a798897a6b5c4d3e2f10011223345', 'hex');
const base = Buffer.from('aabbccddeeff00112233445566778899aabbccdd', 'hex');


function flip(buf: Buffer, i: number): Buffer {
  const copy = Buffer.from(buf);
  copy[i] ^= 0x01;
  return copy;
}

const cases: Array<{ name: string; seq: number; header: RecordHeader }> = [
  { name: 'GCM object', seq: 5, header: { oid, type: 1, size: 300, base: Buffer.alloc(0) } },
  { name: 'GCM delta', seq: 6, header: { oid, type: 7, size: 120, base } },
  { name: 'CBC object', seq: 7, header: { oid, type: 3, size: GCM_LIMIT + 1000, base: Buffer.alloc(0) } },
  { name: 'CBC delta', seq: 8, header: { oid, type: 7, size: GCM_LIMIT, base } },
];

for (const c of cases) {
  t.test(`${c.name}: every flipped byte is detected`, async (t) => {
    const sealed = sealRecord(keys, c.seq, c.header, payload);
    t.same(openRecord(keys, c.seq, c.header, sealed, c.name), payload, 'the untouched record opens');
    t.throws(() => openRecord(keys, c.seq, c.header, flip(sealed, 0), c.name), { code: 'TAMPERED', data: { scope: 'record' } }, 'the failing scope is data');
    const suite = suiteForSize(c.header.size);
    const regions =
      suite === Suite.Gcm
        ? [{ name: 'ciphertext', from: 0, to: sealed.length - GCM_TAG }, { name: 'tag', from: sealed.length - GCM_TAG, to: sealed.length }]
        : [
            { name: 'IV', from: 0, to: CBC_IV },
            { name: 'ciphertext', from: CBC_IV, to: sealed.length - CBC_MAC },
            { name: 'MAC', from: sealed.length - CBC_MAC, to: sealed.length },
          ];
    for (const r of regions) {
      t.ok(r.to > r.from, `${r.name} is not empty`);
      const results = new Set<string>();
      for (let i = r.from; i < r.to; i++) results.add(outcome(() => openRecord(keys, c.seq, c.header, flip(sealed, i), c.name)));
      t.same([...results], ['TAMPERED'], `flipping any byte of the ${r.name} (${r.to - r.from} bytes) gives TAMPERED`);
    }
  });

  t.test(`${c.name}: truncated or extended records are detected`, async (t) => {
    const sealed = sealRecord(keys, c.seq, c.header, payload);
    const results = new Set<string>();
    for (let n = 0; n < sealed.length; n++) results.add(outcome(() => openRecord(keys, c.seq, c.header, sealed.subarray(0, n), c.name)));
    t.same([...results], ['TAMPERED'], 'every proper prefix');
    t.equal(outcome(() => openRecord(keys, c.seq, c.header, Buffer.concat([sealed, Buffer.alloc(1)]), c.name)), 'TAMPERED', 'one byte appended');
    t.equal(outcome(() => openRecord(keys, c.seq, c.header, Buffer.concat([sealed, Buffer.alloc(16)]), c.name)), 'TAMPERED', 'a block appended');
    t.equal(outcome(() => openRecord(keys, c.seq, c.header, sealed.subarray(1), c.name)), 'TAMPERED', 'first byte removed');
  });

  t.test(`${c.name}: opened anywhere else, it fails`, async (t) => {
    const sealed = sealRecord(keys, c.seq, c.header, payload);
    const h = c.header;
    const open = (k = keys, seq = c.seq, header = h) => outcome(() => openRecord(k, seq, header, sealed, c.name));
    t.equal(open(keys, c.seq + 1), 'TAMPERED', 'another sequence number');
    t.equal(open(keys, c.seq - 1), 'TAMPERED', 'an earlier sequence number');
    t.equal(open(keys, c.seq, { ...h, oid: otherOid }), 'TAMPERED', 'another object ID');
    t.equal(open(recordKeys(dataKey, '0b7e3c52-9d1a-4c8e-b2f6-3a4d5e6f7082', containerId)), 'TAMPERED', 'another repository ID');
    t.equal(open(recordKeys(dataKey, repositoryId, flip(containerId, 15))), 'TAMPERED', 'another container ID');
    t.equal(open(recordKeys(randomBytes(32), repositoryId, containerId)), 'TAMPERED', 'another data key');
    const recordsRepoOnly = { ...keys, repositoryIdBytes: Buffer.from('another-repository') };
    t.equal(open(recordsRepoOnly), 'TAMPERED', 'same subkeys, other repository ID in the AAD');
    const containerOnly = { ...keys, containerId: flip(containerId, 0) };
    t.equal(open(containerOnly), 'TAMPERED', 'same subkeys, other container ID in the AAD');
    t.equal(open(keys, c.seq, { ...h, type: h.type === 7 ? 3 : 7, base: h.type === 7 ? Buffer.alloc(0) : base }), 'TAMPERED', 'delta ↔ whole object');
    t.equal(open(keys, c.seq, { ...h, type: h.type === 2 ? 1 : 2 }), 'TAMPERED', 'another object type');
    t.equal(open(keys, c.seq, { ...h, size: h.size + 1 }), 'TAMPERED', 'another size in the same suite');
    if (h.type === 7) t.equal(open(keys, c.seq, { ...h, base: otherOid }), 'TAMPERED', 'another delta base');
    const otherSuiteSize = suiteForSize(h.size) === Suite.Gcm ? GCM_LIMIT : GCM_LIMIT - 1;
    t.not(suiteForSize(otherSuiteSize), suiteForSize(h.size));
    t.equal(open(keys, c.seq, { ...h, size: otherSuiteSize }), 'TAMPERED', 'a header claiming the other suite');
  });
}

t.test('a record sealed under one suite cannot be opened as the other even with a valid-looking length', async (t) => {
  // A GCM record whose length happens to be valid for CBC (48 + 16k bytes) still fails.
  const body = randomBytes(16 * 3 + CBC_IV + CBC_MAC - GCM_TAG);
  const header: RecordHeader = { oid, type: 3, size: 1000, base: Buffer.alloc(0) };
  const sealed = sealRecord(keys, 0, header, body);
  t.equal((sealed.length - CBC_IV - CBC_MAC) % 16, 0, 'a CBC-shaped length');
  t.equal(outcome(() => openRecord(keys, 0, { ...header, size: GCM_LIMIT }, sealed, 'x')), 'TAMPERED');
});

t.test('CBC: a valid MAC over badly padded ciphertext is still TAMPERED', async (t) => {
  const header: RecordHeader = { oid, type: 3, size: GCM_LIMIT, base: Buffer.alloc(0) };
  const iv = randomBytes(CBC_IV);
  const block = Buffer.alloc(16, 0x41);
  block[15] = 0x00; // PKCS#7 padding byte 0 is invalid
  const cipher = createCipheriv('aes-256-cbc', keys.cbcEnc, iv).setAutoPadding(false);
  const ct = Buffer.concat([cipher.update(block), cipher.final()]);
  const mac = createHmac('sha256', keys.cbcMac).update(recordAad(keys, Suite.CbcHmac, 2, header)).update(iv).update(ct).digest();
  t.equal(outcome(() => openRecord(keys, 2, header, Buffer.concat([iv, ct, mac]), 'x')), 'TAMPERED');
  // The same construction with valid padding opens, so the test above fails for the padding alone.
  block[15] = 0x01;
  const cipher2 = createCipheriv('aes-256-cbc', keys.cbcEnc, iv).setAutoPadding(false);
  const ct2 = Buffer.concat([cipher2.update(block), cipher2.final()]);
  const mac2 = createHmac('sha256', keys.cbcMac).update(recordAad(keys, Suite.CbcHmac, 2, header)).update(iv).update(ct2).digest();
  t.same(openRecord(keys, 2, header, Buffer.concat([iv, ct2, mac2]), 'x'), block.subarray(0, 15));
});
