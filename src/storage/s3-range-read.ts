import { Readable } from 'node:stream';
import { KmscryptError } from '../errors';
import { type S3Access, unquoteEtag } from './s3-access';
import { objectTooLarge, type ReadLimit } from './storage';
import { s3Sdk } from './s3-client';
import { errorName, httpStatus, isNoSuchKey, isPreconditionFailed, transportCode } from './s3-errors';

/** A body that breaks mid-transfer is resumed this many times in all, per read. */
const BODY_ATTEMPTS = 4;
const EMPTY = Buffer.alloc(0);

export interface ObjectBytes {
  body: Buffer;
  /** The object's size, when the server said; undefined after a 416 (the range starts past the end). */
  total: number | undefined;
  etag: string;
}

export interface ReadWant {
  /** Default 0. */
  start?: number;
  /** Exclusive; undefined reads to the end of the object. */
  end?: number;
  /** Read only this version of the object (If-Match); a replaced object fails the read. */
  etag?: string;
  /** A whole object longer than this is refused before its body is read (objectTooLarge). */
  limit?: ReadLimit;
  signal?: AbortSignal;
}

/**
 * Bytes [start, end) of an object, or fewer when the object ends first (`total` tells).
 * Undefined when the object does not exist. The SDK retries failed requests; what it does not
 * retry, a body that breaks mid-way, is resumed here with a ranged GET for the rest, pinned to
 * the first response's version with If-Match so that the pieces belong to one object.
 */
export async function readObjectBytes(access: S3Access, key: string, want: ReadWant = {}): Promise<ObjectBytes | undefined> {
  const { GetObjectCommand } = s3Sdk();
  const start = want.start ?? 0;
  let etag = want.etag;
  let total: number | undefined;
  let buf = EMPTY;
  let got = 0;
  let failures = 0;
  for (let first = true; ; first = false) {
    const limit = Math.min(want.end ?? Infinity, total ?? Infinity);
    if (!first && start + got >= limit) break;
    const whole = first && start === 0 && want.end === undefined;
    let res;
    try {
      res = await access.client.send(
        new GetObjectCommand({
          Bucket: access.bucket,
          Key: access.objectKey(key),
          Range: whole ? undefined : `bytes=${start + got}-${Number.isFinite(limit) ? limit - 1 : ''}`,
          IfMatch: etag,
        }),
        { abortSignal: want.signal },
      );
    } catch (err) {
      if (first && want.etag === undefined && isNoSuchKey(err)) return undefined;
      if (isNoSuchKey(err) || (etag !== undefined && isPreconditionFailed(err))) throw changedWhileReading(access, key);
      if (first && (errorName(err) === 'InvalidRange' || httpStatus(err) === 416)) return { body: EMPTY, total: undefined, etag: etag ?? '' };
      throw access.failure(err, 'read', key);
    }
    const length = res.ContentLength ?? 0;
    if (first) {
      etag ??= unquoteEtag(res.ETag) || undefined;
      total = res.ContentRange ? contentRangeTotal(res.ContentRange) : length;
      if (want.limit && (total === undefined || total > want.limit.maxBytes)) {
        destroyBody(res.Body);
        throw objectTooLarge(access.location, key, total, want.limit);
      }
      if (!res.ContentRange && start > 0) {
        throw new KmscryptError('STORAGE', `the server ignored the Range header reading ${access.location}/${key}; it is not S3-compatible enough`);
      }
      // Never more than was asked for, whatever the server announces; a body longer than it said is cut.
      buf = Buffer.allocUnsafe(Math.max(0, Math.min(want.end ?? Infinity, total ?? start + length) - start));
    }
    const expected = Math.min(length, buf.length - got);
    const drained = await drainInto(res.Body, buf, got, expected);
    access.bytesRead += drained.bytes;
    got += drained.bytes;
    if (drained.error !== undefined || drained.bytes < expected) {
      if (want.signal?.aborted) throw drained.error ?? new Error('aborted');
      if (++failures >= BODY_ATTEMPTS) {
        const why = transportCode(drained.error) ?? (drained.error instanceof Error ? drained.error.message : 'body ended early');
        throw new KmscryptError('STORAGE', `reading ${access.location}/${key} broke off ${BODY_ATTEMPTS} times mid-transfer (${why})`, {
          fix: 'check the network and retry',
        });
      }
    }
  }
  return { body: buf.subarray(0, got), total, etag: etag ?? '' };
}

function destroyBody(body: unknown): void {
  if (body instanceof Readable) body.destroy();
}

function changedWhileReading(access: S3Access, key: string): KmscryptError {
  return new KmscryptError('STORAGE', `${access.location}/${key} was replaced or deleted while it was being read`, { changedWhileReading: true, fix: 'retry' });
}

function contentRangeTotal(header: string): number | undefined {
  const m = /\/(\d+)\s*$/.exec(header);
  return m ? Number(m[1]) : undefined;
}

async function drainInto(body: unknown, target: Buffer, offset: number, limit: number): Promise<{ bytes: number; error?: unknown }> {
  if (!(body instanceof Readable)) return { bytes: 0, error: new Error('the response body is not a stream') };
  let bytes = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      // Bytes beyond what was announced are dropped, but read, to keep the connection reusable.
      const n = Math.max(0, Math.min(chunk.length, limit - bytes));
      chunk.copy(target, offset + bytes, 0, n);
      bytes += n;
    }
    return { bytes };
  } catch (error) {
    return { bytes, error };
  } finally {
    if (!body.readableEnded) body.destroy();
  }
}
