import { createHmac, timingSafeEqual } from 'node:crypto';
import { KmscryptError } from '../errors';
import { READABLE_DESCRIPTOR_VERSIONS, unreadableVersion } from './constants';
import { checkKeyCommitment, keyCommitment } from './key-commitment';
import { deriveKey } from './key-derivation';
import { isObjectFormat, ObjectFormat } from './object-format';

/**
 * The one plaintext object of a repository, written once with a create-only write. Nothing in
 * it is secret: its repository ID is bound into every data key's encryption context and every
 * record, so editing it only makes the repository unreadable, never readable by others. Version 2
 * (docs/FORMAT.md §3) adds where the repository was created and a proof that whoever created it
 * may use its KMS key, so that a descriptor copied to another location is recognised as a copy.
 */
export interface Descriptor {
  format: 'kmscrypt';
  version: number;
  repositoryId: string;
  objectFormat: ObjectFormat;
  /** The KMS key (ARN) the repository was created with; in version 2 the key of the proof's data key. */
  keyId: string;
  keyProvider: 'local' | 'aws';
  createdAt: string;
  /** Version 2: the canonical URL of the store it was created at (s3://bucket/prefix or file:///path). */
  location?: string;
  /** Version 2: what only a principal allowed to use `keyId` could have made. */
  proof?: DescriptorProof;
}

export interface DescriptorProof {
  /** A data key generated under `keyId` with the repository's encryption context, wrapped (base64). */
  wrappedKey: string;
  /** Its key commitment (salt = repository ID), hex. */
  commitment: string;
  /** HMAC-SHA-256 under its subkey "descriptor" (salt = repository ID) of every other field (proofInput), hex. */
  mac: string;
}

const PROOF_LABEL = 'kmscrypt/3 descriptor';

export function encodeDescriptor(d: Descriptor): Buffer {
  return Buffer.from(JSON.stringify(d, null, 2) + '\n', 'utf8');
}

export function decodeDescriptor(buf: Buffer, what: string): Descriptor {
  const bad = (why: string) => new KmscryptError('CORRUPT', `${what}: repository descriptor is invalid (${why})`);
  let value: unknown;
  try {
    value = JSON.parse(buf.toString('utf8'));
  } catch {
    throw bad('not JSON');
  }
  if (typeof value !== 'object' || value === null) throw bad('not an object');
  const d = value as Descriptor;
  if (d.format !== 'kmscrypt') throw bad('not a kmscrypt repository');
  if (typeof d.version !== 'number' || !READABLE_DESCRIPTOR_VERSIONS.includes(d.version)) throw bad(unreadableVersion(d.version, READABLE_DESCRIPTOR_VERSIONS));
  if (typeof d.repositoryId !== 'string' || !/^[0-9a-f-]{36}$/.test(d.repositoryId)) throw bad('bad repository ID');
  if (!isObjectFormat(d.objectFormat)) throw bad(`unknown object format ${String(d.objectFormat)}`);
  if (typeof d.keyId !== 'string' || d.keyId === '') throw bad('no key ID');
  if (d.keyProvider !== 'local' && d.keyProvider !== 'aws') throw bad(`unknown key provider ${String(d.keyProvider)}`);
  if (d.version >= 2) {
    if (typeof d.createdAt !== 'string') throw bad('no creation time');
    if (typeof d.location !== 'string' || !/^(s3:\/\/[^/]|file:\/\/\/)/.test(d.location)) throw bad('no location');
    const p = d.proof;
    const ok =
      typeof p === 'object' &&
      p !== null &&
      typeof p.wrappedKey === 'string' &&
      /^[A-Za-z0-9+/]+={0,2}$/.test(p.wrappedKey) &&
      /^[0-9a-f]{64}$/.test(String(p.commitment)) &&
      /^[0-9a-f]{64}$/.test(String(p.mac));
    if (!ok) throw bad('malformed proof');
  }
  return d;
}

/**
 * A version 2 descriptor with its proof: `dataKey` (from GenerateDataKey under `d.keyId`, with the
 * repository's encryption context) is committed to and MACs every other field.
 */
export function proveDescriptor(d: Omit<Descriptor, 'proof'>, dataKey: Buffer, wrappedKey: Buffer): Descriptor {
  const salt = Buffer.from(d.repositoryId, 'utf8');
  const partial = { wrappedKey: wrappedKey.toString('base64'), commitment: keyCommitment(dataKey, salt).toString('hex') };
  const mac = proofMac(dataKey, { ...d, proof: { ...partial, mac: '' } });
  return { ...d, proof: { ...partial, mac: mac.toString('hex') } };
}

/** Precondition of adopting a repository by its descriptor alone: the key commits, then the MAC verifies. */
export function checkDescriptorProof(d: Descriptor, dataKey: Buffer, what: string): void {
  if (!d.proof) throw new KmscryptError('INTERNAL', 'checkDescriptorProof on a descriptor without a proof');
  checkKeyCommitment(dataKey, Buffer.from(d.repositoryId, 'utf8'), Buffer.from(d.proof.commitment, 'hex'), what);
  if (!timingSafeEqual(proofMac(dataKey, d), Buffer.from(d.proof.mac, 'hex'))) {
    throw new KmscryptError('TAMPERED', `${what}: its proof does not verify: a field of it was changed after it was made`, { scope: 'descriptor' });
  }
}

/**
 * "kmscrypt/3 descriptor", then each field as u32 length and UTF-8, in this order: format,
 * version (decimal), repositoryId, objectFormat, keyId, keyProvider, createdAt, location,
 * proof.wrappedKey, proof.commitment. Fields unknown to this version are not covered.
 */
export function proofInput(d: Descriptor): Buffer {
  const fields = [d.format, String(d.version), d.repositoryId, d.objectFormat, d.keyId, d.keyProvider, d.createdAt, d.location ?? '', d.proof?.wrappedKey ?? '', d.proof?.commitment ?? ''];
  const parts: Buffer[] = [Buffer.from(PROOF_LABEL)];
  for (const f of fields) {
    const b = Buffer.from(f, 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    parts.push(len, b);
  }
  return Buffer.concat(parts);
}

function proofMac(dataKey: Buffer, d: Descriptor): Buffer {
  const key = deriveKey(dataKey, 'descriptor', Buffer.from(d.repositoryId, 'utf8'));
  return createHmac('sha256', key).update(proofInput(d)).digest();
}
