/**
 * Key commitment (docs/FORMAT.md §4.3). AES-GCM does not commit to its key: whoever knows two data
 * keys of a repository (anyone allowed kms:GenerateDataKey on its KMS key) can make one ciphertext
 * whose tag verifies under both. Here such a ciphertext is built, for a container index and for a
 * manifest, and the wrapped key beside it is swapped for the other data key's: the tag still
 * verifies under the swapped key, and the commitment check refuses it before the key opens anything.
 */
import t from 'tap';
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { openIndex } from '../src/format/container';
import { keyCommitment } from '../src/format/key-commitment';
import { Manifest, openManifest, parseManifestEnvelope, sealManifest } from '../src/format/manifest';
import { isKmscryptError } from '../src/errors';

// GF(2^128) as GCM defines it (NIST SP 800-38D §6.3): blocks as big-endian 128-bit integers, bit 0
// the leftmost, reduction by R = 0xe1 || 0^120.
const R = 0xe1n << 120n;
const toInt = (b: Buffer) => BigInt('0x' + b.toString('hex'));
const toBlock = (x: bigint) => Buffer.from(x.toString(16).padStart(32, '0'), 'hex');

function gfMul(x: bigint, y: bigint): bigint {
  let z = 0n;
  let v = y;
  for (let i = 127n; i >= 0n; i--) {
    if ((x >> i) & 1n) z ^= v;
    v = v & 1n ? (v >> 1n) ^ R : v >> 1n;
  }
  return z;
}

function gfPow(x: bigint, e: bigint): bigint {
  let result = 1n << 127n; // the multiplicative identity: the polynomial 1, bit 0
  let base = x;
  for (let k = e; k > 0n; k >>= 1n) {
    if (k & 1n) result = gfMul(result, base);
    base = gfMul(base, base);
  }
  return result;
}

const gfInverse = (x: bigint) => gfPow(x, (1n << 128n) - 2n);

/** The 16-byte blocks GHASH reads: AAD and ciphertext each zero-padded, then their bit lengths. */
function ghashBlocks(aad: Buffer, ciphertext: Buffer): bigint[] {
  const pad = (b: Buffer) => Buffer.concat([b, Buffer.alloc((16 - (b.length % 16)) % 16)]);
  const blocks: bigint[] = [];
  for (const part of [pad(aad), pad(ciphertext)]) for (let i = 0; i < part.length; i += 16) blocks.push(toInt(part.subarray(i, i + 16)));
  const lengths = Buffer.alloc(16);
  lengths.writeBigUInt64BE(BigInt(aad.length * 8), 0);
  lengths.writeBigUInt64BE(BigInt(ciphertext.length * 8), 8);
  blocks.push(toInt(lengths));
  return blocks;
}

function ghash(h: bigint, blocks: bigint[]): bigint {
  let x = 0n;
  for (const b of blocks) x = gfMul(x ^ b, h);
  return x;
}

const aesBlock = (key: Buffer, block: Buffer) => createCipheriv('aes-256-ecb', key, null).setAutoPadding(false).update(block);

/**
 * A ciphertext of `blocks` 16-byte blocks, with a tag, that authenticates under both AES-256-GCM
 * keys with the same 12-byte nonce and AAD: every block is random but one, solved for.
 */
function collidingCiphertext(keyA: Buffer, keyB: Buffer, nonce: Buffer, aad: Buffer, blocks: number): { ciphertext: Buffer; tag: Buffer } {
  const ciphertext = randomBytes(16 * blocks);
  const free = 0;
  ciphertext.fill(0, free * 16, free * 16 + 16);
  const hA = toInt(aesBlock(keyA, Buffer.alloc(16)));
  const hB = toInt(aesBlock(keyB, Buffer.alloc(16)));
  const j0 = Buffer.concat([nonce, Buffer.from([0, 0, 0, 1])]);
  const maskA = toInt(aesBlock(keyA, j0));
  const maskB = toInt(aesBlock(keyB, j0));
  const all = ghashBlocks(aad, ciphertext);
  // The free block is block number p of GHASH's input: it is multiplied by H^(m - p).
  const p = Math.ceil(aad.length / 16) + free;
  const power = BigInt(all.length - p);
  const rest = ghash(hA, all) ^ ghash(hB, all) ^ maskA ^ maskB;
  const value = gfMul(rest, gfInverse(gfPow(hA, power) ^ gfPow(hB, power)));
  toBlock(value).copy(ciphertext, free * 16);
  const tag = toBlock(ghash(hA, ghashBlocks(aad, ciphertext)) ^ maskA);
  return { ciphertext, tag };
}

function gcmOpens(key: Buffer, nonce: Buffer, aad: Buffer, ciphertext: Buffer, tag: Buffer): boolean {
  const d = createDecipheriv('aes-256-gcm', key, nonce);
  d.setAAD(aad);
  d.setAuthTag(tag);
  try {
    d.update(ciphertext);
    d.final();
    return true;
  } catch {
    return false;
  }
}

function failure(fn: () => unknown): string {
  try {
    fn();
    return 'opened';
  } catch (err) {
    return isKmscryptError(err) ? `${err.code}: ${err.message}` : String(err);
  }
}

const repositoryId = '5b4a3928-1706-4f5e-8d4c-3b2a1908f7e6';
const subkey = (dataKey: Buffer, salt: Buffer, purpose: string) => Buffer.from(hkdfSync('sha256', dataKey, salt, `kmscrypt/1 ${purpose}`, 32));
const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);

t.test('the construction: one ciphertext and tag that AES-GCM accepts under two keys', async (t) => {
  const [a, b, nonce, aad] = [randomBytes(32), randomBytes(32), randomBytes(12), randomBytes(37)];
  const { ciphertext, tag } = collidingCiphertext(a, b, nonce, aad, 4);
  t.ok(gcmOpens(a, nonce, aad, ciphertext, tag), 'opens under the first key');
  t.ok(gcmOpens(b, nonce, aad, ciphertext, tag), 'opens under the second key');
  t.notOk(gcmOpens(randomBytes(32), nonce, aad, ciphertext, tag), 'not under a third');
});

t.test('a container index: a wrapped key swapped for another data key of the repository is refused by the commitment', async (t) => {
  const [written, swapped] = [randomBytes(32), randomBytes(32)];
  const containerId = randomBytes(16);
  const repo = Buffer.from(repositoryId);
  const aad = Buffer.concat([Buffer.from('kmscrypt/3 index'), u16(repo.length), repo, containerId]);
  const { ciphertext, tag } = collidingCiphertext(subkey(written, containerId, 'index'), subkey(swapped, containerId, 'index'), Buffer.alloc(12), aad, 3);
  const sealed = Buffer.concat([ciphertext, tag]);
  // What the manifest's ContainerRef says: version 3, the commitment of the data key it was written with.
  const commitment = keyCommitment(written, containerId);

  t.ok(gcmOpens(subkey(swapped, containerId, 'index'), Buffer.alloc(12), aad, ciphertext, tag), 'AES-GCM alone accepts it under the swapped data key');
  t.match(failure(() => openIndex(swapped, repositoryId, containerId, sealed, 1000, 'container x', 3, commitment)), /^TAMPERED: container x: its data key is not the one it commits to \(key commitment mismatch\)/, 'version 3: refused before the key is used');
  t.match(failure(() => openIndex(written, repositoryId, containerId, sealed, 1000, 'container x', 3, commitment)), /^CORRUPT: /, 'the committed key passes the commitment');
});

t.test('a manifest: a preamble whose wrapped key was swapped, with a ciphertext valid under both keys, is refused by the commitment', async (t) => {
  const [written, swapped] = [randomBytes(32), randomBytes(32)];
  const manifest: Manifest = { repositoryId, objectFormat: 'sha1', generation: 2, previous: 'aa'.repeat(32), createdAt: '', descriptorHash: 'bb'.repeat(32), keyId: 'k', head: null, refs: {}, containers: [] };
  const arn = 'arn:aws:kms:eu-west-1:111122223333:key/k';
  // An honest manifest sealed under `written`; the attacker keeps its preamble (and so its
  // commitment) but puts the other data key's wrapping in it and seals a colliding ciphertext.
  const honest = parseManifestEnvelope(sealManifest(manifest, written, { keyArn: arn, wrappedKey: Buffer.alloc(40, 1), history: null, endorsements: [] }), 'honest');
  const forgedPreamble = Buffer.concat([honest.preamble.subarray(0, honest.preamble.length - 2 - 40 - 2), u16(40), Buffer.alloc(40, 2), u16(0)]);
  const repo = Buffer.from(repositoryId);
  const aad = Buffer.concat([Buffer.from('kmscrypt/1 manifest'), u16(repo.length), repo, forgedPreamble]);
  const body = deflateRawSync(Buffer.from(JSON.stringify(manifest)));
  const blocks = Math.ceil(body.length / 16) + 1;
  const { ciphertext, tag } = collidingCiphertext(subkey(written, honest.nonce, 'manifest'), subkey(swapped, honest.nonce, 'manifest'), honest.nonce, aad, blocks);
  const forged = Buffer.concat([forgedPreamble, ciphertext, tag]);
  const env = parseManifestEnvelope(forged, 'manifest 2');
  t.same(env.wrappedKey, Buffer.alloc(40, 2), 'the preamble names the swapped wrapped key');
  t.ok(gcmOpens(subkey(swapped, env.nonce, 'manifest'), env.nonce, aad, ciphertext, tag), 'AES-GCM alone accepts it under the swapped data key');
  t.match(failure(() => openManifest(env, swapped, repositoryId, 'manifest 2')), /^TAMPERED: manifest 2: its data key is not the one it commits to \(key commitment mismatch\)/, 'the commitment refuses it first');
});
