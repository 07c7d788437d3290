import { createHash } from 'node:crypto';

/**
 * A rotation's proof that the repository may move from one KMS key to the next (docs/FORMAT.md
 * §7.3): `ciphertext` is KMS Encrypt under `from` of endorsementPlaintext(repository, `to`), with
 * the repository's encryption context. Only a principal allowed to use `from` can make it; a clone
 * that trusts `from` checks it with Decrypt under `from` before it asks anything of `to`.
 */
export interface Endorsement {
  /** ARN of the endorsing (old) key. */
  from: string;
  /** ARN of the endorsed (new) key. */
  to: string;
  ciphertext: Buffer;
}

const PLAINTEXT_LABEL = 'kmscrypt/3 endorsement';

/** SHA-256("kmscrypt/3 endorsement" || repository ID || ARN of the endorsed key), all UTF-8. */
export function endorsementPlaintext(repositoryId: string, toArn: string): Buffer {
  return createHash('sha256').update(PLAINTEXT_LABEL).update(repositoryId).update(toArn).digest();
}
