import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';

/** The servers every test run shares: a Ceph RGW (S3) and the local KMS endpoint, both on loopback. */
export interface Services {
  s3: { endpoint: string; accessKeyId: string; secretAccessKey: string; region: string };
  kms: { endpoint: string; keyringPath: string };
}

/** What services-start writes: the services, and what services-stop needs to undo exactly them. */
export interface ServicesFile extends Services {
  runnerPid: number;
  root: string;
  rgwDir: string;
  kmsPid: number;
}

/**
 * One directory per `tap` run, named after the tap runner's pid: the before/after scripts and
 * every test process are its direct children, so they all agree without any shared fixed name,
 * and two runs at once (even in one tree) do not meet.
 */
export function servicesRoot(runnerPid: number = process.ppid): string {
  return join(tmpdir(), `kmscrypt-services-${runnerPid}`);
}

export function servicesFilePath(runnerPid: number = process.ppid): string {
  return join(servicesRoot(runnerPid), 'services.json');
}

export function readServicesFile(path: string): ServicesFile {
  return JSON.parse(readFileSync(path, 'utf8')) as ServicesFile;
}

/** The running services; throws (so the test fails, never skips) when they were not started. */
export function loadServices(): Services {
  const path = servicesFilePath();
  let file: ServicesFile;
  try {
    file = readServicesFile(path);
  } catch {
    throw new Error(`test services are not running (no ${path}): run tests with 'npm test' or 'npx tap <file>', whose before-script (test/setup/services-start.ts) starts RGW and the local KMS`);
  }
  return { s3: file.s3, kms: file.kms };
}

export function s3ClientFor(services: Services): S3Client {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  return new S3Client({
    endpoint: services.s3.endpoint,
    region: services.s3.region,
    forcePathStyle: true,
    credentials: { accessKeyId: services.s3.accessKeyId, secretAccessKey: services.s3.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}

/** Creates a new, uniquely named bucket on the test RGW and returns its name. */
export async function newBucket(prefix: string): Promise<string> {
  const stem = prefix.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(0, 40) || 'test';
  const name = `${stem}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const client = s3ClientFor(loadServices());
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
  return name;
}
