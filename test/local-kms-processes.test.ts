/**
 * local-kms as other processes meet it: another user of the machine (curl as nobody), the AWS CLI
 * signing with the credentials file, and `git kmscrypt local-kms` itself, started, used and stopped.
 */
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { DecryptCommand, DescribeKeyCommand, DisableKeyCommand, GenerateDataKeyCommand, KMSClient, ScheduleKeyDeletionCommand } from '@aws-sdk/client-kms';
import { context, createKey, failure, setup, tempKeyring } from './support/local-kms-harness';
import { signedRequest } from './support/signed-request';

/**
 * A command run without blocking: the local KMS it talks to is served by this very process.
 */
function runAsync(command: string, args: string[], env?: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', fail);
    child.once('close', (status) => done({ status, stdout, stderr }));
  });
}

t.test('another user of this machine cannot use local-kms', async (t) => {
  t.equal(process.getuid?.(), 0, 'runs as root, to act as the user nobody');
  const { server, kms, keyring } = await setup(t);
  const { keyId } = await createKey(kms);
  const generated = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));
  // The directory is open to others, so that only the files' own modes protect them.
  chmodSync(dirname(dirname(keyring.path)), 0o755);
  chmodSync(dirname(keyring.path), 0o755);
  const before = readFileSync(keyring.path);
  const credentialsFile = join(dirname(keyring.path), 'local-kms-credentials.json');

  const asNobody = (command: string, args: string[]) => runAsync('runuser', ['-u', 'nobody', '--', command, ...args]);
  const read = await asNobody('cat', [credentialsFile]);
  t.not(read.status, 0, 'nobody cannot read the credentials file');
  t.match(read.stderr, /Permission denied/);
  t.not((await asNobody('cat', [keyring.path])).status, 0, 'nor the keyring');

  /** What `curl` as nobody gets for a request signed by the real SDK (or not signed at all). */
  const curl = async (request: { headers: Record<string, string>; body: string }) => {
    const headers = Object.entries(request.headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]);
    const r = await asNobody('curl', ['-sS', '-X', 'POST', server.url + '/', ...headers, '--data-binary', request.body, '-w', '\n%{http_code}']);
    t.equal(r.status, 0, `curl ran as nobody: ${r.stderr}`);
    const [body, status] = r.stdout.split(/\n(?=\d+$)/);
    return { status: Number(status), body: JSON.parse(body) as { __type: string; message: string } };
  };
  const guessed = { accessKeyId: server.credentials.accessKeyId, secretAccessKey: 'a-guess-a-guess-a-guess-a-guess-a-gue' };
  const attempts = [
    [
      'DisableKey, unsigned',
      { headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'TrentService.DisableKey' }, body: JSON.stringify({ KeyId: keyId }) },
      'MissingAuthenticationTokenException',
    ],
    [
      'DisableKey, with any Authorization',
      {
        headers: {
          'Content-Type': 'application/x-amz-json-1.1',
          'X-Amz-Target': 'TrentService.DisableKey',
          Authorization: 'AWS4-HMAC-SHA256 Credential=x/20250101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=00',
        },
        body: JSON.stringify({ KeyId: keyId }),
      },
      'UnrecognizedClientException',
    ],
    [
      'DisableKey, signed with a made-up key',
      await signedRequest(server.url, { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'x'.repeat(40) }, new DisableKeyCommand({ KeyId: keyId })),
      'UnrecognizedClientException',
    ],
    [
      'DisableKey, the right key ID with a guessed secret',
      await signedRequest(server.url, guessed, new DisableKeyCommand({ KeyId: keyId })),
      'InvalidSignatureException',
    ],
    [
      'ScheduleKeyDeletion, the right key ID with a guessed secret',
      await signedRequest(server.url, guessed, new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })),
      'InvalidSignatureException',
    ],
    [
      'Decrypt, the right key ID with a guessed secret',
      await signedRequest(server.url, guessed, new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context })),
      'InvalidSignatureException',
    ],
    [
      'GenerateDataKey, the right key ID with a guessed secret',
      await signedRequest(server.url, guessed, new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context })),
      'InvalidSignatureException',
    ],
  ] as const;
  const callsBefore = Object.values(server.calls).reduce((a, b) => a + b, 0);
  for (const [label, request, type] of attempts) {
    const answer = await curl(request);
    t.equal(answer.status, 400, `${label}: HTTP 400`);
    t.equal(answer.body.__type, type, `${label}: ${type}`);
    t.notMatch(JSON.stringify(answer.body), /Plaintext|CiphertextBlob/, `${label}: no key material in the answer`);
  }
  t.equal(Object.values(server.calls).reduce((a, b) => a + b, 0) - callsBefore, attempts.length, 'every attempt reached the server');
  t.same(readFileSync(keyring.path), before, 'the keyring is byte for byte unchanged');
  t.equal((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState, 'Enabled', 'the key is still enabled');

  const own = await curl(await signedRequest(server.url, server.credentials, new DescribeKeyCommand({ KeyId: keyId })));
  t.equal(own.status, 200, 'the same curl with a request the owner signed is answered: the refusals above are the signature’s doing');
});

t.test('the AWS CLI signing with the credentials file is answered; with others it is refused', async (t) => {
  const version = spawnSync('aws', ['--version'], { encoding: 'utf8' });
  t.equal(version.status, 0, `the AWS CLI is installed (aws --version: ${version.stdout}${version.stderr}${version.error ?? ''})`);
  const { server, keyring } = await setup(t);
  const scratch = dirname(keyring.path);
  const aws = (credentials: { accessKeyId: string; secretAccessKey: string }, args: string[]) =>
    runAsync('aws', [...args, '--endpoint-url', server.url, '--region', 'us-east-1', '--output', 'json'], {
      PATH: process.env.PATH,
      HOME: scratch,
      AWS_CONFIG_FILE: join(scratch, 'no-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(scratch, 'no-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ACCESS_KEY_ID: credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    });
  const file = JSON.parse(readFileSync(join(scratch, 'local-kms-credentials.json'), 'utf8')) as { accessKeyId: string; secretAccessKey: string };
  const created = await aws(file, ['kms', 'create-key', '--description', 'made by the AWS CLI']);
  t.equal(created.status, 0, created.stderr);
  const keyId = (JSON.parse(created.stdout) as { KeyMetadata: { KeyId: string } }).KeyMetadata.KeyId;
  t.ok(
    keyring.load().keys.some((k) => k.keyId === keyId && k.description === 'made by the AWS CLI'),
    'the key is in the keyring',
  );
  const listed = await aws(file, ['kms', 'list-keys']);
  t.equal(listed.status, 0, listed.stderr);
  t.match(listed.stdout, keyId);

  const wrong = await aws({ ...file, secretAccessKey: file.secretAccessKey.split('').reverse().join('') }, ['kms', 'disable-key', '--key-id', keyId]);
  t.not(wrong.status, 0, 'a wrong secret fails');
  t.match(wrong.stderr, /\(InvalidSignatureException\) when calling the DisableKey operation: The request signature we calculated does not match/);
  const unknown = await aws({ accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: file.secretAccessKey }, ['kms', 'disable-key', '--key-id', keyId]);
  t.match(unknown.stderr, /\(UnrecognizedClientException\) when calling the DisableKey operation: The security token included in the request is invalid/);
  t.equal(keyring.load().keys.find((k) => k.keyId === keyId)?.state, 'Enabled', 'the key was not disabled');
});

t.test('git kmscrypt local-kms prints its endpoint, serves, and stops on SIGTERM', async (t) => {
  const keyring = tempKeyring(t);
  const script = `require(${JSON.stringify(resolve(__dirname, '../src/cli/local-kms-command.ts'))}).runLocalKms(process.argv.slice(1)).then((c) => { process.exitCode = c; })`;
  const child = spawn(process.execPath, [...process.execArgv, '-e', script, '--', '--port', '0', '--keyring', keyring.path, '--deny', 'kms:Decrypt'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  // Both lines may come in one chunk: the iterator keeps the second until it is asked for.
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const nextLine = async (): Promise<string> => {
    const next = await lines.next();
    if (next.done) throw new Error(`local-kms closed its output early: ${stderr}`);
    return next.value;
  };
  const first = await nextLine();
  const m = /^KMS_ENDPOINT=(http:\/\/127\.0\.0\.1:(\d+))$/.exec(first);
  t.ok(m, `first stdout line is the endpoint: ${first}`);
  const second = await nextLine();
  const credentialsFile = join(dirname(keyring.path), 'local-kms-credentials.json');
  t.equal(second, `KMS_CREDENTIALS_FILE=${credentialsFile}`, 'the second names the credentials file');
  const fromFile = JSON.parse(readFileSync(credentialsFile, 'utf8')) as { accessKeyId: string; secretAccessKey: string };
  const kms = new KMSClient({ endpoint: m![1], region: 'us-east-1', credentials: fromFile, maxAttempts: 1 });
  const { keyId } = await createKey(kms);
  const generated = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));
  t.equal(
    (await failure(kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context })))).name,
    'AccessDeniedException',
  );
  kms.destroy();
  child.kill('SIGTERM');
  t.equal(await exited, 0);
  t.match(stderr, `export AWS_ENDPOINT_URL_KMS=${m![1]} KMSCRYPT_KMS=aws AWS_REGION=us-east-1 KMSCRYPT_KEYRING=${keyring.path}`);
  t.match(stderr, `it answers only requests signed with the access key in ${credentialsFile} (mode 0600: yours alone)`);
  t.ok(keyring.exists(), 'keys were written to the --keyring file');
});
