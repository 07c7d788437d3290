import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { KmscryptError } from '../errors';
import { FORMAT_VERSION, Kind, MAGIC, MANIFEST_PREAMBLE_LIMIT, READABLE_VERSIONS, unreadableVersion } from './constants';
import { isValidRefName } from './ref-name';
import { ByteCursor, prefixed, u64 } from './byte-cursor';
import type { Endorsement } from './endorsement';
import { checkKeyCommitment, COMMITMENT_LENGTH, keyCommitment } from './key-commitment';
import { deriveKey } from './key-derivation';
import { isObjectFormat, isObjectId, ObjectFormat } from './object-format';

/** Where a container is and how to open it, as the manifest records it. */
export interface ContainerRef {
  /** 32 hex digits; the storage key is containers/<id>. */
  id: string;
  size: number;
  indexOffset: number;
  indexLength: number;
  objects: number;
  /** SHA-256 of the encrypted index: binds the container's contents to this manifest. */
  indexHash: string;
  /** Length and SHA-256 of the plaintext preamble, checked whenever a reader passes over it. */
  preambleLength: number;
  preambleHash: string;
  /** The KMS key that wraps its data key, and the wrapped data key (base64). */
  keyId: string;
  wrappedKey: string;
  /** The container's format version; absent means 1 (written before version 2 existed). */
  version?: number;
  /** Version 3: the key commitment of its data key (hex), checked before the data key opens its index. */
  commitment?: string;
  /** Set by gc: the containers whose reachable objects this one holds, so clients that fetched them skip it. */
  consolidates?: string[];
  /** Set by a tail merge (docs/FORMAT.md §8.1): how many pushes' containers this one stands for; it holds all their records. */
  pushes?: number;
}

/** The state of the repository after one push: all refs, HEAD and every container. */
export interface Manifest {
  repositoryId: string;
  objectFormat: ObjectFormat;
  generation: number;
  /** SHA-256 (hex) of the previous manifest's stored bytes, null for generation 1. */
  previous: string | null;
  createdAt: string;
  /** SHA-256 of the repository descriptor's bytes, so that no byte of it can change unnoticed. */
  descriptorHash: string;
  /** The KMS key new data is wrapped with. */
  keyId: string;
  /** Target of HEAD (e.g. refs/heads/main), null when unset. */
  head: string | null;
  refs: Record<string, string>;
  /**
   * FORMAT.md §7.2: for refs whose value is an annotated tag, the object the tag finally points
   * to (what `git ls-remote` shows as `<ref>^{}`). Absent in manifests of older writers.
   */
  peeled?: Record<string, string>;
  containers: ContainerRef[];
}

export interface HistoryRef {
  /** The generation of the gc manifest that wrote the history object: it lists the manifests below it. */
  generation: number;
  /** SHA-256 (hex) of the history object's bytes; the object is stored as history/<hash>. */
  hash: string;
}

/** What a version 3 manifest's preamble carries besides its generation and nonce (docs/FORMAT.md §7.1). */
export interface ManifestSeal {
  /** ARN of the KMS key that wrapped the data key (as KMS reported it, never an alias). */
  keyArn: string;
  wrappedKey: Buffer;
  /** The newest history object (§8.2), carried forward by every manifest after the gc that wrote it. */
  history: HistoryRef | null;
  /** Every rotation's endorsement so far, oldest first (§7.3), carried forward by every manifest. */
  endorsements: Endorsement[];
}

export interface ManifestEnvelope {
  version: number;
  generation: number;
  /**
   * Version 3: the ARN of the key that wrapped the data key. Versions 1 and 2: the manifest's
   * `keyId` field as configured (an ID, ARN or alias), not checked against the wrapping key.
   */
  keyId: string;
  wrappedKey: Buffer;
  nonce: Buffer;
  /** Version 3 only; null before. */
  commitment: Buffer | null;
  /**
   * SHA-256 (hex) of the previous manifest's stored bytes, null for generation 1; undefined in
   * versions 1 and 2, where it is only inside the encrypted body.
   */
  previous: string | null | undefined;
  history: HistoryRef | null;
  endorsements: Endorsement[];
  preamble: Buffer;
  sealed: Buffer;
}

const LABEL = Buffer.from('kmscrypt/1 manifest');
const GCM_TAG = 16;
/** Versions 1 and 2: magic, version, kind, flags, generation, nonce, key ID length. */
const FIXED_V2 = 4 + 1 + 1 + 2 + 8 + 12 + 2;
const ZERO_HASH = Buffer.alloc(32);

/**
 * Stored form of version 3 (docs/FORMAT.md §7.1): a plaintext preamble (generation, nonce, key
 * commitment, the previous manifest's hash, the history reference, the wrapping key's ARN, the
 * wrapped data key, the endorsements), then AES-256-GCM(deflate(JSON)) and its tag. The key is
 * HKDF(data key, nonce); the AAD is the repository ID and the whole preamble, so no preamble byte
 * can change and a manifest cannot move between repositories. What the preamble carries can be
 * read, once the hash chain vouches for the bytes, without any KMS call.
 */
export function sealManifest(m: Manifest, dataKey: Buffer, seal: ManifestSeal): Buffer {
  const nonce = randomBytes(12);
  const preamble = encodePreamble(m, nonce, keyCommitment(dataKey, nonce), seal);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(dataKey, 'manifest', nonce), nonce);
  cipher.setAAD(manifestAad(m.repositoryId, preamble));
  const body = deflateRawSync(Buffer.from(JSON.stringify(m), 'utf8'));
  return Buffer.concat([preamble, cipher.update(body), cipher.final(), cipher.getAuthTag()]);
}

/**
 * Reads the plaintext preamble from the first bytes of a manifest (all of it, or at least
 * MANIFEST_PREAMBLE_LIMIT bytes); `end` is where the ciphertext starts.
 */
export function parseManifestPreamble(buf: Buffer, what: string): Omit<ManifestEnvelope, 'preamble' | 'sealed'> & { end: number } {
  const bad = (why: string) => new KmscryptError('CORRUPT', `${what}: not a kmscrypt manifest (${why})`);
  if (buf.length < 8) throw bad('too short');
  if (!buf.subarray(0, 4).equals(MAGIC)) throw bad('bad magic');
  const version = buf.readUInt8(4);
  if (!READABLE_VERSIONS.includes(version)) throw bad(unreadableVersion(version));
  if (buf.readUInt8(5) !== Kind.Manifest) throw bad('not a manifest');
  const c = new ByteCursor(buf, bad, 8);
  const generation = c.u64();
  const nonce = c.bytes(12);
  if (version < 3) {
    const keyId = c.prefixedString();
    const wrappedKey = c.prefixed();
    return { version, generation, nonce, keyId, wrappedKey, commitment: null, previous: undefined, history: null, endorsements: [], end: c.offset };
  }
  const commitment = c.bytes(COMMITMENT_LENGTH);
  const previous = hashOrNull(c.bytes(32));
  const historyGeneration = c.u64();
  const historyHash = c.bytes(32);
  const keyId = c.prefixedString();
  const wrappedKey = c.prefixed();
  const endorsements: Endorsement[] = [];
  for (let n = c.u16(); n > 0; n--) endorsements.push({ from: c.prefixedString(), to: c.prefixedString(), ciphertext: c.prefixed() });
  if (c.offset > MANIFEST_PREAMBLE_LIMIT) throw bad('preamble over the 1 MiB limit');
  const history = historyGeneration === 0 ? null : { generation: historyGeneration, hash: historyHash.toString('hex') };
  return { version, generation, nonce, keyId, wrappedKey, commitment, previous, history, endorsements, end: c.offset };
}

/** Reads the plaintext part; the caller unwraps the data key and calls openManifest. */
export function parseManifestEnvelope(buf: Buffer, what: string): ManifestEnvelope {
  if (buf.length < FIXED_V2 + 2 + GCM_TAG) throw new KmscryptError('CORRUPT', `${what}: not a kmscrypt manifest (too short)`);
  const { end, ...fields } = parseManifestPreamble(buf, what);
  if (buf.length < end + GCM_TAG) throw new KmscryptError('CORRUPT', `${what}: not a kmscrypt manifest (truncated)`);
  return { ...fields, preamble: buf.subarray(0, end), sealed: buf.subarray(end) };
}

/**
 * Authenticates and parses a manifest. In version 3 the data key must first match the
 * preamble's commitment, and the body's `previous` must equal the preamble's.
 */
export function openManifest(env: ManifestEnvelope, dataKey: Buffer, repositoryId: string, what: string): Manifest {
  if (env.commitment) checkKeyCommitment(dataKey, env.nonce, env.commitment, what);
  const decipher = createDecipheriv('aes-256-gcm', deriveKey(dataKey, 'manifest', env.nonce), env.nonce);
  decipher.setAAD(manifestAad(repositoryId, env.preamble));
  decipher.setAuthTag(env.sealed.subarray(env.sealed.length - GCM_TAG));
  let body: Buffer;
  try {
    body = Buffer.concat([decipher.update(env.sealed.subarray(0, env.sealed.length - GCM_TAG)), decipher.final()]);
  } catch {
    throw new KmscryptError('TAMPERED', `${what} failed authentication: it was altered or belongs to another repository`, {
      scope: 'manifest',
      unchanged: 'no ref was changed',
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(inflateRawSync(body).toString('utf8'));
  } catch {
    throw new KmscryptError('CORRUPT', `${what}: authenticated but unreadable (written by an incompatible kmscrypt?)`);
  }
  const manifest = validateManifest(parsed, env.generation, repositoryId, what);
  if (env.previous !== undefined && manifest.previous !== env.previous) {
    throw new KmscryptError('CORRUPT', `${what}: its body and its preamble name different previous manifests`);
  }
  return manifest;
}

function validateManifest(value: unknown, generation: number, repositoryId: string, what: string): Manifest {
  const bad = (why: string) => new KmscryptError('CORRUPT', `${what}: ${why}`);
  if (typeof value !== 'object' || value === null) throw bad('not an object');
  const m = value as Manifest;
  if (m.repositoryId !== repositoryId) throw bad(`belongs to repository ${String(m.repositoryId)}, not ${repositoryId}`);
  if (m.generation !== generation) throw bad(`claims generation ${String(m.generation)} but is stored as ${generation}`);
  if (!isObjectFormat(m.objectFormat)) throw bad('unknown object format');
  if (m.previous !== null && !/^[0-9a-f]{64}$/.test(String(m.previous))) throw bad('bad previous hash');
  if (!/^[0-9a-f]{64}$/.test(String(m.descriptorHash))) throw bad('bad descriptor hash');
  // Ref names reach git's protocol stream: nothing but valid names may pass.
  if (m.head !== null && (typeof m.head !== 'string' || !m.head.startsWith('refs/') || !isValidRefName(m.head))) throw bad('bad HEAD');
  if (typeof m.refs !== 'object' || m.refs === null) throw bad('no refs');
  for (const [name, oid] of Object.entries(m.refs)) {
    if (!name.startsWith('refs/') || !isValidRefName(name) || typeof oid !== 'string' || !isObjectId(oid, m.objectFormat))
      throw bad(`bad ref ${JSON.stringify(name)}`);
  }
  if (m.peeled !== undefined) {
    if (typeof m.peeled !== 'object' || m.peeled === null) throw bad('bad peeled list');
    for (const [name, oid] of Object.entries(m.peeled)) {
      if (!Object.hasOwn(m.refs, name) || typeof oid !== 'string' || !isObjectId(oid, m.objectFormat)) throw bad(`bad peeled entry ${JSON.stringify(name)}`);
    }
  }
  if (!Array.isArray(m.containers)) throw bad('no container list');
  for (const c of m.containers) {
    const ok =
      /^[0-9a-f]{32}$/.test(c?.id) &&
      [c.size, c.indexOffset, c.indexLength, c.objects, c.preambleLength].every((n) => Number.isSafeInteger(n) && n >= 0) &&
      /^[0-9a-f]{64}$/.test(c.indexHash) &&
      /^[0-9a-f]{64}$/.test(c.preambleHash) &&
      typeof c.keyId === 'string' &&
      typeof c.wrappedKey === 'string' &&
      (c.version === undefined || READABLE_VERSIONS.includes(c.version)) &&
      ((c.version ?? 1) < 3 || /^[0-9a-f]{64}$/.test(String(c.commitment))) &&
      (c.consolidates === undefined || (Array.isArray(c.consolidates) && c.consolidates.every((id) => /^[0-9a-f]{32}$/.test(id)))) &&
      (c.pushes === undefined || (Number.isSafeInteger(c.pushes) && c.pushes >= 2 && c.consolidates !== undefined));
    if (!ok) throw bad('bad container entry');
  }
  return m;
}

function encodePreamble(m: Manifest, nonce: Buffer, commitment: Buffer, seal: ManifestSeal): Buffer {
  const fixed = Buffer.alloc(8);
  MAGIC.copy(fixed, 0);
  fixed.writeUInt8(FORMAT_VERSION, 4);
  fixed.writeUInt8(Kind.Manifest, 5);
  fixed.writeUInt16BE(0, 6);
  const endorsementCount = Buffer.alloc(2);
  endorsementCount.writeUInt16BE(seal.endorsements.length);
  const preamble = Buffer.concat([
    fixed,
    u64(m.generation),
    nonce,
    commitment,
    m.previous === null ? ZERO_HASH : Buffer.from(m.previous, 'hex'),
    u64(seal.history?.generation ?? 0),
    seal.history ? Buffer.from(seal.history.hash, 'hex') : ZERO_HASH,
    prefixed(seal.keyArn),
    prefixed(seal.wrappedKey),
    endorsementCount,
    ...seal.endorsements.flatMap((e) => [prefixed(e.from), prefixed(e.to), prefixed(e.ciphertext)]),
  ]);
  if (preamble.length > MANIFEST_PREAMBLE_LIMIT) throw new RangeError('manifest preamble over the 1 MiB limit');
  return preamble;
}

/** An all-zero hash field means "none". */
function hashOrNull(b: Buffer): string | null {
  return b.equals(ZERO_HASH) ? null : b.toString('hex');
}

function manifestAad(repositoryId: string, preamble: Buffer): Buffer {
  const repo = Buffer.from(repositoryId, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(repo.length);
  return Buffer.concat([LABEL, len, repo, preamble]);
}
