/** HTTP requests an S3Storage sent, by kind; every attempt counts, SDK retries included. */
export interface S3RequestCounts {
  get: number;
  head: number;
  put: number;
  list: number;
  delete: number;
  createMultipart: number;
  uploadPart: number;
  completeMultipart: number;
  abortMultipart: number;
  other: number;
  total: number;
}

export type S3RequestKind = Exclude<keyof S3RequestCounts, 'total'>;

const KIND_OF_COMMAND: Readonly<Record<string, S3RequestKind>> = {
  GetObjectCommand: 'get',
  HeadObjectCommand: 'head',
  PutObjectCommand: 'put',
  ListObjectsV2Command: 'list',
  DeleteObjectCommand: 'delete',
  CreateMultipartUploadCommand: 'createMultipart',
  UploadPartCommand: 'uploadPart',
  CompleteMultipartUploadCommand: 'completeMultipart',
  AbortMultipartUploadCommand: 'abortMultipart',
};

export function zeroS3RequestCounts(): S3RequestCounts {
  return { get: 0, head: 0, put: 0, list: 0, delete: 0, createMultipart: 0, uploadPart: 0, completeMultipart: 0, abortMultipart: 0, other: 0, total: 0 };
}

export function countRequest(counts: S3RequestCounts, commandName: string | undefined): void {
  counts[KIND_OF_COMMAND[commandName ?? ''] ?? 'other']++;
  counts.total++;
}
