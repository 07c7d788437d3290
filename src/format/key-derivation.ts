import { hkdfSync } from 'node:crypto';

export type KeyPurpose = 'record-gcm' | 'record-cbc-enc' | 'record-cbc-mac' | 'segment' | 'index' | 'manifest' | 'commit' | 'descriptor' | 'schedule';

/**
 * HKDF info per purpose (docs/FORMAT.md §4.2). The purposes of versions 1 and 2 keep their
 * "kmscrypt/1" namespace; those added in version 3 are named "kmscrypt/3".
 */
const INFO: Record<KeyPurpose, string> = {
  'record-gcm': 'kmscrypt/1 record-gcm',
  'record-cbc-enc': 'kmscrypt/1 record-cbc-enc',
  'record-cbc-mac': 'kmscrypt/1 record-cbc-mac',
  segment: 'kmscrypt/1 segment',
  index: 'kmscrypt/1 index',
  manifest: 'kmscrypt/1 manifest',
  commit: 'kmscrypt/3 commit',
  descriptor: 'kmscrypt/3 descriptor',
  schedule: 'kmscrypt/3 schedule',
};

/**
 * A subkey of a data key for one purpose within one container or manifest (HKDF-SHA-256,
 * salt = container ID, manifest nonce or repository ID). Distinct purposes never share a key,
 * so a (key, nonce) pair can only repeat if the data key and the salt both repeat.
 */
export function deriveKey(dataKey: Buffer, purpose: KeyPurpose, salt: Buffer): Buffer {
  if (dataKey.length !== 32) throw new RangeError('data key must be 32 bytes');
  return Buffer.from(hkdfSync('sha256', dataKey, salt, INFO[purpose], 32));
}
