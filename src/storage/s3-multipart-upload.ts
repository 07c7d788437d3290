import { promises as fs } from 'node:fs';
import { KmscryptError } from '../errors';
import { undoOnInterrupt } from '../interrupt-cleanup';
import { type S3Access, unquoteEtag } from './s3-access';
import { s3Sdk } from './s3-client';
import { attemptsOf, errorName } from './s3-errors';
import { type GrowingFile, isGrowingFile } from './storage';

const MIN_PART_BYTES = 8 << 20;
const MAX_PARTS = 10_000;
const IN_FLIGHT = 4;

/**
 * Uploads a local file as one object by multipart upload: IN_FLIGHT parts at a time, each read
 * from the file into one of IN_FLIGHT reused buffers, so memory stays near IN_FLIGHT parts. A
 * growing file is uploaded as it is written: each part goes up as soon as its bytes are final,
 * and the last part once the file is complete. On any failure, the writer's included, the upload
 * is aborted, so no invisible parts keep costing storage.
 * Unconditional only: RGW ignores If-None-Match on CompleteMultipartUpload.
 */
export async function uploadFileMultipart(
  access: S3Access,
  key: string,
  source: { file: string; length: number } | GrowingFile,
  onProgress?: (bytesStored: number) => void,
): Promise<void> {
  const sdk = s3Sdk();
  const Bucket = access.bucket;
  const Key = access.objectKey(key);
  const { file } = source;
  const growing = isGrowingFile(source);
  // A growing file's length is not known yet: size parts for twice what is expected.
  const expected = growing ? 2 * source.sizeHint : source.length;
  const partSize = Math.max(MIN_PART_BYTES, Math.ceil(expected / MAX_PARTS / (1 << 20)) * (1 << 20));
  /** Final bytes available up to `end`: all of them for a complete file. */
  const reach = (end: number) => (growing ? source.reach(end) : Promise.resolve(source.length));
  const handle = await fs.open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw new KmscryptError('STORAGE', `cannot read ${file} to upload it to ${access.location}/${key}: ${err.code ?? err.message}`);
  });
  try {
    if (!growing) {
      const size = (await handle.stat()).size;
      if (size !== source.length) throw new KmscryptError('INTERNAL', `${file} is ${size} bytes, not the ${source.length} announced for ${access.location}/${key}`);
    }
    let UploadId: string | undefined;
    try {
      UploadId = (await access.client.send(new sdk.CreateMultipartUploadCommand({ Bucket, Key }))).UploadId;
    } catch (err) {
      throw access.failure(err, 'start a multipart upload of', key);
    }
    if (!UploadId) throw new KmscryptError('STORAGE', `the server returned no upload ID for a multipart upload of ${access.location}/${key}`);
    const abort = () => access.client.send(new sdk.AbortMultipartUploadCommand({ Bucket, Key, UploadId }));
    const abortOnInterrupt = undoOnInterrupt(abort);
    try {
      const etags: string[] = [];
      let nextPart = 0;
      let ended = false;
      let failed = false;
      let stored = 0;
      let length = 0;
      const worker = async () => {
        // One buffer per worker, reused for each of its parts: a fresh 8 MiB buffer per part
        // would be garbage the collector frees late, and the helper's memory would grow.
        let buffer: Buffer | undefined;
        while (!failed && !ended) {
          const index = nextPart++;
          const offset = index * partSize;
          try {
            const have = await reach(offset + partSize);
            if (have <= offset && index > 0) {
              ended = true; // the file ended with the previous part
              break;
            }
            if (have < offset + partSize) ended = true;
            if (index >= MAX_PARTS) throw new KmscryptError('INTERNAL', `${file} outgrew a ${MAX_PARTS}-part upload of ${partSize}-byte parts to ${access.location}/${key}`);
            buffer ??= Buffer.allocUnsafeSlow(partSize);
            const body = buffer.subarray(0, Math.min(partSize, have - offset));
            const { bytesRead } = await handle.read(body, 0, body.length, offset);
            if (bytesRead !== body.length) throw new KmscryptError('STORAGE', `${file} shrank while it was being uploaded to ${access.location}/${key}`);
            const res = await access.client.send(new sdk.UploadPartCommand({ Bucket, Key, UploadId, PartNumber: index + 1, Body: body, ContentLength: body.length }));
            etags[index] = res.ETag ?? '';
            length = Math.max(length, offset + body.length);
            stored += body.length;
            onProgress?.(stored);
          } catch (err) {
            failed = true;
            throw err;
          }
        }
      };
      const results = await Promise.allSettled(Array.from({ length: IN_FLIGHT }, worker));
      const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (rejected) throw rejected.reason;
      const partCount = etags.length;
      const MultipartUpload = { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) };
      try {
        await access.client.send(new sdk.CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload }));
      } catch (err) {
        // A retried Complete whose first attempt succeeded finds the upload gone.
        if (!(errorName(err) === 'NoSuchUpload' && attemptsOf(err) > 1 && (await completedAnyway(access, key, length, partCount)))) throw err;
      }
    } catch (err) {
      await abort().catch(() => undefined);
      throw access.failure(err, 'upload', key);
    } finally {
      abortOnInterrupt();
    }
  } finally {
    await handle.close();
  }
}

async function completedAnyway(access: S3Access, key: string, length: number, partCount: number): Promise<boolean> {
  const head = await access.client.send(new (s3Sdk().HeadObjectCommand)({ Bucket: access.bucket, Key: access.objectKey(key) })).catch(() => undefined);
  return head?.ContentLength === length && unquoteEtag(head.ETag).endsWith(`-${partCount}`);
}
