import t, { type Test } from 'tap';
import { createServer } from 'node:net';
import { KmscryptError } from '../src/errors';
import { checkEndpointSecurity, isLoopbackHost } from '../src/endpoint-security';
import { s3Error } from '../src/storage/s3-errors';
import { S3Storage, type S3StorageOptions } from '../src/storage/s3-storage';
import { ANY_SIZE as ANY, rejection } from './storage-contract';
import { runningServices, type Services, newBucket } from './support/services';

let services: Services;
let credentials: { accessKeyId: string; secretAccessKey: string };
t.before(async () => {
  services = await runningServices();
  credentials = { accessKeyId: services.s3.accessKeyId, secretAccessKey: services.s3.secretAccessKey };
});

function s3Storage(options: Partial<S3StorageOptions> & { bucket: string }): S3Storage {
  return new S3Storage({ prefix: 'p', endpoint: services.s3.endpoint, region: services.s3.region, credentials, ...options });
}

/** Sets environment variables for one test and restores them after. */
function withEnv(t: Test, vars: Record<string, string | undefined>): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(vars);
  t.teardown(() => apply(saved));
}

function oneLine(t: Test, err: KmscryptError): void {
  t.notMatch(err.message, /\n/, 'one line');
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const address = server.address();
  await new Promise((done) => server.close(done));
  return typeof address === 'object' && address ? address.port : 1;
}

t.test('a create-only write is one PUT request', async (t) => {
  const s = s3Storage({ bucket: await newBucket('errors') });
  t.equal(await s.putIfAbsent('k', Buffer.from('x')), true);
  t.same(s.requests, { get: 0, head: 0, put: 1, list: 0, delete: 0, createMultipart: 0, uploadPart: 0, completeMultipart: 0, abortMultipart: 0, other: 0, total: 1 });
});

t.test('a missing bucket is named, with the fix', async (t) => {
  const s = s3Storage({ bucket: 'kmscrypt-no-such-bucket-0123' });
  for (const op of [() => s.get('k', ANY), () => s.put('k', Buffer.from('x')), () => s.putIfAbsent('k', Buffer.from('x')), () => s.list('')]) {
    const err = await rejection(op());
    t.equal(err.code, 'BAD_CONFIG');
    t.equal(err.message, `bucket kmscrypt-no-such-bucket-0123 does not exist at ${services.s3.endpoint} (from kmscrypt.endpoint); create it or fix the URL`);
  }
});

t.test('wrong credentials say which ones and what to fix', async (t) => {
  const bucket = await newBucket('errors');
  const badSecret = await rejection(s3Storage({ bucket, credentials: { ...credentials, secretAccessKey: 'wrong' } }).get('k', ANY));
  t.equal(badSecret.code, 'BAD_CONFIG');
  t.match(badSecret.message, /^the secret access key from the credentials passed in does not match its access key ID at http:\/\/127\.0\.0\.1:\d+ \(from kmscrypt\.endpoint\); fix the secret key$/);

  withEnv(t, { AWS_ACCESS_KEY_ID: 'NOSUCHKEY00000000000', AWS_SECRET_ACCESS_KEY: 'whatever', AWS_PROFILE: undefined });
  const unknownKey = await rejection(s3Storage({ bucket, credentials: undefined }).putIfAbsent('k', Buffer.from('x')));
  t.equal(unknownKey.code, 'BAD_CONFIG');
  t.match(unknownKey.message, /^the access key ID from AWS_ACCESS_KEY_ID \/ AWS_SECRET_ACCESS_KEY is not known to http:\/\/127\.0\.0\.1:\d+ \(from kmscrypt\.endpoint\); fix the credentials or the endpoint$/);

  // HEAD answers carry no error body: only the status says 403.
  const head = await rejection(s3Storage({ bucket, credentials: { ...credentials, secretAccessKey: 'wrong' } }).head('k'));
  t.equal(head.code, 'BAD_CONFIG');
  t.match(head.message, /^access denied to s3:\/\/\S+\/p\/k \(stat\) with credentials from the credentials passed in; grant them access to bucket \S+ or use other credentials$/);
  for (const err of [badSecret, unknownKey, head]) oneLine(t, err);
});

t.test('no credentials anywhere: says where it looked and how to set them', async (t) => {
  const bucket = await newBucket('errors');
  withEnv(t, {
    AWS_ACCESS_KEY_ID: undefined,
    AWS_SECRET_ACCESS_KEY: undefined,
    AWS_SESSION_TOKEN: undefined,
    AWS_PROFILE: undefined,
    AWS_CONFIG_FILE: '/nonexistent/kmscrypt-test/config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/kmscrypt-test/credentials',
    AWS_WEB_IDENTITY_TOKEN_FILE: undefined,
    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI: undefined,
    AWS_CONTAINER_CREDENTIALS_FULL_URI: undefined,
    AWS_EC2_METADATA_DISABLED: 'true',
  });
  const err = await rejection(s3Storage({ bucket, credentials: undefined }).get('k', ANY));
  t.equal(err.code, 'BAD_CONFIG');
  t.match(err.message, /^no AWS credentials found \(looked in the default AWS credential chain .*\); set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE \/ kmscrypt\.profile$/);
  oneLine(t, err);
});

t.test('an unreachable endpoint is named, after the SDK retries', async (t) => {
  const port = await closedPort();
  const s = s3Storage({ bucket: 'any-bucket', endpoint: `http://127.0.0.1:${port}` });
  const err = await rejection(s.get('k', ANY));
  t.equal(err.code, 'STORAGE');
  t.equal(err.message, `cannot reach S3 endpoint http://127.0.0.1:${port} (from kmscrypt.endpoint) (ECONNREFUSED) to read s3://any-bucket/p/k; check kmscrypt.endpoint / AWS_ENDPOINT_URL_S3 and the network`);
  t.equal(s.requests.get, 3, 'every attempt is counted');

  withEnv(t, { AWS_ENDPOINT_URL_S3: `http://localhost:${port}` });
  const fromEnv = await rejection(new S3Storage({ bucket: 'any-bucket', prefix: '', region: 'us-east-1', credentials }).head('k'));
  t.match(fromEnv.message, new RegExp(`^cannot reach S3 endpoint http://localhost:${port} \\(from AWS_ENDPOINT_URL_S3\\) \\(ECONNREFUSED\\)`));
});

t.test('plain HTTP is refused except to loopback, or with allowHttp and a warning', async (t) => {
  const refused = (() => {
    try {
      s3Storage({ bucket: 'b', endpoint: 'http://s3.example.com' });
    } catch (err) {
      return err as KmscryptError;
    }
    return undefined;
  })();
  t.equal(refused?.code, 'BAD_CONFIG');
  t.equal(
    refused?.message,
    'refusing plain-HTTP S3 endpoint http://s3.example.com (from kmscrypt.endpoint): requests would cross the network unencrypted; use https://, or set kmscrypt.allowHttp=true to accept that (it allows plain HTTP to both the S3 and the KMS endpoint)',
  );

  withEnv(t, { AWS_ENDPOINT_URL_S3: 'http://10.1.2.3:9000' });
  t.throws(() => new S3Storage({ bucket: 'b', prefix: '' }), { code: 'BAD_CONFIG', message: /^refusing plain-HTTP S3 endpoint http:\/\/10\.1\.2\.3:9000 \(from AWS_ENDPOINT_URL_S3\)/ });

  const warnings: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    warnings.push(String(chunk));
    return true;
  }) as typeof process.stderr.write;
  try {
    s3Storage({ bucket: 'b', endpoint: 'http://s3.example.com', allowHttp: true });
  } finally {
    process.stderr.write = write;
  }
  t.same(warnings, ['warning: kmscrypt: using plain-HTTP S3 endpoint http://s3.example.com because kmscrypt.allowHttp is set; request metadata is not protected in transit\n']);

  for (const ok of ['https://s3.example.com', 'http://127.0.0.1:7480', 'http://127.8.9.10', 'http://localhost:9000', 'http://[::1]:9000']) {
    t.doesNotThrow(() => checkEndpointSecurity(ok, false, () => t.fail('no warning')), ok);
  }
  for (const bad of ['ftp://s3.example.com', 'not a url', 'http://128.0.0.1', 'http://localhost.example.com']) {
    t.throws(() => checkEndpointSecurity(bad), { code: 'BAD_CONFIG' }, bad);
  }
  t.equal(isLoopbackHost('[::1]'), true);
  t.equal(isLoopbackHost('::2'), false);
});

t.test('a bucket in another region says which region to set', async (t) => {
  const redirect = Object.assign(new Error('The bucket you are attempting to access must be addressed using the specified endpoint.'), {
    name: 'PermanentRedirect',
    $metadata: { httpStatusCode: 301 },
    $response: { headers: { 'x-amz-bucket-region': 'eu-west-1' } },
  });
  const ctx = { action: 'read', target: 's3://b/p/k', bucket: 'b', region: 'us-east-1', endpointLabel: 'AWS S3', credentialSource: 'x' };
  t.equal(s3Error(redirect, ctx).message, 'bucket b is in region eu-west-1, not us-east-1; set kmscrypt.region (or AWS_REGION) to eu-west-1');
  const headRedirect = Object.assign(new Error('UnknownError'), { name: 'Unknown', $metadata: { httpStatusCode: 301 } });
  t.equal(s3Error(headRedirect, ctx).message, 'bucket b is in another region, not us-east-1; set kmscrypt.region (or AWS_REGION) to the bucket region');
  t.equal(s3Error(headRedirect, ctx).code, 'BAD_CONFIG');
  const noRegion = new Error('Region is missing');
  t.equal(s3Error(noRegion, { ...ctx, region: undefined }).message, 'no AWS region set for bucket b; set kmscrypt.region, AWS_REGION or region in the AWS profile');
  const other = Object.assign(new Error('We encountered an internal error.\nPlease try again.'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } });
  t.equal(s3Error(other, ctx).message, 'cannot read s3://b/p/k: InternalError (HTTP 500): We encountered an internal error. Please try again.');
});
