import { KmscryptError } from '../errors';
import { DESCRIPTOR_VERSION, unreadableVersion } from './constants';
import { isObjectFormat, ObjectFormat } from './object-format';

/**
 * The one plaintext object of a repository, written once with a create-only write. Nothing in
 * it is secret: its repository ID is bound into every data key's encryption context and every
 * record, so editing it only makes the repository unreadable, never readable by others.
 */
export interface Descriptor {
  format: 'kmscrypt';
  version: number;
  repositoryId: string;
  objectFormat: ObjectFormat;
  /** The KMS key the repository was created with (the manifests record the current one). */
  keyId: string;
  keyProvider: 'local' | 'aws';
  createdAt: string;
}

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
  if (d.version !== DESCRIPTOR_VERSION) throw bad(unreadableVersion(d.version, [DESCRIPTOR_VERSION]));
  if (typeof d.repositoryId !== 'string' || !/^[0-9a-f-]{36}$/.test(d.repositoryId)) throw bad('bad repository ID');
  if (!isObjectFormat(d.objectFormat)) throw bad(`unknown object format ${String(d.objectFormat)}`);
  if (typeof d.keyId !== 'string' || d.keyId === '') throw bad('no key ID');
  if (d.keyProvider !== 'local' && d.keyProvider !== 'aws') throw bad(`unknown key provider ${String(d.keyProvider)}`);
  return d;
}
