import { timingSafeEqual } from 'node:crypto';
import { KmscryptError } from '../errors';
import { deriveKey } from './key-derivation';

export const COMMITMENT_LENGTH = 32;

/**
 * The key commitment of a data key's use (docs/FORMAT.md §4.3), as the AWS Encryption SDK
 * commits since 2.0: AES-GCM alone does not commit to its key, so a ciphertext could be made that
 * authenticates under two data keys. Stored where the reader gets it authenticated (a version 3
 * preamble, a manifest's ContainerRef, the descriptor's proof) and checked before the data key
 * opens anything: a wrapped key swapped for another data key is refused whatever the tags say.
 */
export function keyCommitment(dataKey: Buffer, salt: Buffer): Buffer {
  return deriveKey(dataKey, 'commit', salt);
}

/** Precondition of every version 3 open: the data key is the one committed to (constant time). */
export function checkKeyCommitment(dataKey: Buffer, salt: Buffer, expected: Buffer, what: string): void {
  const actual = keyCommitment(dataKey, salt);
  if (expected.length !== COMMITMENT_LENGTH || !timingSafeEqual(actual, expected)) {
    throw new KmscryptError('TAMPERED', `${what}: its data key is not the one it commits to (key commitment mismatch): the wrapped key was swapped`, { scope: 'commitment' });
  }
}
