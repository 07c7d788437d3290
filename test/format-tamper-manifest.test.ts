/**
 * Format-level tamper tests for a sealed manifest (docs/FORMAT.md §7.1): a change to any byte of
 * the stored manifest is refused, with TAMPERED for every authenticated byte and CORRUPT where the
 * plaintext structure itself no longer parses; the manifest is bound to its repository and data key.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { isKmscryptError } from '../src/errors';
import { Manifest, openManifest, parseManifestEnvelope, sealManifest } from '../src/format/manifest';

const dataKey = Buffer.from(Array.from({ length: 32 }, (_, i) => 0x33 ^ (i * 5)));
const repositoryId = '3c1d2e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f5';
const keyId = 'arn:aws:kms:eu-west-1:111122223333:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
const wrapped = Buffer.from(Array.from({ length: 40 }, (_, i) => 200 - i));
const manifest: Manifest = {
  repositoryId,
  objectFormat: 'sha1',
  generation: 7,
  previous: 'ab'.repeat(32),
  createdAt: '2024-05-06T07:08:09.000Z',
  descriptorHash: 'cd'.repeat(32),
  keyId,
  head: 'refs/heads/main',
  refs: { 'refs/heads/main': '12'.repeat(20) },
  containers: [
    {
      id: 'ef'.repeat(16),
      size: 1000,
      indexOffset: 900,
      indexLength: 76,
      objects: 3,
      indexHash: '34'.repeat(32),
      preambleLength: 100,
      preambleHash: '56'.repeat(32),
      keyId,
      wrappedKey: wrapped.toString('base64'),
    },
  ],
};
const stored = sealManifest(manifest, dataKey, wrapped);
const K = Buffer.byteLength(keyId);
const preambleEnd = 32 + K + wrapped.length;

function outcome(bytes: Buffer, key = dataKey, repo = repositoryId): string {
  try {
    openManifest(parseManifestEnvelope(bytes, 'manifest'), key, repo, 'manifest');
    return 'opened';
  } catch (err) {
    return isKmscryptError(err) ? err.code : `not a KmscryptError: ${String(err)}`;
  }
}

function flipped(i: number): Buffer {
  const copy = Buffer.from(stored);
  copy[i] ^= 0x01;
  return copy;
}

t.test('the untouched manifest opens', async (t) => {
  t.equal(outcome(stored), 'opened');
  t.equal(parseManifestEnvelope(stored, 'm').preamble.length, preambleEnd);
});

const regions: Array<{ name: string; from: number; to: number; expect: string[] }> = [
  { name: 'magic', from: 0, to: 4, expect: ['CORRUPT'] },
  { name: 'version', from: 4, to: 5, expect: ['CORRUPT'] },
  { name: 'kind', from: 5, to: 6, expect: ['CORRUPT'] },
  { name: 'flags', from: 6, to: 8, expect: ['TAMPERED'] },
  { name: 'generation', from: 8, to: 16, expect: ['TAMPERED'] },
  { name: 'nonce', from: 16, to: 28, expect: ['TAMPERED'] },
  // A changed length moves the boundaries: either the envelope no longer parses or the AAD changes.
  { name: 'key ID length', from: 28, to: 30, expect: ['CORRUPT', 'TAMPERED'] },
  { name: 'key ID', from: 30, to: 30 + K, expect: ['TAMPERED'] },
  { name: 'wrapped key length', from: 30 + K, to: 32 + K, expect: ['CORRUPT', 'TAMPERED'] },
  { name: 'wrapped key', from: 32 + K, to: preambleEnd, expect: ['TAMPERED'] },
  { name: 'ciphertext', from: preambleEnd, to: stored.length - 16, expect: ['TAMPERED'] },
  { name: 'tag', from: stored.length - 16, to: stored.length, expect: ['TAMPERED'] },
];

t.test('every flipped byte is refused', async (t) => {
  let covered = 0;
  for (const r of regions) {
    t.ok(r.to > r.from, `${r.name} is not empty`);
    const seen = new Set<string>();
    for (let i = r.from; i < r.to; i++) seen.add(outcome(flipped(i)));
    for (const code of seen) t.ok(r.expect.includes(code), `${r.name}: ${code}`);
    covered += r.to - r.from;
  }
  t.equal(covered, stored.length, 'the regions cover every byte');
});

t.test('the version byte is refused with an upgrade message', async (t) => {
  const copy = Buffer.from(stored);
  copy[4] = 3;
  t.throws(() => parseManifestEnvelope(copy, 'manifest 7'), { code: 'CORRUPT', message: /format version 3; this kmscrypt reads version 1 and 2, upgrade it/ });
});

t.test('truncated and extended manifests are refused', async (t) => {
  const seen = new Set<string>();
  for (let n = 0; n < stored.length; n++) seen.add(outcome(stored.subarray(0, n)));
  t.same([...seen].sort(), ['CORRUPT', 'TAMPERED'], 'every proper prefix is CORRUPT or TAMPERED');
  t.equal(outcome(stored.subarray(0, preambleEnd + 15)), 'CORRUPT', 'no room for a tag');
  t.equal(outcome(stored.subarray(0, stored.length - 1)), 'TAMPERED', 'one byte short');
  t.equal(outcome(Buffer.concat([stored, Buffer.alloc(1)])), 'TAMPERED', 'one byte appended');
});

t.test('a manifest is bound to its repository and its data key', async (t) => {
  t.equal(outcome(stored, dataKey, '3c1d2e4f-5a6b-4c7d-8e9f-a0b1c2d3e4f6'), 'TAMPERED', 'another repository ID');
  t.equal(outcome(stored, randomBytes(32)), 'TAMPERED', 'another data key');
});

t.test('two seals of the same manifest differ (fresh nonce) and both open', async (t) => {
  const again = sealManifest(manifest, dataKey, wrapped);
  t.not(again.subarray(16, 28).toString('hex'), stored.subarray(16, 28).toString('hex'));
  t.equal(outcome(again), 'opened');
});
