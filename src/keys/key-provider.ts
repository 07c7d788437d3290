/**
 * The encryption context that binds every data key to one repository, as CodeCommit binds
 * its data keys to the repository ID. KMS checks it on every Decrypt and ReEncrypt.
 */
export type EncryptionContext = Readonly<Record<string, string>>;

export const REPOSITORY_CONTEXT_KEY = 'kmscrypt:repository-id';

export function repositoryContext(repositoryId: string): EncryptionContext {
  return Object.freeze({ [REPOSITORY_CONTEXT_KEY]: repositoryId });
}

export interface DataKey {
  /** 32 bytes of key material owned by the caller (never the SDK's buffer). */
  plaintext: Buffer;
  /** The wrapped (KMS ciphertext blob) form, stored beside the data it protects. */
  wrapped: Buffer;
  /** The full identifier (ARN) of the KMS key that wrapped it. */
  keyId: string;
}

export interface KeyDescription {
  keyId: string;
  arn: string;
  enabled: boolean;
  state: string;
  keySpec: string;
  keyUsage: string;
  aliases: string[];
}

/**
 * Where the master keys are, for doctor: a keyring file of this machine (`keys`: how many it holds;
 * undefined when the file does not exist), or a KMS service reached over the network.
 */
export type KeyStore = { kind: 'keyring'; path: string; keys: number | undefined } | { kind: 'kms' };

/** Counts of calls made, for tests and benchmarks (exact figures, not timings). */
export interface KeyCallCounts {
  generateDataKey: number;
  generateDataKeyWithoutPlaintext: number;
  decrypt: number;
  reEncrypt: number;
  describeKey: number;
  encrypt: number;
  createKey: number;
}

/**
 * One interface for data keys, behind which sit the local keyring and AWS KMS.
 * Key identifiers are whatever KMS accepts: key ID, key ARN, alias name or alias ARN.
 */
export interface KeyProvider {
  /** Short name for messages: "local keyring (~/.config/kmscrypt/keyring.json)" or "AWS KMS (eu-west-1)". */
  readonly name: string;

  /** Where the master keys are (reading a keyring file may fail as reading it for a key would). */
  keyStore(): KeyStore;

  /**
   * Resolves the key to use for new data, creating the default alias's key on first use
   * when `createIfMissing` is set (as CodeCommit creates aws/codecommit).
   */
  ensureKey(keyId: string, createIfMissing: boolean): Promise<KeyDescription>;

  describeKey(keyId: string): Promise<KeyDescription>;
  generateDataKey(keyId: string, context: EncryptionContext): Promise<DataKey>;
  generateDataKeyWithoutPlaintext(keyId: string, context: EncryptionContext): Promise<{ wrapped: Buffer; keyId: string }>;
  decryptDataKey(wrapped: Buffer, context: EncryptionContext, keyId?: string): Promise<DataKey>;
  reEncrypt(wrapped: Buffer, context: EncryptionContext, destinationKeyId: string): Promise<{ wrapped: Buffer; keyId: string }>;

  /**
   * Encrypts a small plaintext (at most 4096 bytes, as KMS Encrypt) under `keyId`: what only a
   * principal allowed to use that key can produce (a rotation's endorsement of the next key).
   */
  encrypt(keyId: string, plaintext: Buffer, context: EncryptionContext): Promise<{ ciphertext: Buffer; keyId: string }>;

  /**
   * Decrypts what `encrypt` produced, asking only `keyId` (KMS is given the KeyId, so a blob of
   * another key is refused by KMS instead of being sent to that key). The plaintext is the caller's.
   */
  decrypt(keyId: string, ciphertext: Buffer, context: EncryptionContext): Promise<Buffer>;

  readonly calls: KeyCallCounts;
}

export function zeroCounts(): KeyCallCounts {
  return {
    generateDataKey: 0,
    generateDataKeyWithoutPlaintext: 0,
    decrypt: 0,
    reEncrypt: 0,
    describeKey: 0,
    encrypt: 0,
    createKey: 0,
  };
}
