import type { EncryptionContext } from './key-provider';
import { Keyring, KeyringKey, KeyTag } from './keyring';
import { isAliasRef, KmsFault, LocalKmsKeys, SYMMETRIC_DEFAULT } from './local-kms-keys';

export { KmsFault } from './local-kms-keys';

export const LOCAL_KMS_ACTIONS = [
  'CreateKey',
  'CreateAlias',
  'ListAliases',
  'ListKeys',
  'DescribeKey',
  'GenerateDataKey',
  'GenerateDataKeyWithoutPlaintext',
  'Encrypt',
  'Decrypt',
  'ReEncrypt',
  'EnableKey',
  'DisableKey',
  'ScheduleKeyDeletion',
  'CancelKeyDeletion',
  'ListResourceTags',
] as const;

export type LocalKmsAction = (typeof LOCAL_KMS_ACTIONS)[number];

export function isLocalKmsAction(name: string): name is LocalKmsAction {
  return (LOCAL_KMS_ACTIONS as readonly string[]).includes(name);
}

export type KmsRequest = Record<string, unknown>;
export type KmsResponse = Record<string, unknown>;

const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** What a keyring blob's additional data can hold of an encryption context: u16 lengths and count (src/keys/encryption-context.ts). */
const MAX_CONTEXT_FIELD_BYTES = 0xffff;
const MAX_CONTEXT_ENTRIES = 0xffff;
const MAX_TAGS = 50;

/**
 * The KMS actions in the shapes of the AWS KMS JSON 1.1 API: each request's members checked as AWS
 * checks them, applied to the keyring by LocalKmsKeys, and answered as AWS answers.
 */
export class LocalKmsOperations {
  private readonly keys: LocalKmsKeys;

  constructor(keyring: Keyring, region: string, account: string) {
    this.keys = new LocalKmsKeys(keyring, region, account);
  }

  /** The ARN an action is authorized against, for AccessDeniedException messages. */
  resource(action: LocalKmsAction, req: KmsRequest): string {
    const keys = this.keys;
    if (action === 'CreateKey' || action === 'ListAliases' || action === 'ListKeys') return '*';
    if (action === 'CreateAlias' && typeof req.AliasName === 'string') return keys.aliasArn(req.AliasName);
    if (action === 'Decrypt' || action === 'ReEncrypt') {
      const blob = typeof req.CiphertextBlob === 'string' ? Buffer.from(req.CiphertextBlob, 'base64') : Buffer.alloc(0);
      const named = keys.keyring.blobKeyId(blob);
      return named ? keys.keyArn(named) : '*';
    }
    const ref = typeof req.KeyId === 'string' ? req.KeyId : typeof req.TargetKeyId === 'string' ? req.TargetKeyId : undefined;
    if (ref === undefined) return '*';
    const key = keys.find(keys.load(), ref);
    if (key) return keys.keyArn(key.keyId);
    return ref.startsWith('arn:') ? ref : ref.startsWith('alias/') ? keys.aliasArn(ref) : keys.keyArn(ref);
  }

  run(action: LocalKmsAction, req: KmsRequest): KmsResponse {
    switch (action) {
      case 'CreateKey':
        return this.createKey(req);
      case 'CreateAlias':
        return this.createAlias(req);
      case 'ListAliases':
        return this.listAliases(req);
      case 'ListKeys':
        return this.listKeys(req);
      case 'DescribeKey':
        return { KeyMetadata: this.metadata(this.keys.describe(requiredString(req, 'KeyId')).key) };
      case 'GenerateDataKey':
        return this.generateDataKey(req, true);
      case 'GenerateDataKeyWithoutPlaintext':
        return this.generateDataKey(req, false);
      case 'Encrypt':
        return this.encrypt(req);
      case 'Decrypt':
        return this.decrypt(req);
      case 'ReEncrypt':
        return this.reEncrypt(req);
      case 'EnableKey':
      case 'DisableKey':
        this.keys.setEnabled(requiredString(req, 'KeyId'), action === 'EnableKey');
        return {};
      case 'ScheduleKeyDeletion':
        return this.scheduleKeyDeletion(req);
      case 'CancelKeyDeletion':
        return { KeyId: this.keys.keyArn(this.keys.cancelDeletion(requiredString(req, 'KeyId'))) };
      case 'ListResourceTags':
        return this.listResourceTags(req);
    }
  }

  private createKey(req: KmsRequest): KmsResponse {
    const spec = optionalString(req, 'KeySpec') ?? optionalString(req, 'CustomerMasterKeySpec') ?? SYMMETRIC_DEFAULT;
    const usage = optionalString(req, 'KeyUsage') ?? 'ENCRYPT_DECRYPT';
    const origin = optionalString(req, 'Origin') ?? 'AWS_KMS';
    if (spec !== SYMMETRIC_DEFAULT || usage !== 'ENCRYPT_DECRYPT') {
      throw new KmsFault(
        'UnsupportedOperationException',
        `local-kms supports only KeySpec SYMMETRIC_DEFAULT with KeyUsage ENCRYPT_DECRYPT, not ${spec}/${usage}`,
      );
    }
    if (origin !== 'AWS_KMS' || req.MultiRegion === true || req.CustomKeyStoreId !== undefined) {
      throw new KmsFault('UnsupportedOperationException', 'local-kms supports only single-region keys with Origin AWS_KMS');
    }
    const description = optionalString(req, 'Description') ?? '';
    if (description.length > 8192) throw validation('description', 'Member must have length less than or equal to 8192');
    return { KeyMetadata: this.metadata(this.keys.createKey(description, tagsParam(req))) };
  }

  private listResourceTags(req: KmsRequest): KmsResponse {
    const key = this.keys.mustFindKey(this.keys.load(), requiredString(req, 'KeyId'));
    const page = paginate(key.tags ?? [], req);
    return { Tags: page.items, Truncated: page.truncated, ...(page.next ? { NextMarker: page.next } : {}) };
  }

  private createAlias(req: KmsRequest): KmsResponse {
    const name = requiredString(req, 'AliasName');
    const target = requiredString(req, 'TargetKeyId');
    if (!ALIAS_NAME.test(name)) throw validation('aliasName', 'Member must satisfy regular expression pattern: ^alias/[a-zA-Z0-9/_-]+$');
    if (name.startsWith('alias/aws/')) throw new KmsFault('NotAuthorizedException', 'Alias names that begin with alias/aws/ are reserved.');
    // AWS: TargetKeyId takes a key ID or key ARN only.
    if (isAliasRef(target)) throw new KmsFault('ValidationException', 'Aliases must refer to keys. Not aliases');
    this.keys.createAlias(name, target);
    return {};
  }

  private listAliases(req: KmsRequest): KmsResponse {
    const file = this.keys.load();
    const ref = optionalString(req, 'KeyId');
    const only = ref === undefined ? undefined : this.keys.mustFindKey(file, ref).keyId;
    const aliases = Object.entries(file.aliases)
      .filter(([, keyId]) => only === undefined || keyId === only)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, keyId]) => ({ AliasName: name, AliasArn: this.keys.aliasArn(name), TargetKeyId: keyId }));
    const page = paginate(aliases, req);
    return { Aliases: page.items, Truncated: page.truncated, ...(page.next ? { NextMarker: page.next } : {}) };
  }

  private listKeys(req: KmsRequest): KmsResponse {
    const keys = this.keys.load().keys.map((k) => ({ KeyId: k.keyId, KeyArn: this.keys.keyArn(k.keyId) }));
    const page = paginate(keys, req);
    return { Keys: page.items, Truncated: page.truncated, ...(page.next ? { NextMarker: page.next } : {}) };
  }

  private generateDataKey(req: KmsRequest, withPlaintext: boolean): KmsResponse {
    const ref = requiredString(req, 'KeyId');
    const context = contextParam(req, 'EncryptionContext');
    const { plaintext, blob, key } = this.keys.generateDataKey(ref, context, dataKeyLength(req));
    const response: KmsResponse = { CiphertextBlob: blob.toString('base64'), KeyId: this.keys.keyArn(key.keyId) };
    if (withPlaintext) response.Plaintext = plaintext.toString('base64');
    plaintext.fill(0);
    return response;
  }

  private encrypt(req: KmsRequest): KmsResponse {
    const ref = requiredString(req, 'KeyId');
    const plaintext = blobParam(req, 'Plaintext');
    if (plaintext.length < 1 || plaintext.length > 4096) throw validation('plaintext', 'Member must have length between 1 and 4096');
    checkAlgorithm(req, 'EncryptionAlgorithm');
    const { blob, key } = this.keys.encrypt(ref, plaintext, contextParam(req, 'EncryptionContext'));
    return { CiphertextBlob: blob.toString('base64'), KeyId: this.keys.keyArn(key.keyId), EncryptionAlgorithm: SYMMETRIC_DEFAULT };
  }

  private decrypt(req: KmsRequest): KmsResponse {
    const blob = blobParam(req, 'CiphertextBlob');
    const context = contextParam(req, 'EncryptionContext');
    checkAlgorithm(req, 'EncryptionAlgorithm');
    const { plaintext, key } = this.keys.decrypt(blob, context, optionalString(req, 'KeyId'));
    const response = { KeyId: this.keys.keyArn(key.keyId), Plaintext: plaintext.toString('base64'), EncryptionAlgorithm: SYMMETRIC_DEFAULT };
    plaintext.fill(0);
    return response;
  }

  private reEncrypt(req: KmsRequest): KmsResponse {
    const blob = blobParam(req, 'CiphertextBlob');
    const sourceContext = contextParam(req, 'SourceEncryptionContext');
    const destinationContext = contextParam(req, 'DestinationEncryptionContext');
    checkAlgorithm(req, 'SourceEncryptionAlgorithm');
    checkAlgorithm(req, 'DestinationEncryptionAlgorithm');
    const out = this.keys.reEncrypt(
      blob,
      { context: sourceContext, expected: optionalString(req, 'SourceKeyId') },
      { ref: requiredString(req, 'DestinationKeyId'), context: destinationContext },
    );
    return {
      CiphertextBlob: out.blob.toString('base64'),
      SourceKeyId: this.keys.keyArn(out.source.keyId),
      KeyId: this.keys.keyArn(out.destination.keyId),
      SourceEncryptionAlgorithm: SYMMETRIC_DEFAULT,
      DestinationEncryptionAlgorithm: SYMMETRIC_DEFAULT,
    };
  }

  private scheduleKeyDeletion(req: KmsRequest): KmsResponse {
    const ref = requiredString(req, 'KeyId');
    const days = req.PendingWindowInDays === undefined ? 30 : req.PendingWindowInDays;
    if (typeof days !== 'number' || !Number.isInteger(days) || days < 7 || days > 30) {
      throw validation('pendingWindowInDays', 'Member must have value between 7 and 30');
    }
    const deletion = new Date(Date.now() + days * 86_400_000);
    const keyId = this.keys.scheduleDeletion(ref, deletion);
    return { KeyId: this.keys.keyArn(keyId), DeletionDate: deletion.getTime() / 1000, KeyState: 'PendingDeletion', PendingWindowInDays: days };
  }

  private metadata(key: KeyringKey): KmsResponse {
    return {
      AWSAccountId: this.keys.account,
      KeyId: key.keyId,
      Arn: this.keys.keyArn(key.keyId),
      CreationDate: Date.parse(key.createdAt) / 1000,
      Enabled: key.state === 'Enabled',
      Description: key.description,
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: key.state,
      ...(key.deletionDate ? { DeletionDate: Date.parse(key.deletionDate) / 1000 } : {}),
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
      CustomerMasterKeySpec: SYMMETRIC_DEFAULT,
      KeySpec: SYMMETRIC_DEFAULT,
      EncryptionAlgorithms: [SYMMETRIC_DEFAULT],
      MultiRegion: false,
    };
  }
}

function validation(member: string, constraint: string): KmsFault {
  return new KmsFault('ValidationException', `1 validation error detected: Value at '${member}' failed to satisfy constraint: ${constraint}`);
}

function memberName(field: string): string {
  return field[0].toLowerCase() + field.slice(1);
}

function requiredString(req: KmsRequest, field: string): string {
  const value = req[field];
  if (value === undefined || value === null) {
    throw new KmsFault(
      'ValidationException',
      `1 validation error detected: Value null at '${memberName(field)}' failed to satisfy constraint: Member must not be null`,
    );
  }
  if (typeof value !== 'string' || value.length === 0) throw validation(memberName(field), 'Member must be a non-empty string');
  return value;
}

function optionalString(req: KmsRequest, field: string): string | undefined {
  return req[field] === undefined || req[field] === null ? undefined : requiredString(req, field);
}

function blobParam(req: KmsRequest, field: string): Buffer {
  const value = requiredString(req, field);
  if (!BASE64.test(value)) throw new KmsFault('SerializationException', `${field} is not valid base64`);
  return Buffer.from(value, 'base64');
}

/**
 * An encryption context, refused with a 4xx ValidationException (which clients do not retry) when
 * the keyring's blobs cannot hold it: more than 65,535 entries, or a key or value over 65,535 bytes.
 */
function contextParam(req: KmsRequest, field: string): EncryptionContext {
  const value = req[field];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw new KmsFault('SerializationException', `${field} must be a map of strings`);
  const context: Record<string, string> = {};
  const entries = Object.entries(value);
  if (entries.length > MAX_CONTEXT_ENTRIES) throw validation(memberName(field), `Map must have at most ${MAX_CONTEXT_ENTRIES} entries`);
  for (const [k, v] of entries) {
    if (typeof v !== 'string') throw new KmsFault('SerializationException', `${field} must be a map of strings`);
    if (Buffer.byteLength(k, 'utf8') > MAX_CONTEXT_FIELD_BYTES || Buffer.byteLength(v, 'utf8') > MAX_CONTEXT_FIELD_BYTES) {
      throw validation(memberName(field), `Map keys and values must have length less than or equal to ${MAX_CONTEXT_FIELD_BYTES} bytes`);
    }
    context[k] = v;
  }
  return context;
}

/** CreateKey's Tags, checked as AWS checks them (TagException), so that none is silently dropped. */
function tagsParam(req: KmsRequest): KeyTag[] {
  const value = req.Tags;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new KmsFault('SerializationException', 'Tags must be a list of {TagKey, TagValue}');
  if (value.length > MAX_TAGS) throw new KmsFault('TagException', `A key can have at most ${MAX_TAGS} tags, not ${value.length}.`);
  const tags: KeyTag[] = [];
  for (const tag of value as unknown[]) {
    const { TagKey, TagValue } = (tag ?? {}) as { TagKey?: unknown; TagValue?: unknown };
    if (typeof TagKey !== 'string' || typeof TagValue !== 'string') throw new KmsFault('SerializationException', 'Each tag needs a string TagKey and TagValue');
    if (TagKey.length < 1 || TagKey.length > 128) throw validation('tags.member.tagKey', 'Member must have length between 1 and 128');
    if (TagValue.length > 256) throw validation('tags.member.tagValue', 'Member must have length less than or equal to 256');
    if (/^aws:/i.test(TagKey)) throw new KmsFault('TagException', `Tag keys that begin with aws: are reserved: ${TagKey}`);
    if (tags.some((t) => t.TagKey === TagKey)) throw new KmsFault('TagException', `Duplicate tag key: ${TagKey}`);
    tags.push({ TagKey, TagValue });
  }
  return tags;
}

function checkAlgorithm(req: KmsRequest, field: string): void {
  const algorithm = optionalString(req, field);
  if (algorithm !== undefined && algorithm !== SYMMETRIC_DEFAULT) {
    throw new KmsFault('InvalidKeyUsageException', `local-kms keys support only the ${SYMMETRIC_DEFAULT} encryption algorithm, not ${algorithm}`);
  }
}

function dataKeyLength(req: KmsRequest): number {
  const spec = optionalString(req, 'KeySpec');
  const bytes = req.NumberOfBytes;
  if ((spec === undefined) === (bytes === undefined)) {
    throw new KmsFault('ValidationException', 'Please specify either number of bytes or key spec.');
  }
  if (spec === 'AES_256') return 32;
  if (spec === 'AES_128') return 16;
  if (spec !== undefined) throw validation('keySpec', 'Member must satisfy enum value set: [AES_256, AES_128]');
  if (typeof bytes !== 'number' || !Number.isInteger(bytes) || bytes < 1 || bytes > 1024) {
    throw validation('numberOfBytes', 'Member must have value between 1 and 1024');
  }
  return bytes;
}

function paginate<T>(items: T[], req: KmsRequest): { items: T[]; truncated: boolean; next?: string } {
  const limit = req.Limit === undefined ? 100 : req.Limit;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw validation('limit', 'Member must have value between 1 and 1000');
  }
  const marker = optionalString(req, 'Marker');
  const start = marker === undefined ? 0 : Number(marker);
  if (!Number.isInteger(start) || start < 0 || start > items.length) throw new KmsFault('InvalidMarkerException', 'The marker is not valid.');
  const end = start + limit;
  return end < items.length ? { items: items.slice(start, end), truncated: true, next: String(end) } : { items: items.slice(start), truncated: false };
}
