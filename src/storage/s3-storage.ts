import { promises as fs } from 'node:fs';
import { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { isKmscryptError, KmscryptError } from '../errors';
import { checkEndpointSecurity } from '../endpoint-security';
import { type S3Access, unquoteEtag } from './s3-access';
import { createS3Client, resolveS3Endpoint, type S3Credentials, s3Sdk } from './s3-client';
import { attemptsOf, isNoSuchKey, isOutcomeUnknown, isPreconditionFailed, s3Error, type S3ErrorContext } from './s3-errors';
import { uploadFileMultipart } from './s3-multipart-upload';
import { openObjectStream } from './s3-object-stream';
import { readObjectBytes } from './s3-range-read';
import { type S3RequestCounts, zeroS3RequestCounts } from './s3-request-counts';
import { type ByteRange, type GrowingFile, isGrowingFile, type PutBody, type ReadLimit, type Storage, type StoredObjectInfo } from './storage';

export interface S3StorageOptions {
  bucket: string;
  /** "" or "some/prefix" (slashes at either end are ignored). */
  prefix: string;
  /** Default: AWS_REGION or the profile's region; us-east-1 for a custom endpoint. */
  region?: string;
  /** Default: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL, then AWS S3. */
  endpoint?: string;
  /** Default: AWS_PROFILE, then the default credential chain. */
  profile?: string;
  /** Default: true with a custom endpoint, false on AWS. */
  forcePathStyle?: boolean;
  /** Accept plain http:// to a non-loopback endpoint (with a warning). */
  allowHttp?: boolean;
  /** Explicit credentials instead of the default chain (tests). */
  credentials?: S3Credentials;
  /** How long a connection may stay silent before the request is abandoned; default 60 s. */
  idleTimeoutMs?: number;
}

/** Files above this go up by multipart upload; smaller ones are read into memory and PUT. */
export const MULTIPART_THRESHOLD_BYTES = 16 << 20;
/** Largest single PutObject S3 accepts: the limit for create-only writes, which are never multipart. */
const MAX_SINGLE_PUT_BYTES = 5 * 1024 ** 3;
const EMPTY_BODY = Buffer.alloc(0);
/** Rounds of "write, outcome unknown, re-read" before giving up on a conditional write. */
const CONDITIONAL_ROUNDS = 4;

type Condition = { IfNoneMatch: '*' } | { IfMatch: string };

/**
 * Storage in an S3 bucket under a key prefix. Create-only writes and compare-and-swap are
 * single-part PutObject with If-None-Match / If-Match; an answer that leaves the outcome open
 * (409, 5xx, lost connection, a retried attempt) is settled by reading the object back, never guessed.
 */
export class S3Storage implements Storage, S3Access {
  readonly location: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  /** HTTP requests sent so far, by kind. */
  readonly requests: S3RequestCounts = zeroS3RequestCounts();
  bytesRead = 0;
  private readonly errorContext: Omit<S3ErrorContext, 'action' | 'target'>;

  constructor(options: S3StorageOptions) {
    if (!options.bucket) throw new KmscryptError('BAD_URL', 'no S3 bucket given', { fix: 'use kmscrypt::s3://bucket/prefix' });
    this.bucket = options.bucket;
    this.prefix = (options.prefix ?? '').replace(/^\/+|\/+$/g, '');
    this.location = `s3://${this.bucket}${this.prefix ? '/' + this.prefix : ''}`;
    const endpoint = resolveS3Endpoint(options.endpoint);
    if (endpoint.url) checkEndpointSecurity(endpoint.url, options.allowHttp, undefined, { service: 'S3', source: endpoint.source });
    this.client = createS3Client(
      {
        region: options.region,
        endpoint: endpoint.url,
        profile: options.profile,
        forcePathStyle: options.forcePathStyle ?? endpoint.url !== undefined,
        allowHttp: options.allowHttp ?? false,
        credentials: options.credentials,
        idleTimeoutMs: options.idleTimeoutMs,
      },
      this.requests,
    );
    this.errorContext = {
      bucket: this.bucket,
      region: options.region,
      endpointLabel: endpoint.url ? `${endpoint.url} (from ${endpoint.source})` : 'AWS S3',
      credentialSource: credentialSource(options),
    };
  }

  async get(key: string, limit: ReadLimit): Promise<Buffer | undefined> {
    for (let round = 1; ; round++) {
      try {
        return (await readObjectBytes(this, key, { limit }))?.body;
      } catch (err) {
        // Replaced between two pieces of a resumed read: start over on the new version.
        if (round >= 3 || !isKmscryptError(err, 'STORAGE') || !err.data.changedWhileReading) throw err;
      }
    }
  }

  async getRange(key: string, range: ByteRange): Promise<Buffer> {
    checkRange(range);
    if (range.start === range.end) {
      await this.requireSize(key, range.end);
      return Buffer.alloc(0);
    }
    const got = await readObjectBytes(this, key, range);
    if (!got) throw this.missing(key);
    if (got.body.length < range.end - range.start) throw this.short(key, got.total ?? 0, range.end);
    return got.body;
  }

  async getStream(key: string, range?: ByteRange): Promise<Readable> {
    if (range) checkRange(range);
    if (range && range.start === range.end) {
      await this.requireSize(key, range.end);
      return Readable.from([]);
    }
    const stream = await openObjectStream(this, key, range?.start ?? 0, range?.end);
    if (stream) return stream;
    await this.requireSize(key, range?.end ?? 0);
    return Readable.from([]);
  }

  async head(key: string): Promise<StoredObjectInfo | undefined> {
    try {
      const res = await this.client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return { key, size: res.ContentLength ?? 0, etag: unquoteEtag(res.ETag), lastModified: res.LastModified ?? new Date() };
    } catch (err) {
      if (isNoSuchKey(err)) return undefined;
      throw this.failure(err, 'stat', key);
    }
  }

  async put(key: string, growing: PutBody | GrowingFile, onProgress?: (bytesStored: number) => void): Promise<void> {
    let body: PutBody;
    if (isGrowingFile(growing)) {
      // Past the threshold, parts go up while the rest is still being written; a smaller
      // file is sent whole once complete. Nothing is sent before that is known.
      const have = await growing.reach(MULTIPART_THRESHOLD_BYTES + 1);
      if (have > MULTIPART_THRESHOLD_BYTES) return uploadFileMultipart(this, key, growing, onProgress);
      body = { file: growing.file, length: have };
    } else {
      body = growing;
    }
    if (!Buffer.isBuffer(body) && body.length > MULTIPART_THRESHOLD_BYTES) {
      await uploadFileMultipart(this, key, body, onProgress);
      return;
    }
    const bytes = await this.bodyBytes(key, body);
    try {
      await this.client.send(new (s3Sdk().PutObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key), Body: bytes, ContentLength: bytes.length }));
    } catch (err) {
      throw this.failure(err, 'write', key);
    }
    onProgress?.(bytes.length);
  }

  async putIfAbsent(key: string, body: PutBody): Promise<boolean> {
    return this.conditionalPut(key, await this.bodyBytes(key, body), { IfNoneMatch: '*' });
  }

  async putIfMatch(key: string, body: Buffer, etag: string): Promise<boolean> {
    // RGW compares If-Match as a prefix and only unquoted; AWS accepts unquoted too.
    const bare = unquoteEtag(etag);
    if (!bare) throw new KmscryptError('INTERNAL', `putIfMatch on ${this.location}/${key} without an etag`);
    return this.conditionalPut(key, body, { IfMatch: bare });
  }

  async list(prefix: string, startAfter?: string): Promise<StoredObjectInfo[]> {
    const { ListObjectsV2Command } = s3Sdk();
    const base = this.prefix ? this.prefix + '/' : '';
    const out: StoredObjectInfo[] = [];
    let ContinuationToken: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: base + prefix || undefined,
            StartAfter: startAfter !== undefined ? base + startAfter : undefined,
            ContinuationToken,
          }),
        );
      } catch (err) {
        throw this.failure(err, 'list', prefix ? prefix + '*' : '');
      }
      for (const object of res.Contents ?? []) {
        const key = object.Key?.startsWith(base) ? object.Key.slice(base.length) : '';
        // A store that does not say when counts as just written: gc then keeps an unlisted container.
        if (key) out.push({ key, size: object.Size ?? 0, etag: unquoteEtag(object.ETag), lastModified: object.LastModified ?? new Date() });
      }
      ContinuationToken = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (ContinuationToken);
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    try {
      await this.client.send(new (s3Sdk().DeleteObjectCommand)({ Bucket: this.bucket, Key: this.objectKey(key) }));
    } catch (err) {
      if (!isNoSuchKey(err)) throw this.failure(err, 'delete', key);
    }
  }

  objectKey(key: string): string {
    if (key === '' || key.startsWith('/') || key.split('/').some((part) => part === '..' || part === '.' || part === '')) {
      throw new KmscryptError('INTERNAL', `invalid storage key ${JSON.stringify(key)}`);
    }
    return this.prefix ? `${this.prefix}/${key}` : key;
  }

  failure(err: unknown, action: string, key: string): KmscryptError {
    return s3Error(err, { ...this.errorContext, action, target: `${this.location}/${key}` });
  }

  /**
   * True when this write happened, false when the condition refused it. Only a first-attempt 412
   * is taken as a refusal; after a retry, a 409, a 5xx or a lost connection, the object is read
   * back: our bytes → ours; other bytes → refused; for If-Match an unchanged etag, or for a
   * create a missing object, means ours never landed, so the write is tried again.
   */
  private async conditionalPut(key: string, body: Buffer, condition: Condition): Promise<boolean> {
    const { PutObjectCommand } = s3Sdk();
    let cause: unknown;
    for (let round = 1; round <= CONDITIONAL_ROUNDS; round++) {
      try {
        await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: body, ContentLength: body.length, ...condition }));
        return true;
      } catch (err) {
        const refused = isPreconditionFailed(err) || ('IfMatch' in condition && isNoSuchKey(err));
        if (refused && round === 1 && attemptsOf(err) === 1) return false;
        if (!refused && !isOutcomeUnknown(err)) throw this.failure(err, 'write', key);
        cause = err;
      }
      // Read back at most what was written: anything longer is not ours.
      const current = await readObjectBytes(this, key, { limit: { maxBytes: body.length, what: 'conditional write' } }).catch((err: unknown) => {
        if (isKmscryptError(err, 'TAMPERED')) return { body: EMPTY_BODY, total: undefined, etag: '' };
        throw new KmscryptError(
          'STORAGE',
          `the outcome of a conditional write to ${this.location}/${key} is unknown and it cannot be read back (${this.failure(err, 'read', key).message})`,
          { fix: 'retry' },
        );
      });
      if (current === undefined) {
        if ('IfMatch' in condition) return false;
      } else if (current.body.equals(body)) {
        return true;
      } else if (!('IfMatch' in condition && current.etag === condition.IfMatch)) {
        return false;
      }
    }
    throw new KmscryptError(
      'STORAGE',
      `the outcome of a conditional write to ${this.location}/${key} stayed unknown after ${CONDITIONAL_ROUNDS} attempts (${this.failure(cause, 'write', key).message})`,
      { fix: 'retry' },
    );
  }

  private async bodyBytes(key: string, body: PutBody): Promise<Buffer> {
    if (Buffer.isBuffer(body)) return body;
    if (body.length > MAX_SINGLE_PUT_BYTES) {
      throw new KmscryptError(
        'TOO_LARGE',
        `${body.file} (${body.length} bytes) is too large for a single-request write to ${this.location}/${key} (limit 5 GiB)`,
      );
    }
    const bytes = await fs.readFile(body.file).catch((err: NodeJS.ErrnoException) => {
      throw new KmscryptError('STORAGE', `cannot read ${body.file} to upload it to ${this.location}/${key}: ${err.code ?? err.message}`);
    });
    if (bytes.length !== body.length)
      throw new KmscryptError('INTERNAL', `${body.file} is ${bytes.length} bytes, not the ${body.length} announced for ${this.location}/${key}`);
    return bytes;
  }

  private async requireSize(key: string, end: number): Promise<void> {
    const info = await this.head(key);
    if (!info) throw this.missing(key);
    if (info.size < end) throw this.short(key, info.size, end);
  }

  private missing(key: string): KmscryptError {
    return new KmscryptError('STORAGE', `${this.location}/${key} does not exist`);
  }

  private short(key: string, size: number, end: number): KmscryptError {
    return new KmscryptError(
      'STORAGE',
      `${this.location}/${key} is shorter than expected (${size} bytes, wanted up to ${end}): the stored object was truncated`,
    );
  }
}

function checkRange(range: ByteRange): void {
  if (!Number.isSafeInteger(range.start) || !Number.isSafeInteger(range.end) || range.start < 0 || range.end < range.start) {
    throw new KmscryptError('INTERNAL', `invalid byte range ${range.start}-${range.end}`);
  }
}

function credentialSource(options: S3StorageOptions): string {
  if (options.credentials) return 'the credentials passed in';
  if (options.profile) return `AWS profile "${options.profile}"`;
  if (process.env.AWS_PROFILE) return `AWS profile "${process.env.AWS_PROFILE}" (AWS_PROFILE)`;
  if (process.env.AWS_ACCESS_KEY_ID) return 'AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY';
  return 'the default AWS credential chain (environment, ~/.aws, instance role)';
}
