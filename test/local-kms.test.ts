import t, { Test } from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
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
  ListResourceTagsCommand,
  ReEncryptCommand,
  ScheduleKeyDeletionCommand,
} from '@aws-sdk/client-kms';
import { Keyring } from '../src/keys/keyring';
import { LocalKeyProvider } from '../src/keys/local-key-provider';
import { LocalKmsServer, startLocalKmsServer } from '../src/keys/local-kms-server';
import { signedRequest } from './support/signed-request';

const context = { 'kmscrypt:repository-id': 'repo-1' };

function tempKeyring(t: Test): Keyring {
  const dir = mkdtempSync(join(tmpdir(), 'local-kms-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return new Keyring(join(dir, 'kms', 'keyring.json'));
}

async function setup(t: Test, deny?: string[], denyFile?: string): Promise<{ server: LocalKmsServer; kms: KMSClient; keyring: Keyring }> {
  const keyring = tempKeyring(t);
  const server = await startLocalKmsServer({ port: 0, keyring, deny, denyFile });
  // A copy: the SDK writes into the credentials object it is given.
  const kms = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: { ...server.credentials }, maxAttempts: 1 });
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

t.test('an encryption context entry too large answers a 4xx ValidationException, which the SDK does not retry', async (t) => {
  const { server, keyring } = await setup(t);
  // The SDK's default retries, so that a 5xx would show as several requests.
  const kms = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: { ...server.credentials } });
  t.teardown(() => kms.destroy());
  const { keyId } = await createKey(kms);
  const huge = { 'kmscrypt:repository-id': 'x'.repeat(70_000) };
  for (const [name, command] of [
    ['GenerateDataKey', new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: huge })],
    ['Encrypt', new EncryptCommand({ KeyId: keyId, Plaintext: Buffer.from('x'), EncryptionContext: huge })],
    ['Decrypt', new DecryptCommand({ CiphertextBlob: Buffer.alloc(64, 1), EncryptionContext: huge })],
  ] as const) {
    const before = server.calls[name] ?? 0;
    const err = await failure(kms.send(command as never));
    t.equal(err.name, 'ValidationException', `${name}: ValidationException`);
    t.equal(err.$metadata?.httpStatusCode, 400, `${name}: HTTP 400`);
    t.match(err.message, /encryptionContext.*65535 bytes/);
    t.equal((server.calls[name] ?? 0) - before, 1, `${name}: sent once, not retried`);
  }
  t.equal(keyring.load().keys.length, 1, 'nothing was added');
});

t.test('operations that take only a key ID or key ARN refuse aliases, as AWS does', async (t) => {
  const { kms, keyring } = await setup(t);
  const { keyId, arn } = await createKey(kms);
  await kms.send(new CreateAliasCommand({ AliasName: 'alias/x', TargetKeyId: keyId }));
  const aliasArn = 'arn:aws:kms:us-east-1:111122223333:alias/x';
  for (const target of ['alias/x', aliasArn]) {
    const err = await failure(kms.send(new CreateAliasCommand({ AliasName: 'alias/y', TargetKeyId: target })));
    t.equal(err.name, 'ValidationException', `CreateAlias --target-key-id ${target}`);
    t.equal(err.message, 'Aliases must refer to keys. Not aliases');
  }
  const before = readFileSync(keyring.path);
  for (const ref of ['alias/x', aliasArn]) {
    for (const command of [
      new DisableKeyCommand({ KeyId: ref }),
      new EnableKeyCommand({ KeyId: ref }),
      new ScheduleKeyDeletionCommand({ KeyId: ref, PendingWindowInDays: 7 }),
      new CancelKeyDeletionCommand({ KeyId: ref }),
      new ListAliasesCommand({ KeyId: ref }),
      new ListResourceTagsCommand({ KeyId: ref }),
    ]) {
      const err = await failure(kms.send(command as never));
      t.equal(err.name, 'NotFoundException', `${command.constructor.name} --key-id ${ref}`);
      t.match(err.message, /takes a key ID or key ARN, not an alias/);
    }
  }
  t.same(readFileSync(keyring.path), before, 'nothing changed: no alias y, the key not disabled nor scheduled for deletion');
  await kms.send(new DisableKeyCommand({ KeyId: arn }));
  await kms.send(new EnableKeyCommand({ KeyId: keyId }));
  t.equal((await kms.send(new DescribeKeyCommand({ KeyId: 'alias/x' }))).KeyMetadata?.KeyState, 'Enabled', 'key ID, key ARN, and DescribeKey by alias work');
});

t.test('CreateKey keeps its tags and ListResourceTags returns them; bad tags are refused, not dropped', async (t) => {
  const { kms } = await setup(t);
  const tags = [
    { TagKey: 'team', TagValue: 'platform' },
    { TagKey: 'cost-center', TagValue: '' },
  ];
  const created = await kms.send(new CreateKeyCommand({ Description: 'tagged', Tags: tags }));
  const keyId = created.KeyMetadata!.KeyId!;
  t.same((await kms.send(new ListResourceTagsCommand({ KeyId: keyId }))).Tags, tags);
  const page = await kms.send(new ListResourceTagsCommand({ KeyId: created.KeyMetadata!.Arn!, Limit: 1 }));
  t.same(page.Tags, [tags[0]]);
  t.equal(page.Truncated, true);
  t.same((await kms.send(new ListResourceTagsCommand({ KeyId: keyId, Marker: page.NextMarker }))).Tags, [tags[1]]);
  const untagged = await createKey(kms);
  t.same((await kms.send(new ListResourceTagsCommand({ KeyId: untagged.keyId }))).Tags, []);

  const keys = (await kms.send(new ListKeysCommand({}))).Keys?.length;
  for (const [label, bad, type] of [
    ['a reserved aws: key', [{ TagKey: 'aws:owner', TagValue: 'me' }], 'TagException'],
    ['a duplicate key', [{ TagKey: 'a', TagValue: '1' }, { TagKey: 'a', TagValue: '2' }], 'TagException'],
    ['51 tags', Array.from({ length: 51 }, (_, i) => ({ TagKey: `k${i}`, TagValue: '' })), 'TagException'],
    ['an empty key', [{ TagKey: '', TagValue: 'v' }], 'ValidationException'],
  ] as const) {
    t.equal((await failure(kms.send(new CreateKeyCommand({ Tags: [...bad] })))).name, type, label);
  }
  t.equal((await kms.send(new ListKeysCommand({}))).Keys?.length, keys, 'no key was created by a refused CreateKey');
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

t.test('requests without a valid signature, to another Host, or of unknown actions are refused', async (t) => {
  const { server } = await setup(t);
  const json = { 'Content-Type': 'application/x-amz-json-1.1' };
  const unsigned = await rawPost(server.url, { ...json, 'X-Amz-Target': 'TrentService.ListKeys' }, '{}');
  t.same(unsigned, { status: 400, body: { __type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' } });
  const anything = await rawPost(server.url, { ...json, 'X-Amz-Target': 'TrentService.ListKeys', Authorization: 'AWS4-HMAC-SHA256 anything' }, '{}');
  t.equal(anything.status, 400);
  t.equal(anything.body.__type, 'IncompleteSignatureException', 'any Authorization header is no longer enough');
  const rebound = await rawPost(server.url, { ...json, Host: 'evil.example:80', 'X-Amz-Target': 'TrentService.ListKeys', Authorization: 'x' }, '{}');
  t.equal(rebound.status, 403);
  const unknown = await rawPost(server.url, { ...json, 'X-Amz-Target': 'TrentService.Sign', Authorization: 'x' }, '{}');
  t.equal(unknown.body.__type, 'UnknownOperationException');
  const garbage = await signedRequest(server.url, server.credentials, new ListKeysCommand({}));
  const notJson = await rawPost(server.url, garbage.headers, garbage.body);
  t.equal(notJson.status, 200, 'the captured request itself is answered');
  const altered = await rawPost(server.url, garbage.headers, garbage.body.replace('{}', '[]'));
  t.equal(altered.body.__type, 'InvalidSignatureException', 'a body other than the one signed is refused');
});

t.test('only requests signed with the access key beside the keyring are answered, as AWS answers the others', async (t) => {
  const { server, kms, keyring } = await setup(t);
  const { keyId } = await createKey(kms);
  const before = readFileSync(keyring.path);
  const credentialsFile = join(dirname(keyring.path), 'local-kms-credentials.json');
  t.equal(statSync(credentialsFile).mode & 0o777, 0o600, 'the credentials file is mode 0600');
  t.same(JSON.parse(readFileSync(credentialsFile, 'utf8')), { version: 1, ...server.credentials }, 'the server answers the key in that file');
  t.match(server.credentials.accessKeyId, /^LKIA[A-Z2-7]{16}$/);

  const other = (credentials: { accessKeyId: string; secretAccessKey: string }, region = 'us-east-1') =>
    new KMSClient({ endpoint: server.url, region, credentials, maxAttempts: 1 });
  const wrongSecret = other({ accessKeyId: server.credentials.accessKeyId, secretAccessKey: 'not-the-secret-not-the-secret' });
  const unknownKey = other({ accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: server.credentials.secretAccessKey });
  const wrongRegion = other({ ...server.credentials }, 'eu-west-1');
  t.teardown(() => [wrongSecret, unknownKey, wrongRegion].forEach((c) => c.destroy()));
  for (const [label, client, type] of [
    ['a wrong secret', wrongSecret, 'InvalidSignatureException'],
    ['an unknown access key', unknownKey, 'UnrecognizedClientException'],
    ['a signature for another region', wrongRegion, 'InvalidSignatureException'],
  ] as const) {
    for (const command of [new DisableKeyCommand({ KeyId: keyId }), new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context }), new CreateKeyCommand({})]) {
      const err = await failure(client.send(command as never));
      t.equal(err.name, type, `${label}: ${command.constructor.name} is refused with ${type}`);
      t.equal(err.$metadata?.httpStatusCode, 400);
    }
  }
  t.same(readFileSync(keyring.path), before, 'the keyring is byte for byte unchanged');
  t.equal((await kms.send(new DescribeKeyCommand({ KeyId: keyId }))).KeyMetadata?.KeyState, 'Enabled', 'the key is still enabled');

  const late = await signedRequest(server.url, server.credentials, new ListKeysCommand({}), 20 * 60_000);
  const lateReply = await rawPost(server.url, late.headers, late.body);
  t.equal(lateReply.body.__type, 'InvalidSignatureException', 'a request signed 20 minutes in the future is refused');
  t.match(lateReply.body.message, /^Signature not yet current: /);
  const recent = await signedRequest(server.url, server.credentials, new ListKeysCommand({}), -10 * 60_000);
  t.equal((await rawPost(server.url, recent.headers, recent.body)).status, 200, 'one signed 10 minutes ago is answered (AWS allows 15)');
});

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
    ['DisableKey, unsigned', { headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'TrentService.DisableKey' }, body: JSON.stringify({ KeyId: keyId }) }, 'MissingAuthenticationTokenException'],
    ['DisableKey, with any Authorization', { headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'TrentService.DisableKey', Authorization: 'AWS4-HMAC-SHA256 Credential=x/20250101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=00' }, body: JSON.stringify({ KeyId: keyId }) }, 'UnrecognizedClientException'],
    ['DisableKey, signed with a made-up key', await signedRequest(server.url, { accessKeyId: 'AKIAIOSFODNN7EXAMPLE', secretAccessKey: 'x'.repeat(40) }, new DisableKeyCommand({ KeyId: keyId })), 'UnrecognizedClientException'],
    ['DisableKey, the right key ID with a guessed secret', await signedRequest(server.url, guessed, new DisableKeyCommand({ KeyId: keyId })), 'InvalidSignatureException'],
    ['ScheduleKeyDeletion, the right key ID with a guessed secret', await signedRequest(server.url, guessed, new ScheduleKeyDeletionCommand({ KeyId: keyId, PendingWindowInDays: 7 })), 'InvalidSignatureException'],
    ['Decrypt, the right key ID with a guessed secret', await signedRequest(server.url, guessed, new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context })), 'InvalidSignatureException'],
    ['GenerateDataKey, the right key ID with a guessed secret', await signedRequest(server.url, guessed, new GenerateDataKeyCommand({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: context })), 'InvalidSignatureException'],
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
  t.ok(keyring.load().keys.some((k) => k.keyId === keyId && k.description === 'made by the AWS CLI'), 'the key is in the keyring');
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
  t.equal((await failure(kms.send(new DecryptCommand({ CiphertextBlob: generated.CiphertextBlob, EncryptionContext: context })))).name, 'AccessDeniedException');
  kms.destroy();
  child.kill('SIGTERM');
  t.equal(await exited, 0);
  t.match(stderr, `export AWS_ENDPOINT_URL_KMS=${m![1]} KMSCRYPT_KMS=aws AWS_REGION=us-east-1 KMSCRYPT_KEYRING=${keyring.path}`);
  t.match(stderr, `it answers only requests signed with the access key in ${credentialsFile} (mode 0600: yours alone)`);
  t.ok(keyring.exists(), 'keys were written to the --keyring file');
});
