/**
 * The local KMS endpoint (src/keys/local-kms-server.ts) in this process, through the AWS SDK and raw
 * HTTP: the KMS actions over a keyring, denials, and request signatures. Other processes using it
 * (another user, the AWS CLI, the local-kms command) are in local-kms-processes.test.ts.
 */
import t from 'tap';
import { request } from 'node:http';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
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
import { LocalKeyProvider } from '../src/keys/local-key-provider';
import { startLocalKmsServer } from '../src/keys/local-kms-server';
import { context, createKey, failure, setup, tempKeyring } from './support/local-kms-harness';
import { signedRequest } from './support/signed-request';

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
