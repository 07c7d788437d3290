/**
 * Format-level tamper tests for a sealed version 3 manifest (docs/FORMAT.md §7.1): a change to any
 * byte of the stored manifest is refused, with TAMPERED for every authenticated byte and CORRUPT
 * where the plaintext structure itself no longer parses; the manifest is bound to its repository
 * and data key.
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
const endorsement = { from: 'arn:aws:kms:eu-west-1:111122223333:key/old', to: keyId, ciphertext: Buffer.alloc(90, 0x5a) };
const seal = { keyArn: keyId, wrappedKey: wrapped, history: { generation: 5, hash: 'ef'.repeat(32) }, endorsements: [endorsement] };
const stored = sealManifest(manifest, dataKey, seal);
const K = Buffer.byteLength(keyId);
const W = 136 + K + wrapped.length;
const F = Buffer.byteLength(endorsement.from);
const E = W + 2;
const preambleEnd = E + 2 + F + 2 + K + 2 + 90;

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
  const env = parseManifestEnvelope(stored, 'm');
  t.equal(env.preamble.length, preambleEnd);
  t.same({ previous: env.previous, history: env.history, endorsements: env.endorsements, keyId: env.keyId }, { previous: manifest.previous, history: seal.history, endorsements: [endorsement], keyId });
});

const regions: Array<{ name: string; from: number; to: number; expect: string[] }> = [
  { name: 'magic', from: 0, to: 4, expect: ['CORRUPT'] },
  // 3 with a bit flipped is 2: read with the version 2 layout, whose AAD is then another one.
  { name: 'version', from: 4, to: 5, expect: ['CORRUPT', 'TAMPERED'] },
  { name: 'kind', from: 5, to: 6, expect: ['CORRUPT'] },
  { name: 'flags', from: 6, to: 8, expect: ['TAMPERED'] },
  // A high bit makes the generation unsafe (CORRUPT); any other change fails the AAD.
  { name: 'generation', from: 8, to: 16, expect: ['CORRUPT', 'TAMPERED'] },
  { name: 'nonce', from: 16, to: 28, expect: ['TAMPERED'] },
  { name: 'key commitment', from: 28, to: 60, expect: ['TAMPERED'] },
  { name: 'previous', from: 60, to: 92, expect: ['TAMPERED'] },
  { name: 'history generation', from: 92, to: 100, expect: ['CORRUPT', 'TAMPERED'] },
  { name: 'history hash', from: 100, to: 132, expect: ['TAMPERED'] },
  // A changed length moves the boundaries: either the envelope no longer parses or the AAD changes.
  { name: 'key ARN length', from: 132, to: 134, expect: ['CORRUPT', 'TAMPERED'] },
  { name: 'key ARN', from: 134, to: 134 + K, expect: ['TAMPERED'] },
  { name: 'wrapped key length', from: 134 + K, to: 136 + K, expect: ['CORRUPT', 'TAMPERED'] },
  { name: 'wrapped key', from: 136 + K, to: W, expect: ['TAMPERED'] },
  { name: 'endorsement count', from: W, to: E, expect: ['CORRUPT', 'TAMPERED'] },
  { name: 'endorsements', from: E, to: preambleEnd, expect: ['CORRUPT', 'TAMPERED'] },
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
  copy[4] = 4;
  t.throws(() => parseManifestEnvelope(copy, 'manifest 7'), { code: 'CORRUPT', message: /format version 4; this kmscrypt reads version 1, 2 and 3, upgrade it/ });
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
  const again = sealManifest(manifest, dataKey, seal);
  t.not(again.subarray(16, 28).toString('hex'), stored.subarray(16, 28).toString('hex'));
  t.equal(outcome(again), 'opened');
});
