import { randomBytes } from 'node:crypto';
import { KmscryptError } from '../errors';
import type { DataKey, EncryptionContext, KeyDescription, KeyProvider } from './key-provider';
import { zeroCounts } from './key-provider';
import { DEFAULT_ALIAS, Keyring, KeyringFile, KeyringKey } from './keyring';

const LOCAL_ARN_PREFIX = 'arn:aws:kms:local:000000000000:key/';
/** KMS Encrypt's limit on plaintext length. */
const MAX_ENCRYPT_PLAINTEXT = 4096;

/** The ARN kmscrypt records for a key of the local keyring (AWS's shape, in a region and account of its own). */
export function localKeyArn(keyId: string): string {
  return LOCAL_ARN_PREFIX + keyId;
}

/** The embedded default: data keys wrapped by master keys in a local keyring file. */
export class LocalKeyProvider implements KeyProvider {
  readonly calls = zeroCounts();
  readonly keyring: Keyring;

  constructor(keyring: Keyring = new Keyring()) {
    this.keyring = keyring;
  }

  get name(): string {
    return `local keyring (${this.keyring.path})`;
  }

  async ensureKey(keyId: string, createIfMissing: boolean): Promise<KeyDescription> {
    const file = this.keyring.load();
    const key = this.keyring.resolve(file, keyId);
    if (key) return describe(file, key);
    if (createIfMissing && keyId === DEFAULT_ALIAS) {
      this.calls.createKey++;
      const created = this.keyring.createKey('default key of git-remote-kmscrypt', { alias: DEFAULT_ALIAS });
      return describe(this.keyring.load(), created);
    }
    throw notFoundForNewRepository(keyId, this.keyring);
  }

  async describeKey(keyId: string): Promise<KeyDescription> {
    this.calls.describeKey++;
    const file = this.keyring.load();
    const key = this.keyring.resolve(file, keyId);
    if (!key) throw notFound(keyId, this.keyring);
    return describe(file, key);
  }

  async generateDataKey(keyId: string, context: EncryptionContext): Promise<DataKey> {
    this.calls.generateDataKey++;
    const key = this.usableKey(keyId, 'GenerateDataKey');
    const plaintext = randomBytes(32);
    return { plaintext, wrapped: this.keyring.encrypt(key, plaintext, context), keyId: LOCAL_ARN_PREFIX + key.keyId };
  }

  async generateDataKeyWithoutPlaintext(keyId: string, context: EncryptionContext): Promise<{ wrapped: Buffer; keyId: string }> {
    this.calls.generateDataKeyWithoutPlaintext++;
    const key = this.usableKey(keyId, 'GenerateDataKeyWithoutPlaintext');
    const plaintext = randomBytes(32);
    const wrapped = this.keyring.encrypt(key, plaintext, context);
    plaintext.fill(0);
    return { wrapped, keyId: LOCAL_ARN_PREFIX + key.keyId };
  }

  async decryptDataKey(wrapped: Buffer, context: EncryptionContext, keyId?: string): Promise<DataKey> {
    this.calls.decrypt++;
    const named = this.keyring.blobKeyId(wrapped);
    if (!named) throw invalidCiphertext();
    const key = this.usableKey(named, 'Decrypt');
    if (keyId) {
      const expected = this.keyring.resolve(this.keyring.load(), keyId);
      if (expected && expected.keyId !== key.keyId) {
        throw new KmscryptError('KEY_ERROR', `Decrypt: the data key was wrapped by key ${key.keyId}, not by the configured ${keyId} (IncorrectKeyException)`, {
          kmsError: 'IncorrectKeyException',
          action: 'Decrypt',
          keyId: key.keyId,
        });
      }
    }
    const plaintext = this.keyring.decrypt(key, wrapped, context);
    if (!plaintext || plaintext.length !== 32) throw invalidCiphertext();
    return { plaintext, wrapped, keyId: LOCAL_ARN_PREFIX + key.keyId };
  }

  async reEncrypt(wrapped: Buffer, context: EncryptionContext, destinationKeyId: string): Promise<{ wrapped: Buffer; keyId: string }> {
    this.calls.reEncrypt++;
    const source = await this.decryptDataKey(wrapped, context);
    this.calls.decrypt--;
    const dest = this.usableKey(destinationKeyId, 'ReEncrypt');
    const rewrapped = this.keyring.encrypt(dest, source.plaintext, context);
    source.plaintext.fill(0);
    return { wrapped: rewrapped, keyId: LOCAL_ARN_PREFIX + dest.keyId };
  }

  async encrypt(keyId: string, plaintext: Buffer, context: EncryptionContext): Promise<{ ciphertext: Buffer; keyId: string }> {
    this.calls.encrypt++;
    if (plaintext.length < 1 || plaintext.length > MAX_ENCRYPT_PLAINTEXT) throw new RangeError('Encrypt takes 1 to 4096 bytes of plaintext');
    const key = this.usableKey(keyId, 'Encrypt');
    return { ciphertext: this.keyring.encrypt(key, plaintext, context), keyId: localKeyArn(key.keyId) };
  }

  async decrypt(keyId: string, ciphertext: Buffer, context: EncryptionContext): Promise<Buffer> {
    this.calls.decrypt++;
    const key = this.usableKey(keyId, 'Decrypt');
    if (this.keyring.blobKeyId(ciphertext) !== key.keyId) {
      throw new KmscryptError('KEY_ERROR', `Decrypt: the ciphertext was not made by key ${keyId} (IncorrectKeyException)`, { kmsError: 'IncorrectKeyException', action: 'Decrypt', keyId });
    }
    const plaintext = this.keyring.decrypt(key, ciphertext, context);
    if (!plaintext) throw invalidCiphertext();
    return plaintext;
  }

  private usableKey(keyId: string, action: string): KeyringKey {
    const key = this.keyring.resolve(this.keyring.load(), keyId);
    if (!key) throw notFound(keyId, this.keyring, action);
    if (key.state === 'Disabled') {
      throw new KmscryptError('KEY_ERROR', `${action}: key ${key.keyId} is disabled (DisabledException); enable it again or rotate the repository to another key`, {
        kmsError: 'DisabledException',
        action,
        keyId: key.keyId,
      });
    }
    if (key.state === 'PendingDeletion') {
      throw new KmscryptError('KEY_ERROR', `${action}: key ${key.keyId} is pending deletion (KMSInvalidStateException); cancel the deletion to read this repository`, {
        kmsError: 'KMSInvalidStateException',
        action,
        keyId: key.keyId,
      });
    }
    return key;
  }
}

function describe(file: KeyringFile, key: KeyringKey): KeyDescription {
  return {
    keyId: key.keyId,
    arn: LOCAL_ARN_PREFIX + key.keyId,
    enabled: key.state === 'Enabled',
    state: key.state,
    keySpec: 'SYMMETRIC_DEFAULT',
    keyUsage: 'ENCRYPT_DECRYPT',
    aliases: Object.entries(file.aliases).filter(([, id]) => id === key.keyId).map(([alias]) => alias),
  };
}

/**
 * The advice depends on what is missing: without the keyring file nothing it protected can be
 * decrypted (choosing another key cannot help); data wrapped by a key the keyring lacks needs the
 * keyring that holds it; only a key chosen for new data can be replaced by another one.
 */
function notFound(keyId: string, keyring: Keyring, action?: string): KmscryptError {
  const data = { kmsError: 'NotFoundException', keyId, keyring: keyring.path };
  if (!keyring.exists()) {
    return new KmscryptError(
      'KEY_ERROR',
      // A local key named by its ARN or its ID is the same key: one way to write it in this line.
      `the local keyring ${keyring.path} does not exist, and without it this repository cannot be decrypted (NotFoundException: key ${keyId.startsWith(LOCAL_ARN_PREFIX) ? keyId.slice(LOCAL_ARN_PREFIX.length) : keyId}); restore it from your backup, or point KMSCRYPT_KEYRING (kmscrypt.keyring) at it`,
      { ...data, keyringMissing: true },
    );
  }
  if (action === 'Decrypt') {
    return new KmscryptError(
      'KEY_ERROR',
      `${action}: key ${keyId}, which wrapped this repository's data keys, is not in local keyring ${keyring.path} (NotFoundException); restore the keyring this repository was made with, or point KMSCRYPT_KEYRING (kmscrypt.keyring) at it`,
      data,
    );
  }
  return new KmscryptError('KEY_ERROR', `key ${keyId} not found in local keyring ${keyring.path} (NotFoundException); set kmscrypt.keyId to a key it holds, or restore the keyring this repository was made with`, data);
}

/**
 * The key chosen for a repository about to be created: nothing is encrypted yet, so the fix is to
 * make the key (or to choose one the keyring holds), not to restore anything.
 */
function notFoundForNewRepository(keyId: string, keyring: Keyring): KmscryptError {
  const where = keyring.exists() ? `local keyring ${keyring.path}` : `local keyring ${keyring.path}, which does not exist yet`;
  const fix = keyId.startsWith('alias/')
    ? `create it with 'git kmscrypt keys create --alias ${keyId.slice('alias/'.length)}', or choose a key the keyring holds ('git kmscrypt keys list') with kmscrypt.keyId`
    : `set kmscrypt.keyId to a key the keyring holds ('git kmscrypt keys list' shows them, 'git kmscrypt keys create' makes one), or point KMSCRYPT_KEYRING (kmscrypt.keyring) at the keyring that holds it`;
  return new KmscryptError('KEY_ERROR', `key ${keyId} for the new repository is not in ${where} (NotFoundException); ${fix}`, {
    kmsError: 'NotFoundException',
    keyId,
    keyring: keyring.path,
  });
}

function invalidCiphertext(): KmscryptError {
  return new KmscryptError(
    'KEY_ERROR',
    'Decrypt: the wrapped data key does not belong to this repository or was altered (InvalidCiphertextException: encryption context mismatch)',
    { kmsError: 'InvalidCiphertextException', action: 'Decrypt' },
  );
}
