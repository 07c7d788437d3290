import { randomBytes } from 'node:crypto';
import type { EncryptionContext } from './key-provider';
import { Keyring, KeyringFile, KeyringKey, KeyTag } from './keyring';

/**
 * A KMS error as AWS reports it: `{"__type": type, "message": message}` with an HTTP status. The
 * facts after it are for kmscrypt's own messages (LocalKeyProvider); the wire shows none of them.
 */
export class KmsFault extends Error {
  readonly type: string;
  readonly status: number;
  /** The key concerned (a disabled key, the key a blob names), when there is one. */
  readonly keyId?: string;

  constructor(type: string, message: string, status = 400, keyId?: string) {
    super(message);
    this.type = type;
    this.status = status;
    this.keyId = keyId;
  }
}

const ARN = /^arn:aws:kms:([^:]+):([^:]+):(key|alias)\/(.+)$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const SYMMETRIC_DEFAULT = 'SYMMETRIC_DEFAULT';

/**
 * KMS over a keyring file: the one emulation of AWS KMS's key semantics in kmscrypt (key lookup by
 * key ID, key ARN, alias name or alias ARN in one region and account; key states; data keys, Encrypt,
 * Decrypt and ReEncrypt bound to the encryption context), failing with AWS's error types. Both the
 * local KMS endpoint (LocalKmsOperations, AWS's JSON on top) and LocalKeyProvider use it. Every
 * call reads the file afresh, so all of them, in any process, see the same keys.
 */
export class LocalKmsKeys {
  constructor(
    readonly keyring: Keyring,
    private readonly region: string,
    readonly account: string,
  ) {}

  keyArn(keyId: string): string {
    return `arn:aws:kms:${this.region}:${this.account}:key/${keyId}`;
  }

  aliasArn(alias: string): string {
    return `arn:aws:kms:${this.region}:${this.account}:${alias}`;
  }

  load(): KeyringFile {
    return this.keyring.load();
  }

  /** The key `ref` names (any form), whatever its state. */
  describe(ref: string): { key: KeyringKey; file: KeyringFile } {
    const file = this.load();
    return { key: this.mustFind(file, ref), file };
  }

  createKey(description: string, tags: KeyTag[]): KeyringKey {
    return this.keyring.createKey(description, { tags });
  }

  createAlias(name: string, target: string): void {
    this.keyring.update((file) => {
      if (file.aliases[name] !== undefined) throw new KmsFault('AlreadyExistsException', `An alias with the name ${this.aliasArn(name)} already exists`);
      const key = this.mustFindKey(file, target);
      if (key.state === 'PendingDeletion') throw pendingDeletion(this.keyArn(key.keyId), key.keyId);
      file.aliases[name] = key.keyId;
    });
  }

  /** A fresh data key of `bytes` bytes, and its blob under the usable key `ref` names. */
  generateDataKey(ref: string, context: EncryptionContext, bytes: number): { plaintext: Buffer; blob: Buffer; key: KeyringKey } {
    const key = this.usable(this.mustFind(this.load(), ref));
    const plaintext = randomBytes(bytes);
    return { plaintext, blob: this.keyring.encrypt(key, plaintext, context), key };
  }

  encrypt(ref: string, plaintext: Buffer, context: EncryptionContext): { blob: Buffer; key: KeyringKey } {
    const key = this.usable(this.mustFind(this.load(), ref));
    return { blob: this.keyring.encrypt(key, plaintext, context), key };
  }

  /** Unwraps `blob` under the key it names, which must be `expected` (when given) and usable. */
  decrypt(blob: Buffer, context: EncryptionContext, expected?: string): { plaintext: Buffer; key: KeyringKey } {
    const key = this.unwrappingKey(this.load(), blob, expected);
    const plaintext = this.keyring.decrypt(key, blob, context);
    if (!plaintext) throw invalidCiphertext();
    return { plaintext, key };
  }

  reEncrypt(
    blob: Buffer,
    source: { context: EncryptionContext; expected?: string },
    destination: { ref: string; context: EncryptionContext },
  ): { blob: Buffer; source: KeyringKey; destination: KeyringKey } {
    const file = this.load();
    const from = this.unwrappingKey(file, blob, source.expected);
    const to = this.usable(this.mustFind(file, destination.ref));
    const plaintext = this.keyring.decrypt(from, blob, source.context);
    if (!plaintext) throw invalidCiphertext();
    const rewrapped = this.keyring.encrypt(to, plaintext, destination.context);
    plaintext.fill(0);
    return { blob: rewrapped, source: from, destination: to };
  }

  setEnabled(ref: string, enabled: boolean): void {
    this.keyring.update((file) => {
      const key = this.mustFindKey(file, ref);
      if (key.state === 'PendingDeletion') throw pendingDeletion(this.keyArn(key.keyId), key.keyId);
      key.state = enabled ? 'Enabled' : 'Disabled';
    });
  }

  scheduleDeletion(ref: string, deletion: Date): string {
    return this.keyring.update((file) => {
      const key = this.mustFindKey(file, ref);
      if (key.state === 'PendingDeletion') throw pendingDeletion(this.keyArn(key.keyId), key.keyId);
      key.state = 'PendingDeletion';
      key.deletionDate = deletion.toISOString();
      return key.keyId;
    });
  }

  cancelDeletion(ref: string): string {
    return this.keyring.update((file) => {
      const key = this.mustFindKey(file, ref);
      if (key.state !== 'PendingDeletion') throw new KmsFault('KMSInvalidStateException', `${this.keyArn(key.keyId)} is not pending deletion.`, 400, key.keyId);
      // As in AWS KMS, a key whose deletion is cancelled comes back disabled.
      key.state = 'Disabled';
      delete key.deletionDate;
      return key.keyId;
    });
  }

  /** Key ID, key ARN, alias name or alias ARN; ARNs of another region or account do not resolve. */
  find(file: KeyringFile, ref: string): KeyringKey | undefined {
    const arn = ARN.exec(ref);
    if (arn && (arn[1] !== this.region || arn[2] !== this.account)) return undefined;
    if (!arn && !ref.startsWith('alias/') && !UUID.test(ref)) return undefined;
    return this.keyring.resolve(file, ref);
  }

  /**
   * For the operations whose KeyId AWS documents as "the key ID or key ARN" (EnableKey, DisableKey,
   * ScheduleKeyDeletion, CancelKeyDeletion, CreateAlias's TargetKeyId, ListAliases,
   * ListResourceTags): an alias name or alias ARN is refused as AWS refuses it.
   */
  mustFindKey(file: KeyringFile, ref: string): KeyringKey {
    if (isAliasRef(ref)) throw new KmsFault('NotFoundException', `Invalid keyId '${ref}': this operation takes a key ID or key ARN, not an alias`);
    return this.mustFind(file, ref);
  }

  mustFind(file: KeyringFile, ref: string): KeyringKey {
    const key = this.find(file, ref);
    if (key) return key;
    const arn = ARN.exec(ref);
    if (arn?.[3] === 'alias') throw new KmsFault('NotFoundException', `Alias ${ref} is not found.`);
    if (ref.startsWith('alias/')) throw new KmsFault('NotFoundException', `Alias ${this.aliasArn(ref)} is not found.`);
    if (arn) throw new KmsFault('NotFoundException', `Key '${ref}' does not exist`);
    if (UUID.test(ref)) throw new KmsFault('NotFoundException', `Key '${this.keyArn(ref)}' does not exist`);
    throw new KmsFault('NotFoundException', `Invalid keyId '${ref}'`);
  }

  /**
   * The key that wrapped `blob`, usable. With the KeyId the caller expects, a blob of any other key
   * (one this keyring lacks included) is an IncorrectKeyException naming the blob's key; without
   * it, a blob naming a key this keyring lacks is an InvalidCiphertextException naming that key.
   */
  private unwrappingKey(file: KeyringFile, blob: Buffer, expected: string | undefined): KeyringKey {
    const named = this.keyring.blobKeyId(blob);
    if (expected !== undefined) {
      const key = this.mustFind(file, expected);
      if (named !== key.keyId) {
        if (named === undefined) throw invalidCiphertext();
        throw new KmsFault('IncorrectKeyException', 'The key ID in the request does not identify a CMK that can perform this operation.', 400, named);
      }
      return this.usable(key);
    }
    const key = named === undefined ? undefined : file.keys.find((k) => k.keyId === named);
    if (!key) throw invalidCiphertext(named);
    return this.usable(key);
  }

  private usable(key: KeyringKey): KeyringKey {
    const arn = this.keyArn(key.keyId);
    if (key.state === 'Disabled') throw new KmsFault('DisabledException', `${arn} is disabled.`, 400, key.keyId);
    if (key.state === 'PendingDeletion') throw pendingDeletion(arn, key.keyId);
    return key;
  }
}

export function isAliasRef(ref: string): boolean {
  return ref.startsWith('alias/') || ARN.exec(ref)?.[3] === 'alias';
}

function invalidCiphertext(keyId?: string): KmsFault {
  return new KmsFault('InvalidCiphertextException', 'The ciphertext is invalid or the encryption context does not match.', 400, keyId);
}

function pendingDeletion(arn: string, keyId: string): KmsFault {
  return new KmsFault('KMSInvalidStateException', `${arn} is pending deletion.`, 400, keyId);
}
