import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { KmscryptError } from '../errors';
import { FORMAT_VERSION, Kind, MAGIC, READABLE_VERSIONS, unreadableVersion } from './constants';
import { ContainerIndex, decodeIndex, encodeIndex, IndexEntry } from './container-index';
import { ByteCursor, prefixed } from './byte-cursor';
import { checkKeyCommitment, COMMITMENT_LENGTH } from './key-commitment';
import { deriveKey } from './key-derivation';

/**
 * A container is one push's objects:
 *
 *   preamble | record 0 | record 1 | … | encrypted index | trailer
 *
 * The preamble is plaintext (container ID, key commitment, KMS key ID, wrapped data key); the
 * manifest holds its SHA-256. The index is AES-256-GCM under a subkey of the data key, authenticated with the
 * repository and container IDs. The trailer (24 bytes) locates the index. See docs/FORMAT.md.
 */
export interface ContainerPreamble {
  /** Format version (1: every record sealed on its own; 2: small records sealed in segments; 3: and a key commitment). */
  version: number;
  containerId: Buffer;
  hashLength: number;
  /** Version 3: the key commitment of the data key (salt = container ID); null before. */
  commitment: Buffer | null;
  keyId: string;
  wrappedKey: Buffer;
}

export const TRAILER_LENGTH = 24;
const TRAILER_MAGIC = Buffer.from('KMSCEND1');
/** The index label names the container's version, so an index opens only as what it was written as. */
const indexLabel = (version: number) => Buffer.from(`kmscrypt/${version} index`);
const GCM_TAG = 16;

/** The preamble of a new container (version 3, or an older one for tests of readers). */
export function encodePreamble(p: Omit<ContainerPreamble, 'version' | 'commitment'> & { version?: number; commitment?: Buffer | null }): Buffer {
  const version = p.version ?? FORMAT_VERSION;
  const fixed = Buffer.alloc(4 + 1 + 1 + 2 + 16 + 1);
  let o = MAGIC.copy(fixed, 0);
  o = fixed.writeUInt8(version, o);
  o = fixed.writeUInt8(Kind.Container, o);
  o = fixed.writeUInt16BE(0, o);
  o += p.containerId.copy(fixed, o);
  fixed.writeUInt8(p.hashLength, o);
  const commitment = version >= 3 ? [p.commitment ?? needCommitment()] : [];
  return Buffer.concat([fixed, ...commitment, prefixed(p.keyId), prefixed(p.wrappedKey)]);
}

function needCommitment(): never {
  throw new RangeError('a version 3 container preamble needs the key commitment');
}

/** Parses a preamble from the first bytes of a container; returns it and its length. */
export function decodePreamble(buf: Buffer, what: string): { preamble: ContainerPreamble; length: number } {
  const bad = (why: string) => new KmscryptError('CORRUPT', `${what}: not a kmscrypt container (${why})`);
  if (buf.length < 27) throw bad('too short');
  if (!buf.subarray(0, 4).equals(MAGIC)) throw bad('bad magic');
  const version = buf.readUInt8(4);
  if (!READABLE_VERSIONS.includes(version)) throw bad(unreadableVersion(version));
  if (buf.readUInt8(5) !== Kind.Container) throw bad('not a container');
  let field = 'commitment';
  const c = new ByteCursor(buf, (why) => bad(why === 'truncated' ? `truncated ${field}` : why), 8);
  const containerId = c.bytes(16);
  const hashLength = c.u8();
  const commitment = version >= 3 ? c.bytes(COMMITMENT_LENGTH) : null;
  field = 'key ID';
  const keyId = c.prefixedString();
  field = 'wrapped key';
  const wrappedKey = c.prefixed();
  return { preamble: { version, containerId, hashLength, commitment, keyId, wrappedKey }, length: c.offset };
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
 * which); `indexOffset` is where the records section ends. From version 3 on, the data key must
 * first match `commitment` (the manifest's ContainerRef.commitment, docs/FORMAT.md §4.3).
 */
export function openIndex(
  dataKey: Buffer,
  repositoryId: string,
  containerId: Buffer,
  sealed: Buffer,
  indexOffset: number,
  what: string,
  version: number,
  commitment: Buffer | null = null,
): ContainerIndex {
  if (version >= 3) {
    if (!commitment) throw new KmscryptError('INTERNAL', `${what}: a version 3 index opened without its key commitment`);
    checkKeyCommitment(dataKey, containerId, commitment, what);
  }
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
