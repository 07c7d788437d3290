import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { KmscryptError } from '../errors';
import { FORMAT_VERSION, Kind, MAGIC, READABLE_VERSIONS, unreadableVersion } from './constants';
import { ContainerIndex, decodeIndex, encodeIndex, IndexEntry } from './container-index';
import { deriveKey } from './key-derivation';

/**
 * A container is one push's objects:
 *
 *   preamble | record 0 | record 1 | … | encrypted index | trailer
 *
 * The preamble is plaintext (container ID, KMS key ID, wrapped data key); the manifest holds
 * its SHA-256. The index is AES-256-GCM under a subkey of the data key, authenticated with the
 * repository and container IDs. The trailer (24 bytes) locates the index. See docs/FORMAT.md.
 */
export interface ContainerPreamble {
  /** Format version (1: every record sealed on its own; 2: small records sealed in segments). */
  version: number;
  containerId: Buffer;
  hashLength: number;
  keyId: string;
  wrappedKey: Buffer;
}

export const TRAILER_LENGTH = 24;
const TRAILER_MAGIC = Buffer.from('KMSCEND1');
/** The index label names the container's version, so an index opens only as what it was written as. */
const indexLabel = (version: number) => Buffer.from(`kmscrypt/${version} index`);
const GCM_TAG = 16;

export function encodePreamble(p: Omit<ContainerPreamble, 'version'> & { version?: number }): Buffer {
  const keyId = Buffer.from(p.keyId, 'utf8');
  const fixed = Buffer.alloc(4 + 1 + 1 + 2 + 16 + 1 + 2);
  let o = MAGIC.copy(fixed, 0);
  o = fixed.writeUInt8(p.version ?? FORMAT_VERSION, o);
  o = fixed.writeUInt8(Kind.Container, o);
  o = fixed.writeUInt16BE(0, o);
  o += p.containerId.copy(fixed, o);
  o = fixed.writeUInt8(p.hashLength, o);
  fixed.writeUInt16BE(keyId.length, o);
  const wrappedLength = Buffer.alloc(2);
  wrappedLength.writeUInt16BE(p.wrappedKey.length);
  return Buffer.concat([fixed, keyId, wrappedLength, p.wrappedKey]);
}

/** Parses a preamble from the first bytes of a container; returns it and its length. */
export function decodePreamble(buf: Buffer, what: string): { preamble: ContainerPreamble; length: number } {
  const bad = (why: string) => new KmscryptError('CORRUPT', `${what}: not a kmscrypt container (${why})`);
  if (buf.length < 27) throw bad('too short');
  if (!buf.subarray(0, 4).equals(MAGIC)) throw bad('bad magic');
  const version = buf.readUInt8(4);
  if (!READABLE_VERSIONS.includes(version)) throw bad(unreadableVersion(version));
  if (buf.readUInt8(5) !== Kind.Container) throw bad('not a container');
  const containerId = Buffer.from(buf.subarray(8, 24));
  const hashLength = buf.readUInt8(24);
  const keyIdLength = buf.readUInt16BE(25);
  if (buf.length < 27 + keyIdLength + 2) throw bad('truncated key ID');
  const keyId = buf.toString('utf8', 27, 27 + keyIdLength);
  const wrappedLength = buf.readUInt16BE(27 + keyIdLength);
  const end = 29 + keyIdLength + wrappedLength;
  if (buf.length < end) throw bad('truncated wrapped key');
  return { preamble: { version, containerId, hashLength, keyId, wrappedKey: Buffer.from(buf.subarray(29 + keyIdLength, end)) }, length: end };
}

export function encodeTrailer(indexOffset: number, indexLength: number): Buffer {
  const t = Buffer.alloc(TRAILER_LENGTH);
  t.writeBigUInt64BE(BigInt(indexOffset), 0);
  t.writeBigUInt64BE(BigInt(indexLength), 8);
  TRAILER_MAGIC.copy(t, 16);
  return t;
}

export function decodeTrailer(t: Buffer, containerSize: number, what: string): { indexOffset: number; indexLength: number } {
  if (t.length !== TRAILER_LENGTH || !t.subarray(16).equals(TRAILER_MAGIC)) {
    throw new KmscryptError('CORRUPT', `${what}: container trailer is missing (the container was truncated or altered)`);
  }
  const indexOffset = Number(t.readBigUInt64BE(0));
  const indexLength = Number(t.readBigUInt64BE(8));
  if (indexOffset + indexLength + TRAILER_LENGTH !== containerSize) {
    throw new KmscryptError('CORRUPT', `${what}: container trailer does not match its size (truncated or altered)`);
  }
  return { indexOffset, indexLength };
}

/**
 * The index is bound to the repository and the container ID, not to the preamble's wrapped key,
 * so that rotate-key can rewrap data keys without touching containers.
 */
function indexAad(version: number, repositoryId: string, containerId: Buffer): Buffer {
  const repo = Buffer.from(repositoryId, 'utf8');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(repo.length);
  return Buffer.concat([indexLabel(version), len, repo, containerId]);
}

/** Encrypts an index. The index key is used once per container, so a fixed nonce is safe. */
export function sealIndex(
  dataKey: Buffer,
  repositoryId: string,
  containerId: Buffer,
  hashLength: number,
  recordsStart: number,
  entries: IndexEntry[],
  version = FORMAT_VERSION,
): Buffer {
  return sealEncodedIndex(dataKey, repositoryId, containerId, encodeIndex(hashLength, recordsStart, entries), version);
}

/** Encrypts an index already encoded (by IndexWriter). */
export function sealEncodedIndex(dataKey: Buffer, repositoryId: string, containerId: Buffer, encoded: Buffer, version = FORMAT_VERSION): Buffer {
  const cipher = createCipheriv('aes-256-gcm', deriveKey(dataKey, 'index', containerId), Buffer.alloc(12));
  cipher.setAAD(indexAad(version, repositoryId, containerId));
  return Buffer.concat([cipher.update(encoded), cipher.final(), cipher.getAuthTag()]);
}

/**
 * Authenticates and parses the index of a container of format `version` (the manifest says
 * which); `indexOffset` is where the records section ends.
 */
export function openIndex(dataKey: Buffer, repositoryId: string, containerId: Buffer, sealed: Buffer, indexOffset: number, what: string, version: number): ContainerIndex {
  if (sealed.length < GCM_TAG) throw new KmscryptError('TAMPERED', `${what}: index failed authentication (truncated)`, { scope: 'index', container: containerId.toString('hex') });
  const decipher = createDecipheriv('aes-256-gcm', deriveKey(dataKey, 'index', containerId), Buffer.alloc(12));
  decipher.setAAD(indexAad(version, repositoryId, containerId));
  decipher.setAuthTag(sealed.subarray(sealed.length - GCM_TAG));
  let plain: Buffer;
  try {
    plain = Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - GCM_TAG)), decipher.final()]);
  } catch {
    throw new KmscryptError('TAMPERED', `${what}: index failed authentication: the container was altered or belongs to another repository`, {
      scope: 'index',
      container: containerId.toString('hex'),
    });
  }
  return decodeIndex(plain, indexOffset, what, version);
}

export function sha256Hex(...parts: Buffer[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}
