import { hkdfSync } from 'node:crypto';

export type KeyPurpose = 'record-gcm' | 'record-cbc-enc' | 'record-cbc-mac' | 'segment' | 'index' | 'manifest';

/**
 * A subkey of a data key for one purpose within one container or manifest (HKDF-SHA-256,
 * salt = container ID or manifest nonce). Distinct purposes never share a key, so a
 * (key, nonce) pair can only repeat if the data key and the salt both repeat.
 */
export function deriveKey(dataKey: Buffer, purpose: KeyPurpose, salt: Buffer): Buffer {
  if (dataKey.length !== 32) throw new RangeError('data key must be 32 bytes');
  return Buffer.from(hkdfSync('sha256', dataKey, salt, `kmscrypt/1 ${purpose}`, 32));
}
