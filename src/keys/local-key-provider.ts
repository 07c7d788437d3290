import { KmscryptError } from '../errors';
import type { DataKey, EncryptionContext, KeyDescription, KeyProvider, KeyStore } from './key-provider';
import { zeroCounts } from './key-provider';
import { DEFAULT_ALIAS, Keyring, KeyringFile, KeyringKey, stripArn } from './keyring';
import { KEY_FIXES } from './kms-errors';
import { KmsFault, LocalKmsKeys } from './local-kms-keys';

const LOCAL_REGION = 'local';
const LOCAL_ACCOUNT = '000000000000';
const LOCAL_ARN_PREFIX = `arn:aws:kms:${LOCAL_REGION}:${LOCAL_ACCOUNT}:key/`;
/** KMS Encrypt's limit on plaintext length. */
const MAX_ENCRYPT_PLAINTEXT = 4096;

/** The ARN kmscrypt records for a key of the local keyring (AWS's shape, in a region and account of its own). */
export function localKeyArn(keyId: string): string {
  return LOCAL_ARN_PREFIX + keyId;
}

/**
 * The embedded default: data keys wrapped by master keys in a local keyring file. The KMS
 * semantics are LocalKmsKeys' (the local KMS endpoint's too); this layer counts the calls and says
 * what failed in terms of the keyring file. A key is named in any form, an ARN of any region
 * included (the same key served by git kmscrypt local-kms has that server's ARN).
 */
export class LocalKeyProvider implements KeyProvider {
  readonly calls = zeroCounts();
  private readonly keys: LocalKmsKeys;

  constructor(private readonly keyring: Keyring = new Keyring()) {
    this.keys = new LocalKmsKeys(keyring, LOCAL_REGION, LOCAL_ACCOUNT);
  }

  get name(): string {
    return `local keyring (${this.keyring.path})`;
  }

  keyStore(): KeyStore {
    const exists = this.keyring.exists();
    return { kind: 'keyring', path: this.keyring.path, keys: exists ? this.keyring.load().keys.length : undefined };
  }

  async ensureKey(keyId: string, createIfMissing: boolean): Promise<KeyDescription> {
    const file = this.keys.load();
    const key = this.keyring.resolve(file, keyId);
    if (key) return describe(file, key);
    if (createIfMissing && keyId === DEFAULT_ALIAS) {
      this.calls.createKey++;
      const created = this.keyring.createKey('default key of git-remote-kmscrypt', { alias: DEFAULT_ALIAS });
      return describe(this.keys.load(), created);
    }
    throw notFoundForNewRepository(keyId, this.keyring);
  }

  async describeKey(keyId: string): Promise<KeyDescription> {
    this.calls.describeKey++;
    const { key, file } = this.run('DescribeKey', keyId, () => this.keys.describe(stripArn(keyId)));
    return describe(file, key);
  }

  async generateDataKey(keyId: string, context: EncryptionContext): Promise<DataKey> {
    this.calls.generateDataKey++;
    const { plaintext, blob, key } = this.run('GenerateDataKey', keyId, () => this.keys.generateDataKey(stripArn(keyId), context, 32));
    return { plaintext, wrapped: blob, keyId: localKeyArn(key.keyId) };
  }

  async generateDataKeyWithoutPlaintext(keyId: string, context: EncryptionContext): Promise<{ wrapped: Buffer; keyId: string }> {
    this.calls.generateDataKeyWithoutPlaintext++;
    const { plaintext, blob, key } = this.run('GenerateDataKeyWithoutPlaintext', keyId, () => this.keys.generateDataKey(stripArn(keyId), context, 32));
    plaintext.fill(0);
    return { wrapped: blob, keyId: localKeyArn(key.keyId) };
  }

  async decryptDataKey(wrapped: Buffer, context: EncryptionContext, keyId?: string): Promise<DataKey> {
    this.calls.decrypt++;
    const { plaintext, key } = this.run(
      'Decrypt',
      keyId,
      () => this.keys.decrypt(wrapped, context, keyId === undefined ? undefined : stripArn(keyId)),
      'data key',
    );
    if (plaintext.length !== 32) {
      plaintext.fill(0);
      throw localKmsError(new KmsFault('InvalidCiphertextException', 'not a data key'), { action: 'Decrypt', keyRef: keyId, keyring: this.keyring });
    }
    return { plaintext, wrapped, keyId: localKeyArn(key.keyId) };
  }

  async reEncrypt(wrapped: Buffer, context: EncryptionContext, destinationKeyId: string): Promise<{ wrapped: Buffer; keyId: string }> {
    this.calls.reEncrypt++;
    const out = this.run('ReEncrypt', destinationKeyId, () => this.keys.reEncrypt(wrapped, { context }, { ref: stripArn(destinationKeyId), context }));
    return { wrapped: out.blob, keyId: localKeyArn(out.destination.keyId) };
  }

  async encrypt(keyId: string, plaintext: Buffer, context: EncryptionContext): Promise<{ ciphertext: Buffer; keyId: string }> {
    this.calls.encrypt++;
    if (plaintext.length < 1 || plaintext.length > MAX_ENCRYPT_PLAINTEXT) throw new RangeError('Encrypt takes 1 to 4096 bytes of plaintext');
    const { blob, key } = this.run('Encrypt', keyId, () => this.keys.encrypt(stripArn(keyId), plaintext, context));
    return { ciphertext: blob, keyId: localKeyArn(key.keyId) };
  }

  async decrypt(keyId: string, ciphertext: Buffer, context: EncryptionContext): Promise<Buffer> {
    this.calls.decrypt++;
    return this.run('Decrypt', keyId, () => this.keys.decrypt(ciphertext, context, stripArn(keyId)), 'ciphertext').plaintext;
  }

  /** Runs one action of the key store; its KMS faults become kmscrypt's errors. `decrypting`: what a Decrypt opens. */
  private run<T>(action: string, keyRef: string | undefined, op: () => T, decrypting?: 'data key' | 'ciphertext'): T {
    try {
      return op();
    } catch (err) {
      if (err instanceof KmsFault) throw localKmsError(err, { action, keyRef, keyring: this.keyring, decrypting });
      throw err;
    }
  }
}

function describe(file: KeyringFile, key: KeyringKey): KeyDescription {
  return {
    keyId: key.keyId,
    arn: localKeyArn(key.keyId),
    enabled: key.state === 'Enabled',
    state: key.state,
    keySpec: 'SYMMETRIC_DEFAULT',
    keyUsage: 'ENCRYPT_DECRYPT',
    aliases: Object.entries(file.aliases)
      .filter(([, id]) => id === key.keyId)
      .map(([alias]) => alias),
  };
}

interface FaultContext {
  action: string;
  keyRef?: string;
  keyring: Keyring;
  decrypting?: 'data key' | 'ciphertext';
}

/** A fault of the key store, said in terms of the keyring file, with the KMS error name as data. */
function localKmsError(fault: KmsFault, { action, keyRef, keyring, decrypting }: FaultContext): KmscryptError {
  const kmsError = fault.type;
  switch (kmsError) {
    case 'DisabledException':
      return new KmscryptError('KEY_ERROR', `${action}: key ${fault.keyId} is disabled (DisabledException)`, {
        kmsError,
        action,
        keyId: fault.keyId,
        fix: KEY_FIXES.disabled(fault.keyId, keyring.path),
      });
    case 'KMSInvalidStateException':
      return new KmscryptError('KEY_ERROR', `${action}: key ${fault.keyId} is pending deletion (KMSInvalidStateException)`, {
        kmsError,
        action,
        keyId: fault.keyId,
        fix: KEY_FIXES.pendingDeletion(fault.keyId, keyring.path),
      });
    case 'NotFoundException':
      return notFound(keyRef ?? '', keyring, action);
    case 'IncorrectKeyException':
      if (decrypting === 'ciphertext') {
        return new KmscryptError('KEY_ERROR', `Decrypt: the ciphertext was not made by key ${keyRef} (IncorrectKeyException)`, {
          kmsError,
          action,
          keyId: keyRef,
        });
      }
      return new KmscryptError(
        'KEY_ERROR',
        `Decrypt: the data key was wrapped by key ${fault.keyId}, not by the configured ${keyRef} (IncorrectKeyException)`,
        {
          kmsError,
          action,
          keyId: fault.keyId,
        },
      );
    case 'InvalidCiphertextException':
      // A blob naming a key the keyring lacks: the keyring this repository was made with is needed.
      if (fault.keyId !== undefined) return notFound(fault.keyId, keyring, 'Decrypt');
      return new KmscryptError(
        'KEY_ERROR',
        'Decrypt: the wrapped data key does not belong to this repository or was altered (InvalidCiphertextException: encryption context mismatch)',
        { kmsError, action: 'Decrypt' },
      );
    default:
      return new KmscryptError('KEY_ERROR', `${action}: ${fault.message} (${kmsError})`, { kmsError, action, keyId: keyRef });
  }
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
      `the local keyring ${keyring.path} does not exist, and without it this repository cannot be decrypted (NotFoundException: key ${stripArn(keyId)})`,
      { ...data, keyringMissing: true, fix: KEY_FIXES.restoreKeyring },
    );
  }
  if (action === 'Decrypt') {
    return new KmscryptError(
      'KEY_ERROR',
      `${action}: key ${stripArn(keyId)}, which wrapped this repository's data keys, is not in local keyring ${keyring.path} (NotFoundException)`,
      { ...data, fix: KEY_FIXES.keyringOfRepository },
    );
  }
  return new KmscryptError('KEY_ERROR', `key ${keyId} not found in local keyring ${keyring.path} (NotFoundException)`, {
    ...data,
    fix: KEY_FIXES.notInKeyring,
  });
}

/**
 * The key chosen for a repository about to be created: nothing is encrypted yet, so the fix is to
 * make the key (or to choose one the keyring holds), not to restore anything.
 */
function notFoundForNewRepository(keyId: string, keyring: Keyring): KmscryptError {
  const where = keyring.exists() ? `local keyring ${keyring.path}` : `local keyring ${keyring.path}, which does not exist yet`;
  return new KmscryptError('KEY_ERROR', `key ${keyId} for the new repository is not in ${where} (NotFoundException)`, {
    kmsError: 'NotFoundException',
    keyId,
    keyring: keyring.path,
    fix: KEY_FIXES.missingLocalNewKey(keyId),
  });
}
