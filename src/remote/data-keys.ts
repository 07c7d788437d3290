import type { EncryptionContext, KeyProvider } from '../keys/key-provider';

/**
 * Unwrapped data keys for the life of the process, one Decrypt per distinct wrapped key.
 * Nothing here is ever written anywhere.
 */
export class DataKeyCache {
  private readonly keys = new Map<string, Promise<{ plaintext: Buffer; keyId: string }>>();

  constructor(
    private readonly provider: KeyProvider,
    private readonly context: EncryptionContext,
  ) {}

  async unwrap(wrapped: Buffer, keyId: string): Promise<Buffer> {
    return (await this.unwrapWithKeyId(wrapped, keyId)).plaintext;
  }

  /**
   * The plaintext data key and the ARN of the KMS key that unwrapped it. Decrypt is always given
   * `keyId`, a key the caller accepted: KMS refuses a data key wrapped by any other.
   */
  unwrapWithKeyId(wrapped: Buffer, keyId: string): Promise<{ plaintext: Buffer; keyId: string }> {
    const id = wrapped.toString('base64');
    let key = this.keys.get(id);
    if (!key) {
      key = this.provider.decryptDataKey(wrapped, this.context, keyId).then((k) => ({ plaintext: k.plaintext, keyId: k.keyId }));
      key.catch(() => this.keys.delete(id));
      this.keys.set(id, key);
    }
    return key;
  }
}
