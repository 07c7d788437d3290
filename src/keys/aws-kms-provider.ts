import type { CreateKeyCommandOutput, DecryptCommandInput } from '@aws-sdk/client-kms';
import { KmscryptError } from '../errors';
import { createKmsClient, KmsClientLike, KmsClientOptions, newCommand, Operation, Operations } from './aws-kms-client';
import { serializeEncryptionContext } from './encryption-context';
import type { DataKey, EncryptionContext, KeyCallCounts, KeyDescription, KeyProvider, KeyStore } from './key-provider';
import { zeroCounts } from './key-provider';
import { DEFAULT_ALIAS } from './keyring';
import { resolveKmsEndpoint } from './kms-endpoint';
import { KEY_FIXES, kmsError } from './kms-errors';
import { requireBlob, requireKeyId, requireUsableKey, takePlaintext, toDescription } from './kms-responses';

export interface AwsKmsProviderOptions extends KmsClientOptions {
  client?: KmsClientLike;
}

export interface AwsKmsCallCounts extends KeyCallCounts {
  createAlias: number;
  scheduleKeyDeletion: number;
}

const COUNTER: Record<Operation, keyof AwsKmsCallCounts> = {
  DescribeKey: 'describeKey',
  Encrypt: 'encrypt',
  CreateKey: 'createKey',
  CreateAlias: 'createAlias',
  GenerateDataKey: 'generateDataKey',
  GenerateDataKeyWithoutPlaintext: 'generateDataKeyWithoutPlaintext',
  Decrypt: 'decrypt',
  ReEncrypt: 'reEncrypt',
  ScheduleKeyDeletion: 'scheduleKeyDeletion',
};

export const DEFAULT_KEY_DESCRIPTION = 'git-remote-kmscrypt default key';

/**
 * Data keys from AWS KMS (or anything speaking its API), bound to the repository by the
 * encryption context. Key descriptions and unwrapped data keys are cached for the life of the
 * process, so each key is described once and each wrapped data key decrypted once.
 */
export class AwsKmsProvider implements KeyProvider {
  readonly calls: AwsKmsCallCounts = { ...zeroCounts(), createAlias: 0, scheduleKeyDeletion: 0 };
  private readonly options: AwsKmsProviderOptions;
  private client: KmsClientLike | undefined;
  private resolvedRegion: string | undefined;
  private readonly descriptions = new Map<string, Promise<KeyDescription>>();
  private readonly dataKeys = new Map<string, Promise<{ plaintext: Buffer; keyId: string }>>();

  constructor(options: AwsKmsProviderOptions = {}) {
    this.options = options;
    this.client = options.client;
    this.resolvedRegion = options.region;
  }

  get name(): string {
    return `AWS KMS (${this.resolvedRegion ?? process.env.AWS_REGION ?? 'default region'})`;
  }

  keyStore(): KeyStore {
    return { kind: 'kms' };
  }

  async ensureKey(keyId: string, createIfMissing: boolean): Promise<KeyDescription> {
    let description: KeyDescription;
    try {
      description = await this.describeKey(keyId);
    } catch (err) {
      if (!(createIfMissing && keyId === DEFAULT_ALIAS && err instanceof KmscryptError && err.data.kmsError === 'NotFoundException')) throw err;
      description = await this.cached(keyId, () => this.createDefaultKey());
    }
    return requireUsableKey(description, keyId);
  }

  describeKey(keyId: string): Promise<KeyDescription> {
    return this.cached(keyId, async () => {
      const out = await this.send('DescribeKey', { KeyId: keyId }, keyId);
      return toDescription(out.KeyMetadata, keyId);
    });
  }

  async generateDataKey(keyId: string, context: EncryptionContext): Promise<DataKey> {
    const out = await this.send('GenerateDataKey', { KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: { ...context } }, keyId);
    let wrapped: Buffer;
    let wrappedBy: string;
    try {
      wrapped = requireBlob(out.CiphertextBlob, 'GenerateDataKey');
      wrappedBy = requireKeyId(out.KeyId, 'GenerateDataKey');
    } catch (err) {
      out.Plaintext?.fill(0);
      throw err;
    }
    return { plaintext: takePlaintext(out.Plaintext, 'GenerateDataKey'), wrapped, keyId: wrappedBy };
  }

  async generateDataKeyWithoutPlaintext(keyId: string, context: EncryptionContext): Promise<{ wrapped: Buffer; keyId: string }> {
    const op = 'GenerateDataKeyWithoutPlaintext';
    const out = await this.send(op, { KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: { ...context } }, keyId);
    return { wrapped: requireBlob(out.CiphertextBlob, op), keyId: requireKeyId(out.KeyId, op) };
  }

  async decryptDataKey(wrapped: Buffer, context: EncryptionContext, keyId?: string): Promise<DataKey> {
    const cacheKey = `${serializeEncryptionContext(context).toString('base64')}:${wrapped.toString('base64')}`;
    let pending = this.dataKeys.get(cacheKey);
    if (!pending) {
      pending = this.unwrap(wrapped, context, keyId);
      this.dataKeys.set(cacheKey, pending);
      pending.catch(() => this.dataKeys.delete(cacheKey));
    }
    const unwrapped = await pending;
    if (keyId !== undefined && !(await this.sameKey(keyId, unwrapped.keyId))) {
      throw kmsError(Object.assign(new Error('cached data key was wrapped by another key'), { name: 'IncorrectKeyException' }), {
        action: 'Decrypt',
        keyId,
        region: await this.region(),
        endpoint: this.endpoint(),
      });
    }
    return { plaintext: Buffer.from(unwrapped.plaintext), wrapped, keyId: unwrapped.keyId };
  }

  async reEncrypt(wrapped: Buffer, context: EncryptionContext, destinationKeyId: string): Promise<{ wrapped: Buffer; keyId: string }> {
    const out = await this.send(
      'ReEncrypt',
      { CiphertextBlob: wrapped, SourceEncryptionContext: { ...context }, DestinationEncryptionContext: { ...context }, DestinationKeyId: destinationKeyId },
      destinationKeyId,
    );
    return { wrapped: requireBlob(out.CiphertextBlob, 'ReEncrypt'), keyId: requireKeyId(out.KeyId, 'ReEncrypt') };
  }

  async encrypt(keyId: string, plaintext: Buffer, context: EncryptionContext): Promise<{ ciphertext: Buffer; keyId: string }> {
    const out = await this.send('Encrypt', { KeyId: keyId, Plaintext: plaintext, EncryptionContext: { ...context } }, keyId);
    return { ciphertext: requireBlob(out.CiphertextBlob, 'Encrypt'), keyId: requireKeyId(out.KeyId, 'Encrypt') };
  }

  async decrypt(keyId: string, ciphertext: Buffer, context: EncryptionContext): Promise<Buffer> {
    const out = await this.send('Decrypt', { KeyId: keyId, CiphertextBlob: ciphertext, EncryptionContext: { ...context } }, keyId);
    const plaintext = out.Plaintext;
    if (!plaintext) throw new KmscryptError('KEY_ERROR', 'kms:Decrypt returned no plaintext; the KMS endpoint does not behave like AWS KMS');
    const owned = Buffer.from(plaintext);
    plaintext.fill(0);
    return owned;
  }

  /** Zeroes and forgets the cached data keys. */
  clearCache(): void {
    for (const pending of this.dataKeys.values())
      pending.then(
        (k) => k.plaintext.fill(0),
        () => undefined,
      );
    this.dataKeys.clear();
  }

  private async unwrap(wrapped: Buffer, context: EncryptionContext, keyId: string | undefined): Promise<{ plaintext: Buffer; keyId: string }> {
    const input: DecryptCommandInput = { CiphertextBlob: wrapped, EncryptionContext: { ...context } };
    if (keyId !== undefined) input.KeyId = keyId;
    const out = await this.send('Decrypt', input, keyId);
    if (!out.KeyId) out.Plaintext?.fill(0);
    const wrappedBy = requireKeyId(out.KeyId, 'Decrypt');
    return { plaintext: takePlaintext(out.Plaintext, 'Decrypt'), keyId: wrappedBy };
  }

  /**
   * Whether `ref` names the key whose ARN is `arn`, for a data key served from the cache (KMS
   * checked the KeyId of the Decrypt that filled it). An alias not described yet is given the benefit of the doubt.
   */
  private async sameKey(ref: string, arn: string): Promise<boolean> {
    if (ref === arn || arn.endsWith(`:key/${ref}`)) return true;
    if (!ref.startsWith('alias/') && !/^arn:[^:]+:kms:[^:]*:[^:]*:alias\//.test(ref)) return false;
    const described = this.descriptions.get(ref);
    if (!described) return true;
    return described.then(
      (d) => d.arn === arn,
      () => true,
    );
  }

  private async createDefaultKey(): Promise<KeyDescription> {
    let created: CreateKeyCommandOutput;
    try {
      created = await this.send('CreateKey', { Description: DEFAULT_KEY_DESCRIPTION, KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' });
    } catch (err) {
      throw this.cannotCreate(err, 'CreateKey');
    }
    const keyId = created.KeyMetadata?.KeyId;
    if (!keyId) throw new KmscryptError('KEY_ERROR', 'kms:CreateKey returned no KeyId; the KMS endpoint does not behave like AWS KMS');
    try {
      await this.send('CreateAlias', { AliasName: DEFAULT_ALIAS, TargetKeyId: keyId }, DEFAULT_ALIAS);
    } catch (err) {
      await this.discard(keyId);
      if (!(err instanceof KmscryptError && err.data.kmsError === 'AlreadyExistsException')) throw this.cannotCreate(err, 'CreateAlias');
      // Another process created the alias between our DescribeKey and CreateAlias: use its key.
      const out = await this.send('DescribeKey', { KeyId: DEFAULT_ALIAS }, DEFAULT_ALIAS);
      return toDescription(out.KeyMetadata, DEFAULT_ALIAS);
    }
    return toDescription(created.KeyMetadata, DEFAULT_ALIAS);
  }

  private cannotCreate(err: unknown, action: string): unknown {
    if (!(err instanceof KmscryptError) || err.data.kmsError !== 'AccessDeniedException') return err;
    return new KmscryptError(
      'KEY_ERROR',
      `cannot create the default key ${DEFAULT_ALIAS} in ${this.resolvedRegion ?? 'this region'}: kms:${action} was denied (AccessDeniedException)`,
      { kmsError: 'AccessDeniedException', action, fix: KEY_FIXES.cannotCreateDefault },
    );
  }

  /** Schedules deletion of a key we created but could not alias; it never wrapped anything. */
  private async discard(keyId: string): Promise<void> {
    try {
      await this.send('ScheduleKeyDeletion', { KeyId: keyId, PendingWindowInDays: 7 }, keyId);
    } catch {
      process.stderr.write(`kmscrypt: warning: could not schedule deletion of unused KMS key ${keyId}; delete it yourself\n`);
    }
  }

  private cached(keyId: string, describe: () => Promise<KeyDescription>): Promise<KeyDescription> {
    let pending = this.descriptions.get(keyId);
    if (!pending) {
      pending = describe();
      this.descriptions.set(keyId, pending);
      pending.catch(() => this.descriptions.delete(keyId));
    }
    return pending;
  }

  private async send<O extends Operation>(op: O, input: Operations[O][0], keyId?: string): Promise<Operations[O][1]> {
    this.calls[COUNTER[op]]++;
    try {
      return (await this.kms().send(newCommand(op, input))) as Operations[O][1];
    } catch (err) {
      throw kmsError(err, { action: op, keyId, region: await this.region(), endpoint: this.endpoint() });
    }
  }

  private kms(): KmsClientLike {
    this.client ??= createKmsClient(this.options);
    return this.client;
  }

  private async region(): Promise<string> {
    if (this.resolvedRegion) return this.resolvedRegion;
    try {
      const region = this.client?.config?.region;
      const value = typeof region === 'function' ? await region() : region;
      if (value) this.resolvedRegion = value;
    } catch {
      // No region configured: the error itself says so.
    }
    return this.resolvedRegion ?? process.env.AWS_REGION ?? 'the default region';
  }

  /** The endpoint for messages, resolved as the SDK resolves it (profile endpoint_url aside). */
  private endpoint(): string {
    return (
      this.options.endpoint ?? resolveKmsEndpoint(undefined).url ?? `https://kms.${this.resolvedRegion ?? process.env.AWS_REGION ?? '<region>'}.amazonaws.com`
    );
  }
}
