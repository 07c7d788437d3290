import t, { Test } from 'tap';
import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import {
  CancelKeyDeletionCommand,
  CreateAliasCommand,
  CreateKeyCommand,
  DecryptCommand,
  DescribeKeyCommand,
  DisableKeyCommand,
  EnableKeyCommand,
  EncryptCommand,
  GenerateDataKeyCommand,
  GenerateDataKeyWithoutPlaintextCommand,
  KMSClient,
  ListAliasesCommand,
  ListKeysCommand,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { Keyring } from '../src/keys/keyring';
import { LocalKeyProvider } from '../src/keys/local-key-provider';
import { LocalKmsServer, startLocalKmsServer } from '../src/keys/local-kms-server';

const context = { 'kmscrypt:repository-id': 'repo-1' };

function tempKeyring(t: Test): Keyring {
  const dir = mkdtempSync(join(tmpdir(), 'local-kms-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return new Keyring(join(dir, 'kms', 'keyring.json'));
}

async function setup(t: Test, deny?: string[], denyFile?: string): Promise<{ server: LocalKmsServer; kms: KMSClient; keyring: Keyring }> {
  const keyring = tempKeyring(t);
  const server = await startLocalKmsServer({ port: 0, keyring, deny, denyFile });
  const kms = new KMSClient({
    endpoint: server.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDLOCALKMS', secretAccessKey: 'local-kms-secret' },
    maxAttempts: 1,
  });
  t.teardown(async () => {
    kms.destroy();
    await server.close();
  });
  return { server, kms, keyring };
}

async function createKey(kms: KMSClient): Promise<{ keyId: string; arn: string }> {
  const out = await kms.send(new CreateKeyCommand({ Description: 'test key' }));
  return { keyId: out.KeyMetadata!.KeyId!, arn: out.KeyMetadata!.Arn! };
}

/** Resolves to the rejection's error, failing the test when the promise resolves. */
async function failure(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}

t.test('listens on 127.0.0.1 only', async (t) => {
  await t.rejects(startLocalKmsServer({ port: 0, host: '0.0.0.0', keyring: tempKeyring(t) }), /127\.0\.0\.1 only/);
  const { server } = await setup(t);
  t.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
});

t.test('CreateKey, aliases and DescribeKey by key ID, key ARN, alias and alias ARN', async (t) => {
  const { kms, server } = await setup(t);
  const created = await kms.send(new CreateKeyCommand({ Description: 'git-remote-kmscrypt default key' }));
  const meta = created.KeyMetadata!;
  t.match(meta, {
    AWSAccountId: '111122223333',
    Enabled: true,
    KeyState: 'Enabled',
    KeySpec: 'SYMMETRIC_DEFAULT',
    KeyUsage: 'ENCRYPT_DECRYPT',
    KeyManager: 'CUSTOMER',
    Origin: 'AWS_KMS',
    Description: 'git-remote-kmscrypt default key',
  });
  t.equal(meta.Arn, `arn:aws:kms:us-east-1:111122223333:key/${meta.KeyId}`);
  t.ok(meta.CreationDate instanceof Date && Math.abs(meta.CreationDate.getTime() - Date.now()) < 60_000, 'CreationDate is now');

  await kms.send(new CreateAliasCommand({ AliasName: 'alias/kmscrypt', TargetKeyId: meta.KeyId }));
  const again = await failure(kms.send(new CreateAliasCommand({ AliasName: 'alias/kmscrypt', TargetKeyId: meta.KeyId })));
  t.equal(again.name, 'AlreadyExistsException');
  t.equal(again.$metadata?.httpStatusCode, 400);

  for (const ref of [meta.KeyId!, meta.Arn!, 'alias/kmscrypt', 'arn:aws:kms:us-east-1:111122223333:alias/kmscrypt']) {
    const described = await kms.send(new DescribeKeyCommand({ KeyId: ref }));
    t.equal(described.KeyMetadata?.KeyId, meta.KeyId, `DescribeKey ${ref}`);
  }
  const aliases = await kms.send(new ListAliasesCommand({}));
  t.same(aliases.Aliases, [{ AliasName: 'alias/kmscrypt', AliasArn: 'arn:aws:kms:us-east-1:111122223333:alias/kmscrypt', TargetKeyId: meta.KeyId }]);
  const keys = await kms.send(new ListKeysCommand({}));
  t.same(keys.Keys, [{ KeyId: meta.KeyId, KeyArn: meta.Arn }]);

  const missing = await failure(kms.send(new DescribeKeyCommand({ KeyId: 'alias/nope' })));
  t.equal(missing.name, 'NotFoundException');
  t.equal(missing.message, 'Alias arn:aws:kms:us-east-1:111122223333:alias/nope is not found.');
  const otherRegion = await failure(kms.send(new DescribeKeyCommand({ KeyId: meta.Arn!.replace('us-east-1', 'eu-west-1') })));
  t.equal(otherRegion.name, 'NotFoundException', 'an ARN of another region does not resolve');
  const unsupported = await failure(kms.send(new CreateKeyCommand({ KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' })));
  t.equal(unsupported.name, 'UnsupportedOperationException');

  t.same(server.calls, { CreateKey: 2, CreateAlias: 2, DescribeKey: 6, ListAliases: 1, ListKeys: 1 });
});

t.test('GenerateDataKey and Decrypt round trip, bound to the encryption context', async (t) => {
  const { kms, server } = await setup(t);
  const a = await createKey(kms);
  const b = await createKey(kms);
  const generated = await kms.send(new GenerateDataKeyCommand({ KeyId: a.keyId, KeySpec: 'AES_256', EncryptionContext: context }));
  t.equal(generated.Plaintext?.length, 32);
  t.equal(generated.KeyId, a.arn);

  const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context, KeyId: a.arn }));
  t.same(Buffer.from(decrypted.Plaintext!), Buffer.from(generated.Plaintext!));
  t.equal(decrypted.KeyId, a.arn);

  const wrongContext = await failure(
    kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: { 'kmscrypt:repository-id': 'repo-2' } })),
  );
  t.equal(wrongContext.name, 'InvalidCiphertextException');
  const noContext = await failure(kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob })));
  t.equal(noContext.name, 'InvalidCiphertextException');
  const altered = Buffer.from(generated.CiphertextBlob!);
  altered[altered.length - 1] ^= 1;
  t.equal((await failure(kms.send(new DecryptCommand({ CiphertextBlob: altered, EncryptionContext: context })))).name, 'InvalidCiphertextException');

  const wrongKey = await failure(kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context, KeyId: b.keyId })));
  t.equal(wrongKey.name, 'IncorrectKeyException');

  const withoutPlaintext = await kms.send(new GenerateDataKeyWithoutPlaintextCommand({ KeyId: a.arn, KeySpec: 'AES_256', EncryptionContext: context }));
  t.notOk('Plaintext' in withoutPlaintext && withoutPlaintext.Plaintext, 'no plaintext');
  const later = await kms.send(new DecryptCommand({ CiphertextBlob: withoutPlaintext.CiphertextBlob, EncryptionContext: context }));
  t.equal(later.Plaintext?.length, 32);

  const encrypted = await kms.send(new EncryptCommand({ KeyId: a.keyId, Plaintext: Buffer.from('hello'), EncryptionContext: context }));
  const back = await kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob, EncryptionContext: context }));
  t.equal(Buffer.from(back.Plaintext!).toString(), 'hello');

  const bothSizes = await failure(kms.send(new GenerateDataKeyCommand({ KeyId: a.keyId })));
  t.equal(bothSizes.name, 'ValidationException');

  t.same(server.calls, { CreateKey: 2, GenerateDataKey: 2, Decrypt: 7, GenerateDataKeyWithoutPlaintext: 1, Encrypt: 1 });
});

t.test('the server and the local key provider share the keyring', async (t) => {
  const { kms, keyring } = await setup(t);
  const { keyId } = await createKey(kms);
  const generated = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));
  const local = new LocalKeyProvider(keyring);
  const unwrapped = await local.decryptDataKey(Buffer.from(generated.CiphertextBlob!), context);
  t.same(unwrapped.plaintext, Buffer.from(generated.Plaintext!));
});

t.test('disabled keys and keys pending deletion', async (t) => {
  const { kms } = await setup(t);
  const { keyId, arn } = await createKey(kms);
  const generated = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));

  await kms.send(new DisableKeyCommand({ KeyId: keyId }));
  t.match((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata, { Enabled: false, KeyState: 'Disabled' });
  const disabled = await failure(kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context })));
  t.equal(disabled.name, 'DisabledException');
  t.equal(disabled.message, `${arn} is disabled.`);
  t.equal((await failure(kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context })))).name, 'DisabledException');
  await kms.send(new EnableKeyCommand({ KeyId: keyId }));

  const scheduled = await kms.send(new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 }));
  t.equal(scheduled.KeyState, 'PendingDeletion');
  t.equal(scheduled.PendingWindowInDays, 7);
  const pending = await failure(kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context })));
  t.equal(pending.name, 'KMSInvalidStateException');
  t.match(pending.message, /pending deletion/);
  t.equal((await failure(kms.send(new EnableKeyCommand({ KeyId: keyId })))).name, 'KMSInvalidStateException');

  await kms.send(new CancelKeyDeletionCommand({ KeyId: keyId }));
  t.match((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata, { KeyState: 'Disabled', Enabled: false });
  await kms.send(new EnableKeyCommand({ KeyId: keyId }));
  const ok = await kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context }));
  t.same(Buffer.from(ok.Plaintext!), Buffer.from(generated.Plaintext!));
});

t.test('ReEncrypt to another key, then Decrypt under it', async (t) => {
  const { kms } = await setup(t);
  const a = await createKey(kms);
  const b = await createKey(kms);
  const generated = await kms.send(new GenerateDataKeyCommand({ KeyId: a.keyId, KeySpec: 'AES_256', EncryptionContext: context }));
  const moved = await kms.send(
    new ReEncryptCommand({
      CiphertextBlob: generated.CiphertextBlob,
      SourceEncryptionContext: context,
      DestinationEncryptionContext: context,
      DestinationKeyId: b.keyId,
    }),
  );
  t.equal(moved.SourceKeyId, a.arn);
  t.equal(moved.KeyId, b.arn);
  const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: moved.CiphertextBlob, EncryptionContext: context, KeyId: b.arn }));
  t.same(Buffer.from(decrypted.Plaintext!), Buffer.from(generated.Plaintext!));

  const wrongContext = await failure(
    kms.send(
      new ReEncryptCommand({
        CiphertextBlob: generated.CiphertextBlob,
        SourceEncryptionContext: { 'kmscrypt:repository-id': 'other' },
        DestinationEncryptionContext: context,
        DestinationKeyId: b.keyId,
      }),
    ),
  );
  t.equal(wrongContext.name, 'InvalidCiphertextException');
});

t.test('denied actions answer AccessDeniedException in the AWS shape', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'local-kms-deny-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const denyFile = join(dir, 'deny');
  const { kms, server } = await setup(t, ['kms:Decrypt'], denyFile);
  const { keyId, arn } = await createKey(kms);
  const generated = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));

  const denied = await failure(kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context })));
  t.equal(denied.name, 'AccessDeniedException');
  t.equal(denied.$metadata?.httpStatusCode, 400);
  t.equal(
    denied.message,
    `User: arn:aws:iam::111122223333:user/kmscrypt-local-kms is not authorized to perform: kms:Decrypt on resource: ${arn} because no identity-based policy allows the kms:Decrypt action`,
  );

  server.deny(['kms:ReEncrypt', 'kms:GenerateDataKey']);
  await kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context }));
  t.equal((await failure(kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context })))).name, 'AccessDeniedException');
  server.deny([]);

  writeFileSync(denyFile, 'kms:DescribeKey\n');
  t.equal((await failure(kms.send(new DescribeKeyCommand({ KeyId: keyId })))).name, 'AccessDeniedException', 'deny file is read per request');
  writeFileSync(denyFile, '');
  await kms.send(new DescribeKeyCommand({ KeyId: keyId }));

  t.throws(() => server.deny(['kms:Frobnicate']), /unknown KMS action 'kms:Frobnicate'/);
  t.same(server.calls, { CreateKey: 1, GenerateDataKey: 2, Decrypt: 2, DescribeKey: 2 });
});

function rawPost(url: string, headers: Record<string, string>, body: string): Promise<{ status: number; body: Record<string, unknown> }> {
  return new Promise((resolvePost, reject) => {
    const req = request(url, { method: 'POST', headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolvePost({ status: res.statusCode ?? 0, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown> }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

t.test('requests without Authorization, to another Host, or of unknown actions are refused', async (t) => {
  const { server } = await setup(t);
  const json = { 'Content-Type': 'application/x-amz-json-1.1' };
  const unsigned = await rawPost(server.url, { ...json, 'X-Amz-Target': 'TrentService.ListKeys' }, '{}');
  t.same(unsigned, { status: 400, body: { __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' } });
  const signed = await rawPost(server.url, { ...json, 'X-Amz-Target': 'TrentService.ListKeys', Authorization: 'AWS4-HMAC-SHA256 anything' }, '{}');
  t.same(signed, { status: 200, body: { Keys: [], Truncated: false } });
  const rebound = await rawPost(server.url, { ...json, Host: 'evil.example:80', 'X-Amz-Target': 'TrentService.ListKeys', Authorization: 'x' }, '{}');
  t.equal(rebound.status, 403);
  const unknown = await rawPost(server.url, { ...json, 'X-Amz-Target': 'TrentService.Sign', Authorization: 'x' }, '{}');
  t.equal(unknown.body.__type, 'UnknownOperationException');
  const garbage = await rawPost(server.url, { ...json, 'X-Amz-Target': 'TrentService.ListKeys', Authorization: 'x' }, 'not json');
  t.equal(garbage.body.__type, 'SerializationException');
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
  const lines = createInterface({ input: child.stdout });
  const first = await new Promise<string>((done, fail) => {
    lines.once('line', done);
    child.once('exit', () => fail(new Error(`local-kms exited early: ${stderr}`)));
  });
  const m = /^KMS_ENDPOINT=(http:\/\/127\.0\.0\.1:(\d+))$/.exec(first);
  t.ok(m, `first stdout line is the endpoint: ${first}`);
  const kms = new KMSClient({ endpoint: m![1], region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1 });
  const { keyId } = await createKey(kms);
  const generated = await kms.send(new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }));
  t.equal((await failure(kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context })))).name, 'AccessDeniedException');
  kms.destroy();
  child.kill('SIGTERM');
  t.equal(await exited, 0);
  t.match(stderr, `export AWS_ENDPOINT_URL_KMS=${m![1]}`);
  t.ok(keyring.exists(), 'keys were written to the --keyring file');
});
