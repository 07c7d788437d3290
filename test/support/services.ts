import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { isAlive, servicesRoot, startServices, type StartedServices } from '../setup/service-daemons';

/**
 * The servers the S3 tests share: a Ceph RGW (S3) and the local KMS endpoint, both on loopback.
 * The local KMS answers only requests signed with the access key in `kms.credentialsPath` (beside
 * `kms.keyringPath`); git-remote-kmscrypt finds it by itself when KMSCRYPT_KEYRING is `keyringPath`.
 */
export interface Services {
  s3: StartedServices['s3'];
  kms: StartedServices['kms'];
}

/** What services.json holds: the services, and what services-stop needs to undo exactly them. */
export interface ServicesFile extends Services {
  runnerPid: number;
  root: string;
  rgwDir: string;
  kmsPid: number;
}

/**
 * The first test process of a run that asks takes the lock (start.lock, created exclusively,
 * holding its pid) and starts the services; every other one waits for services.json, or for
 * start.failed, which carries the starter's error so that every waiting test fails with it.
 */
async function startOrWait(): Promise<Services> {
  const runnerPid = process.ppid;
  const root = servicesRoot(runnerPid);
  const file = join(root, 'services.json');
  const failed = join(root, 'start.failed');
  const lock = join(root, 'start.lock');
  mkdirSync(root, { recursive: true });
  let starter = false;
  try {
    writeFileSync(lock, String(process.pid), { flag: 'wx' });
    starter = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  if (starter) {
    const started = Date.now();
    const log = (line: string): void => void process.stderr.write(`# services: ${line}\n`);
    try {
      const kmsEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KMSCRYPT_')));
      const s = await startServices(root, { kmsEnv, rgwStartTimeoutS: 60, log });
      const contents: ServicesFile = { runnerPid, root, rgwDir: s.rgwDir, kmsPid: s.kmsPid, s3: s.s3, kms: s.kms };
      writeFileSync(`${file}.tmp`, JSON.stringify(contents, null, 2) + '\n');
      renameSync(`${file}.tmp`, file);
      log(`S3 (Ceph RGW) ${s.s3.endpoint}, KMS ${s.kms.endpoint}, ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${file})`);
    } catch (err) {
      writeFileSync(failed, err instanceof Error ? err.message : String(err));
    }
  }
  for (;;) {
    if (existsSync(file)) {
      const { s3, kms } = JSON.parse(readFileSync(file, 'utf8')) as ServicesFile;
      return { s3, kms };
    }
    if (existsSync(failed)) throw new Error(`the test services (Ceph RGW, local KMS) could not start: ${readFileSync(failed, 'utf8')}`);
    const holder = Number(readFileSync(lock, 'utf8'));
    // An empty lock file is one whose starter has not written its pid yet.
    if (holder > 0 && !isAlive(holder)) {
      throw new Error(`the test process that was starting the test services (pid ${holder}) ended before they were ready; see the logs in ${root}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

let running: Promise<Services> | undefined;

/**
 * The running services, started on first use in this `tap` run and shared by all its test
 * processes (test/setup/services-stop.ts, tap's `after` script, stops them). Rejects, so that
 * the test fails rather than skips, when they cannot start.
 */
export function runningServices(): Promise<Services> {
  const tier = process.env.KMSCRYPT_TEST_TIER;
  if (tier !== undefined) {
    // test/setup/test-tiers.js picks the files that cannot reach this module through their imports.
    return Promise.reject(
      new Error(
        `npm run test:${tier} runs only tests that need no server, yet this test asked for the test services; test/setup/test-tiers.js must see it import test/support/services.ts`,
      ),
    );
  }
  running ??= startOrWait();
  return running;
}

/** The local KMS's own access key, for clients in the test process itself. */
export function kmsCredentialsFor(services: Services): { accessKeyId: string; secretAccessKey: string } {
  const { accessKeyId, secretAccessKey } = JSON.parse(readFileSync(services.kms.credentialsPath, 'utf8')) as { accessKeyId: string; secretAccessKey: string };
  return { accessKeyId, secretAccessKey };
}

/** What a helper needs to use the shared local KMS: its endpoint, and the keyring beside which its credentials are. */
export function kmsEnvFor(services: Services): NodeJS.ProcessEnv {
  return { AWS_ENDPOINT_URL_KMS: services.kms.endpoint, KMSCRYPT_KEYRING: services.kms.keyringPath };
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
  const stem =
    prefix
      .toLowerCase()
      .replace(/[^a-z0-9-]+/g, '-')
      .replace(/^-+|-+$/g, '')
      .slice(0, 40) || 'test';
  const name = `${stem}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
  const client = s3ClientFor(await runningServices());
  try {
    await client.send(new CreateBucketCommand({ Bucket: name }));
  } finally {
    client.destroy();
  }
  return name;
}
