import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { deflateRawSync, inflateRawSync } from 'node:zlib';
import { KmscryptError } from '../errors';
import { FORMAT_VERSION, Kind, MAGIC, READABLE_VERSIONS, unreadableVersion } from './constants';
import { isValidRefName } from './ref-name';
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
  /** Set by gc: the containers whose reachable objects this one holds, so clients that fetched them skip it. */
  consolidates?: string[];
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
  containers: ContainerRef[];
}

const LABEL = Buffer.from('kmscrypt/1 manifest');
const FIXED = 4 + 1 + 1 + 2 + 8 + 12 + 2;

/**
 * Stored form: MAGIC | version | kind | flags | generation u64 | nonce(12) | keyId | wrapped key |
 * AES-256-GCM(deflate(JSON)) | tag. The key is HKDF(data key, nonce); the AAD is the preamble
 * and the repository ID, so neither can be changed and a manifest cannot move between repositories.
 */
export function sealManifest(m: Manifest, dataKey: Buffer, wrappedKey: Buffer): Buffer {
  const nonce = randomBytes(12);
  const preamble = encodePreamble(m.generation, nonce, m.keyId, wrappedKey);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(dataKey, 'manifest', nonce), nonce);
  cipher.setAAD(manifestAad(m.repositoryId, preamble));
  const body = deflateRawSync(Buffer.from(JSON.stringify(m), 'utf8'));
  return Buffer.concat([preamble, cipher.update(body), cipher.final(), cipher.getAuthTag()]);
}

export interface ManifestEnvelope {
  generation: number;
  keyId: string;
  wrappedKey: Buffer;
  nonce: Buffer;
  preamble: Buffer;
  sealed: Buffer;
}

/** Reads the plaintext part; the caller unwraps the data key and calls openManifest. */
export function parseManifestEnvelope(buf: Buffer, what: string): ManifestEnvelope {
  const bad = (why: string) => new KmscryptError('CORRUPT', `${what}: not a kmscrypt manifest (${why})`);
  if (buf.length < FIXED + 2 + 16) throw bad('too short');
  if (!buf.subarray(0, 4).equals(MAGIC)) throw bad('bad magic');
  const version = buf.readUInt8(4);
  if (!READABLE_VERSIONS.includes(version)) throw bad(unreadableVersion(version));
  if (buf.readUInt8(5) !== Kind.Manifest) throw bad('not a manifest');
  const generation = Number(buf.readBigUInt64BE(8));
  const nonce = Buffer.from(buf.subarray(16, 28));
  const keyIdLength = buf.readUInt16BE(28);
  if (buf.length < FIXED + keyIdLength + 2) throw bad('truncated');
  const keyId = buf.toString('utf8', FIXED, FIXED + keyIdLength);
  const wrappedLength = buf.readUInt16BE(FIXED + keyIdLength);
  const end = FIXED + keyIdLength + 2 + wrappedLength;
  if (buf.length < end + 16) throw bad('truncated');
  return {
    generation,
    keyId,
    nonce,
    wrappedKey: Buffer.from(buf.subarray(FIXED + keyIdLength + 2, end)),
    preamble: buf.subarray(0, end),
    sealed: buf.subarray(end),
  };
}

export function openManifest(env: ManifestEnvelope, dataKey: Buffer, repositoryId: string, what: string): Manifest {
  const decipher = createDecipheriv('aes-256-gcm', deriveKey(dataKey, 'manifest', env.nonce), env.nonce);
  decipher.setAAD(manifestAad(repositoryId, env.preamble));
  decipher.setAuthTag(env.sealed.subarray(env.sealed.length - 16));
  let body: Buffer;
  try {
    body = Buffer.concat([decipher.update(env.sealed.subarray(0, env.sealed.length - 16)), decipher.final()]);
  } catch {
    throw new KmscryptError('TAMPERED', `${what} failed authentication: it was altered or belongs to another repository; no ref was changed`, {
      scope: 'manifest',
    });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(inflateRawSync(body).toString('utf8'));
  } catch {
    throw new KmscryptError('CORRUPT', `${what}: authenticated but unreadable (written by an incompatible kmscrypt?)`);
  }
  return validateManifest(parsed, env.generation, repositoryId, what);
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
    if (!name.startsWith('refs/') || !isValidRefName(name) || typeof oid !== 'string' || !isObjectId(oid, m.objectFormat)) throw bad(`bad ref ${JSON.stringify(name)}`);
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
      (c.consolidates === undefined || (Array.isArray(c.consolidates) && c.consolidates.every((id) => /^[0-9a-f]{32}$/.test(id))));
    if (!ok) throw bad('bad container entry');
  }
  return m;
}

function encodePreamble(generation: number, nonce: Buffer, keyId: string, wrappedKey: Buffer): Buffer {
  const k = Buffer.from(keyId, 'utf8');
  const fixed = Buffer.alloc(FIXED);
  let o = MAGIC.copy(fixed, 0);
  o = fixed.writeUInt8(FORMAT_VERSION, o);
  o = fixed.writeUInt8(Kind.Manifest, o);
  o = fixed.writeUInt16BE(0, o);
  o = fixed.writeBigUInt64BE(BigInt(generation), o);
  o += nonce.copy(fixed, o);
  fixed.writeUInt16BE(k.length, o);
  const wl = Buffer.alloc(2);
  wl.writeUInt16BE(wrappedKey.length);
  return Buffer.concat([fixed, k, wl, wrappedKey]);
}

function manifestAad(repositoryId: string, preamble: Buffer): Buffer {
  const repo = Buffer.from(repositoryId, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(repo.length);
  return Buffer.concat([LABEL, len, repo, preamble]);
}
