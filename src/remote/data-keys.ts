import type { EncryptionContext, KeyProvider } from '../keys/key-provider';

/**
 * Unwrapped data keys for the life of the process, one Decrypt per distinct wrapped key.
 * Nothing here is ever written anywhere.
 */
export class DataKeyCache {
  private readonly keys = new Map<string, Promise<Buffer>>();

  constructor(
    private readonly provider: KeyProvider,
    private readonly context: EncryptionContext,
  ) {}

  unwrap(wrapped: Buffer, keyId?: string): Promise<Buffer> {
    const id = wrapped.toString('base64');
    let key = this.keys.get(id);
    if (!key) {
      key = this.provider.decryptDataKey(wrapped, this.context, keyId).then((k) => k.plaintext);
      key.catch(() => this.keys.delete(id));
      this.keys.set(id, key);
    }
    return key;
  }
}
