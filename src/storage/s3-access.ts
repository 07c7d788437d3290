import type { S3Client } from '@aws-sdk/client-s3';
import type { KmscryptError } from '../errors';

/** What the S3 helpers (ranged reads, streams, multipart uploads) need from an S3Storage. */
export interface S3Access {
  readonly client: S3Client;
  readonly bucket: string;
  readonly location: string;
  /** Bytes of object bodies received so far (Storage.bytesRead). */
  bytesRead: number;
  /** The full object key: the storage prefix joined with a relative key. */
  objectKey(key: string): string;
  /** One KmscryptError line for a failed request. */
  failure(err: unknown, action: string, key: string): KmscryptError;
}

export function unquoteEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^"(.*)"$/, '$1');
}
