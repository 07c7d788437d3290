import type { KeyMetadata } from '@aws-sdk/client-kms';
import { KmscryptError } from '../errors';
import type { KeyDescription } from './key-provider';
import { KEY_FIXES } from './kms-errors';

/*
 * Every answer of KMS is checked before it is used: an endpoint that does not behave like AWS KMS
 * is refused with a KEY_ERROR naming the action, never trusted with a data key.
 */

/** The key metadata of a DescribeKey answer, refused when it lacks the key ID or ARN. */
export function toDescription(meta: KeyMetadata | undefined, ref: string): KeyDescription {
  if (!meta?.KeyId || !meta.Arn)
    throw new KmscryptError('KEY_ERROR', `kms:DescribeKey for ${ref} returned no key metadata; the KMS endpoint does not behave like AWS KMS`);
  const aliasName = /^(?:arn:[^:]+:kms:[^:]*:[^:]*:)?(alias\/.+)$/.exec(ref)?.[1];
  return {
    keyId: meta.KeyId,
    arn: meta.Arn,
    enabled: meta.Enabled === true,
    state: meta.KeyState ?? 'Unknown',
    keySpec: meta.KeySpec ?? meta.CustomerMasterKeySpec ?? 'Unknown',
    keyUsage: meta.KeyUsage ?? 'Unknown',
    aliases: aliasName ? [aliasName] : [],
  };
}

/** The described key, refused unless it is enabled, symmetric and for encryption: what the provider can use. */
export function requireUsableKey(key: KeyDescription, ref: string): KeyDescription {
  const named = ref === key.arn || ref === key.keyId ? key.arn : `${ref} (${key.arn})`;
  if (key.state === 'PendingDeletion') {
    throw new KmscryptError('KEY_ERROR', `key ${named} is pending deletion (KMSInvalidStateException)`, {
      kmsError: 'KMSInvalidStateException',
      fix: KEY_FIXES.pendingDeletion(key.arn),
    });
  }
  if (!key.enabled) {
    throw new KmscryptError('KEY_ERROR', `key ${named} is ${key.state === 'Disabled' ? 'disabled' : `not enabled (state ${key.state})`}`, {
      kmsError: 'DisabledException',
      fix: KEY_FIXES.disabledNewKey(key.arn),
    });
  }
  if (key.keySpec !== 'SYMMETRIC_DEFAULT' || key.keyUsage !== 'ENCRYPT_DECRYPT') {
    throw new KmscryptError('KEY_ERROR', `key ${named} has KeySpec ${key.keySpec} and KeyUsage ${key.keyUsage}`, { fix: KEY_FIXES.notSymmetric });
  }
  return key;
}

/** Copies the SDK's plaintext into a Buffer we own and zeroes the SDK's copy. */
export function takePlaintext(plaintext: Uint8Array | undefined, op: string): Buffer {
  if (!plaintext || plaintext.length !== 32) {
    plaintext?.fill(0);
    throw new KmscryptError(
      'KEY_ERROR',
      `kms:${op} returned ${plaintext ? `${plaintext.length} bytes` : 'no'} of plaintext instead of a 32-byte data key; the KMS endpoint does not behave like AWS KMS`,
    );
  }
  const owned = Buffer.alloc(32);
  owned.set(plaintext);
  plaintext.fill(0);
  return owned;
}

export function requireBlob(blob: Uint8Array | undefined, op: string): Buffer {
  if (!blob || blob.length === 0) throw new KmscryptError('KEY_ERROR', `kms:${op} returned no CiphertextBlob; the KMS endpoint does not behave like AWS KMS`);
  return Buffer.from(blob);
}

export function requireKeyId(keyId: string | undefined, op: string): string {
  if (!keyId) throw new KmscryptError('KEY_ERROR', `kms:${op} returned no KeyId; the KMS endpoint does not behave like AWS KMS`);
  return keyId;
}
