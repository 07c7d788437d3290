import { traced } from '../trace';
import type { DataKey, EncryptionContext, KeyCallCounts, KeyDescription, KeyProvider, KeyStore } from './key-provider';

/**
 * A key provider that traces each call (src/trace.ts): the action, the key asked for, the
 * encryption context, the size of the wrapped key and the key that answered, with the time
 * taken. Never a plaintext data key: only `wrapped` (KMS ciphertext) sizes are written.
 */
export class TracedKeyProvider implements KeyProvider {
  constructor(readonly inner: KeyProvider) {}

  get name(): string {
    return this.inner.name;
  }

  get calls(): KeyCallCounts {
    return this.inner.calls;
  }

  keyStore(): KeyStore {
    return this.inner.keyStore();
  }

  ensureKey(keyId: string, createIfMissing: boolean): Promise<KeyDescription> {
    return traced(this.what('EnsureKey', keyId), () => this.inner.ensureKey(keyId, createIfMissing), described);
  }

  describeKey(keyId: string): Promise<KeyDescription> {
    return traced(this.what('DescribeKey', keyId), () => this.inner.describeKey(keyId), described);
  }

  generateDataKey(keyId: string, context: EncryptionContext): Promise<DataKey> {
    return traced(this.what('GenerateDataKey', keyId, context), () => this.inner.generateDataKey(keyId, context), wrappedBy);
  }

  generateDataKeyWithoutPlaintext(keyId: string, context: EncryptionContext): Promise<{ wrapped: Buffer; keyId: string }> {
    return traced(this.what('GenerateDataKeyWithoutPlaintext', keyId, context), () => this.inner.generateDataKeyWithoutPlaintext(keyId, context), wrappedBy);
  }

  decryptDataKey(wrapped: Buffer, context: EncryptionContext, keyId?: string): Promise<DataKey> {
    return traced(
      `${this.what('Decrypt', keyId, context)} of ${wrapped.length} wrapped bytes`,
      () => this.inner.decryptDataKey(wrapped, context, keyId),
      (k) => `unwrapped by ${k.keyId}`,
    );
  }

  reEncrypt(wrapped: Buffer, context: EncryptionContext, destinationKeyId: string): Promise<{ wrapped: Buffer; keyId: string }> {
    return traced(
      `${this.what('ReEncrypt', destinationKeyId, context)} of ${wrapped.length} wrapped bytes`,
      () => this.inner.reEncrypt(wrapped, context, destinationKeyId),
      wrappedBy,
    );
  }

  encrypt(keyId: string, plaintext: Buffer, context: EncryptionContext): Promise<{ ciphertext: Buffer; keyId: string }> {
    return traced(
      `${this.what('Encrypt', keyId, context)} of ${plaintext.length} bytes`,
      () => this.inner.encrypt(keyId, plaintext, context),
      (r) => `${r.ciphertext.length} ciphertext bytes under ${r.keyId}`,
    );
  }

  decrypt(keyId: string, ciphertext: Buffer, context: EncryptionContext): Promise<Buffer> {
    return traced(
      `${this.what('Decrypt', keyId, context)} of ${ciphertext.length} ciphertext bytes`,
      () => this.inner.decrypt(keyId, ciphertext, context),
      (p) => `${p.length} bytes`,
    );
  }

  private what(action: string, keyId: string | undefined, context?: EncryptionContext): string {
    return `kms ${action}${keyId ? ` key ${keyId}` : ''}${context ? ` context ${JSON.stringify(context)}` : ''} (${this.inner.name})`;
  }
}

/** The provider under any tracing: for checks that depend on which provider it is (doctor). */
export function untracedKeyProvider(keys: KeyProvider): KeyProvider {
  return keys instanceof TracedKeyProvider ? keys.inner : keys;
}

function described(key: KeyDescription): string {
  return `${key.arn}, ${key.state}`;
}

function wrappedBy(key: { wrapped: Buffer; keyId: string }): string {
  return `${key.wrapped.length} wrapped bytes under ${key.keyId}`;
}
