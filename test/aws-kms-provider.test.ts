import t, { Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KMSClient } from '@aws-sdk/client-kms';
import { isKmscryptError, KmscryptError } from '../src/errors';
import { KmsClientLike, KmsCommand } from '../src/keys/aws-kms-client';
import { AwsKmsProvider } from '../src/keys/aws-kms-provider';
import { repositoryContext } from '../src/keys/key-provider';
import { Keyring } from '../src/keys/keyring';
import { kmsError, KMSCRYPT_KMS_ACTIONS } from '../src/keys/kms-errors';
import { LocalKmsServer, startLocalKmsServer } from '../src/keys/local-kms-server';

const sdkLoadedAtStart = Object.keys(require.cache).some((p) => p.includes('@aws-sdk/client-kms'));

const scratch = mkdtempSync(join(tmpdir(), 'aws-kms-provider-'));
t.teardown(() => rmSync(scratch, { recursive: true, force: true }));

// Dummy credentials that local-kms does not accept (each server's own are passed explicitly),
// and nothing from the user's AWS configuration.
process.env.AWS_ACCESS_KEY_ID = 'AKIDNOTLOCALKMS';
process.env.AWS_SECRET_ACCESS_KEY = 'not-the-local-kms-secret';
process.env.AWS_CONFIG_FILE = join(scratch, 'no-aws-config');
process.env.AWS_SHARED_CREDENTIALS_FILE = join(scratch, 'no-aws-credentials');
process.env.AWS_EC2_METADATA_DISABLED = 'true';
for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_KMS', 'AWS_REGION', 'AWS_DEFAULT_REGION'])
  delete process.env[name];

const ctx = repositoryContext('repo-1');
const SIX_ACTIONS = 'kms:Encrypt, kms:Decrypt, kms:ReEncrypt, kms:GenerateDataKey, kms:GenerateDataKeyWithoutPlaintext and kms:DescribeKey';

let keyrings = 0;
async function startServer(t: Test, deny?: string[]): Promise<LocalKmsServer> {
  const keyring = new Keyring(join(scratch, `keyring-${++keyrings}`, 'keyring.json'));
  const server = await startLocalKmsServer({ port: 0, keyring, deny });
  t.teardown(() => server.close());
  return server;
}

function provider(server: LocalKmsServer, client?: KmsClientLike): AwsKmsProvider {
  return new AwsKmsProvider({ region: 'us-east-1', endpoint: server.url, credentials: server.credentials, client });
}

async function rejection(p: Promise<unknown>): Promise<KmscryptError> {
  try {
    await p;
  } catch (err) {
    if (isKmscryptError(err, 'KEY_ERROR')) return err;
    throw err;
  }
  throw new Error('expected a KmscryptError');
}

function oneLine(t: Test, err: KmscryptError): void {
  t.notMatch(err.message, /\n/, 'the message is one line');
}

t.test('the SDK is loaded on first use only', async (t) => {
  t.equal(sdkLoadedAtStart, false, 'importing the provider does not load @aws-sdk/client-kms');
  const server = await startServer(t);
  const kms = provider(server);
  t.equal(kms.name, 'AWS KMS (us-east-1)');
  t.equal(
    Object.keys(require.cache).some((p) => p.includes('@aws-sdk/client-kms')),
    sdkLoadedAtStart,
    'constructing it does not either',
  );
  await kms.ensureKey('alias/kmscrypt', true);
  t.ok(
    Object.keys(require.cache).some((p) => p.includes('@aws-sdk/client-kms')),
    'the first request does',
  );
});

t.test('the default alias is created on first use, once, and described once per process', async (t) => {
  const server = await startServer(t);
  const missing = await rejection(provider(server).ensureKey('alias/kmscrypt', false));
  t.match(missing.message, /key alias\/kmscrypt not found in AWS KMS region us-east-1 \(NotFoundException\); check git config kmscrypt\.keyId and the region/);

  const kms = provider(server);
  const key = await kms.ensureKey('alias/kmscrypt', true);
  t.match(key, { enabled: true, state: 'Enabled', keySpec: 'SYMMETRIC_DEFAULT', keyUsage: 'ENCRYPT_DECRYPT', aliases: ['alias/kmscrypt'] });
  t.equal(key.arn, `arn:aws:kms:us-east-1:111122223333:key/${key.keyId}`);
  t.same(await kms.ensureKey('alias/kmscrypt', true), key);
  t.same(await kms.describeKey('alias/kmscrypt'), key);
  t.match(kms.calls, { describeKey: 1, createKey: 1, createAlias: 1 });
  t.same(server.calls, { DescribeKey: 2, CreateKey: 1, CreateAlias: 1 }, 'the second DescribeKey is the first provider’s');

  const later = provider(server);
  t.equal((await later.ensureKey('alias/kmscrypt', true)).keyId, key.keyId, 'a later process finds the key');
  t.match(later.calls, { describeKey: 1, createKey: 0 });
});

t.test('concurrent first uses create one default key', async (t) => {
  const server = await startServer(t);
  const shared = provider(server);
  const processes = [shared, shared, shared, provider(server), provider(server), provider(server)];
  const keys = await Promise.all(processes.map((p) => p.ensureKey('alias/kmscrypt', true)));
  t.equal(new Set(keys.map((k) => k.keyId)).size, 1, 'every caller gets the same key');
  t.equal(shared.calls.createKey, 1, 'one process creates at most one key');
  const losers = processes.slice(3).reduce((n, p) => n + p.calls.scheduleKeyDeletion, 0);
  t.ok(server.calls.CreateKey > 1, `processes raced: ${server.calls.CreateKey} keys created`);
  t.equal(server.calls.CreateAlias, server.calls.CreateKey, 'every created key was offered the alias');
  t.equal(losers, server.calls.CreateKey - 1, 'every key that lost the race was discarded');
  const client = await rawClient(server);
  const { ListAliasesCommand, ListKeysCommand, DescribeKeyCommand } = await import('@aws-sdk/client-kms');
  const aliases = await client.send(new ListAliasesCommand({}));
  t.same(
    aliases.Aliases?.map((a) => [a.AliasName, a.TargetKeyId]),
    [['alias/kmscrypt', keys[0].keyId]],
  );
  const listed = await client.send(new ListKeysCommand({}));
  for (const { KeyId } of listed.Keys ?? []) {
    if (KeyId === keys[0].keyId) continue;
    const meta = await client.send(new DescribeKeyCommand({ KeyId }));
    t.equal(meta.KeyMetadata?.KeyState, 'PendingDeletion', 'keys that lost the race are scheduled for deletion');
  }
});

async function rawClient(server: LocalKmsServer): Promise<KMSClient> {
  const { KMSClient } = await import('@aws-sdk/client-kms');
  return new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: { ...server.credentials } });
}

t.test('keys by ID, ARN, alias and alias ARN', async (t) => {
  const server = await startServer(t);
  const created = await provider(server).ensureKey('alias/kmscrypt', true);
  const kms = provider(server);
  for (const ref of [created.keyId, created.arn, 'alias/kmscrypt', 'arn:aws:kms:us-east-1:111122223333:alias/kmscrypt']) {
    t.equal((await kms.ensureKey(ref, false)).keyId, created.keyId, ref);
    await kms.ensureKey(ref, false);
  }
  t.equal(kms.calls.describeKey, 4, 'one DescribeKey per key reference');

  const elsewhere = await rejection(kms.ensureKey(created.arn.replace('us-east-1', 'eu-west-1'), false));
  t.match(elsewhere.message, /is in region eu-west-1 but kmscrypt is using region us-east-1 \(NotFoundException\); set AWS_REGION=eu-west-1/);
  oneLine(t, elsewhere);
});

t.test('data keys round trip; each wrapped key is decrypted once per process', async (t) => {
  const server = await startServer(t);
  const writer = provider(server);
  const key = await writer.ensureKey('alias/kmscrypt', true);
  const first = await writer.generateDataKey(key.arn, ctx);
  t.equal(first.plaintext.length, 32);
  t.equal(first.keyId, key.arn);
  const second = await writer.generateDataKeyWithoutPlaintext(key.arn, ctx);
  t.equal(second.keyId, key.arn);

  const reader = provider(server);
  const results = await Promise.all([
    reader.decryptDataKey(first.wrapped, ctx, key.arn),
    reader.decryptDataKey(first.wrapped, ctx, key.arn),
    reader.decryptDataKey(first.wrapped, ctx),
  ]);
  for (const r of results) t.same(r.plaintext, first.plaintext);
  results[0].plaintext.fill(0);
  t.same((await reader.decryptDataKey(first.wrapped, ctx, key.keyId)).plaintext, first.plaintext, 'callers get their own copy');
  t.equal((await reader.decryptDataKey(second.wrapped, ctx)).plaintext.length, 32);
  await reader.decryptDataKey(second.wrapped, ctx);
  t.equal(reader.calls.decrypt, 2, 'one Decrypt per distinct wrapped key');
  t.equal(server.calls.Decrypt, 2);
  t.match(writer.calls, { generateDataKey: 1, generateDataKeyWithoutPlaintext: 1, decrypt: 0 });
});

t.test('wrong encryption context, wrong key, altered blob', async (t) => {
  const server = await startServer(t);
  const kms = provider(server);
  const a = await kms.ensureKey('alias/kmscrypt', true);
  const dk = await kms.generateDataKey(a.arn, ctx);
  const client = await rawClient(server);
  const { CreateKeyCommand } = await import('@aws-sdk/client-kms');
  const other = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;

  const wrongContext = await rejection(kms.decryptDataKey(dk.wrapped, repositoryContext('repo-2')));
  t.equal(
    wrongContext.message,
    'kms:Decrypt: the wrapped data key belongs to another repository (encryption context mismatch) or was altered (InvalidCiphertextException); check the repository URL and restore the object from a good copy',
  );
  t.equal(wrongContext.data.kmsError, 'InvalidCiphertextException');
  const altered = Buffer.from(dk.wrapped);
  altered[altered.length - 1] ^= 1;
  t.match((await rejection(kms.decryptDataKey(altered, ctx))).message, /InvalidCiphertextException/);

  const wrongKey = await rejection(kms.decryptDataKey(dk.wrapped, ctx, other));
  t.equal(
    wrongKey.message,
    `kms:Decrypt: the data key was not wrapped by key ${other} (IncorrectKeyException); set kmscrypt.keyId to the key this repository uses`,
  );

  await kms.decryptDataKey(dk.wrapped, ctx, a.arn);
  const cachedWrongKey = await rejection(kms.decryptDataKey(dk.wrapped, ctx, other));
  t.match(cachedWrongKey.message, /IncorrectKeyException/, 'a cached data key is still checked against the KeyId');
});

t.test('disabled keys and keys pending deletion', async (t) => {
  const server = await startServer(t);
  const kms = provider(server);
  const key = await kms.ensureKey('alias/kmscrypt', true);
  const dk = await kms.generateDataKey(key.arn, ctx);
  const client = await rawClient(server);
  const { DisableKeyCommand, EnableKeyCommand, ScheduleKeyDeletionCommand } = await import('@aws-sdk/client-kms');

  await client.send(new DisableKeyCommand({ KeyId: key.keyId }));
  const notEnabled = await rejection(provider(server).ensureKey('alias/kmscrypt', true));
  t.match(notEnabled.message, /^key alias\/kmscrypt \(arn:[^)]+\) is disabled; enable it .* git config kmscrypt\.keyId/);
  const disabled = await rejection(kms.generateDataKey(key.arn, ctx));
  t.equal(disabled.message, `kms:GenerateDataKey: key ${key.arn} is disabled (DisabledException); enable it again (aws kms enable-key --key-id ${key.arn})`);
  t.equal(disabled.data.fix, `enable it again (aws kms enable-key --key-id ${key.arn})`, 'the fix is data');
  await client.send(new EnableKeyCommand({ KeyId: key.keyId }));

  await client.send(new ScheduleKeyDeletionCommand({ KeyId: key.keyId, PendingWindowInDays: 7 }));
  const pending = await rejection(provider(server).decryptDataKey(dk.wrapped, ctx));
  t.equal(
    pending.message,
    'kms:Decrypt: the key that wrapped the data key is pending deletion (KMSInvalidStateException); cancel the deletion (aws kms cancel-key-deletion) and enable the key again',
    'a Decrypt that named no key says so once (not "key the key that wrapped")',
  );
  oneLine(t, pending);
  t.match((await rejection(provider(server).ensureKey(key.arn, false))).message, /pending deletion.*cancel the deletion/);
});

t.test('denied actions name the action and the six actions kmscrypt needs', async (t) => {
  const server = await startServer(t, ['kms:Decrypt']);
  const kms = provider(server);
  const key = await kms.ensureKey('alias/kmscrypt', true);
  const dk = await kms.generateDataKey(key.arn, ctx);
  const denied = await rejection(kms.decryptDataKey(dk.wrapped, ctx, key.arn));
  t.equal(
    denied.message,
    `kms:Decrypt on key ${key.arn} in us-east-1 was denied (AccessDeniedException); remove what denies kms:Decrypt on ${key.arn} to this identity (an IAM policy, the key policy, a permissions boundary, an SCP or a VPC endpoint policy): kmscrypt needs ${SIX_ACTIONS} on this key not to be denied`,
  );
  t.same([...KMSCRYPT_KMS_ACTIONS].join(', '), SIX_ACTIONS.replace(' and', ','));

  const fresh = await startServer(t, ['kms:CreateKey']);
  const cannotCreate = await rejection(provider(fresh).ensureKey('alias/kmscrypt', true));
  t.match(
    cannotCreate.message,
    /^cannot create the default key alias\/kmscrypt in us-east-1: kms:CreateKey was denied \(AccessDeniedException\); .*git config kmscrypt\.keyId <key id, ARN, alias or alias ARN>$/,
  );
});

t.test('ReEncrypt to another key, then decrypt under it', async (t) => {
  const server = await startServer(t);
  const kms = provider(server);
  const a = await kms.ensureKey('alias/kmscrypt', true);
  const client = await rawClient(server);
  const { CreateKeyCommand } = await import('@aws-sdk/client-kms');
  const b = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
  const dk = await kms.generateDataKey(a.arn, ctx);
  const moved = await kms.reEncrypt(dk.wrapped, ctx, b);
  t.equal(moved.keyId, b);
  const reader = provider(server);
  t.same((await reader.decryptDataKey(moved.wrapped, ctx, b)).plaintext, dk.plaintext);
  t.match((await rejection(reader.decryptDataKey(moved.wrapped, ctx, a.arn))).message, /IncorrectKeyException/);
  t.match((await rejection(kms.reEncrypt(dk.wrapped, repositoryContext('repo-2'), b))).message, /InvalidCiphertextException/);
  t.equal(kms.calls.reEncrypt, 2);
});

t.test('Encrypt and Decrypt of a small plaintext, with the KeyId given', async (t) => {
  const server = await startServer(t);
  const kms = provider(server);
  const a = await kms.ensureKey('alias/kmscrypt', true);
  const client = await rawClient(server);
  const { CreateKeyCommand } = await import('@aws-sdk/client-kms');
  const b = (await client.send(new CreateKeyCommand({}))).KeyMetadata!.Arn!;
  const plaintext = Buffer.from('endorsement of the next key');
  const { ciphertext, keyId } = await kms.encrypt(a.arn, plaintext, ctx);
  t.equal(keyId, a.arn);
  t.same(await kms.decrypt(a.arn, ciphertext, ctx), plaintext);
  t.match(await rejection(kms.decrypt(b, ciphertext, ctx)), { data: { kmsError: 'IncorrectKeyException' } }, 'KMS refuses a blob of another key');
  t.match(await rejection(kms.decrypt(a.arn, ciphertext, repositoryContext('repo-2'))), { data: { kmsError: 'InvalidCiphertextException' } });
  t.same({ encrypt: kms.calls.encrypt, decrypt: kms.calls.decrypt }, { encrypt: 1, decrypt: 3 });
});

t.test("the SDK's plaintext buffers are zeroed", async (t) => {
  const server = await startServer(t);
  const real = await rawClient(server);
  const seen: Uint8Array[] = [];
  const spy: KmsClientLike = {
    async send(command: KmsCommand) {
      const out = (await real.send(command as Parameters<KMSClient['send']>[0])) as { Plaintext?: Uint8Array };
      if (out.Plaintext) seen.push(out.Plaintext);
      return out;
    },
  };
  const kms = provider(server, spy);
  const key = await kms.ensureKey('alias/kmscrypt', true);
  const dk = await kms.generateDataKey(key.arn, ctx);
  const again = await provider(server, spy).decryptDataKey(dk.wrapped, ctx);
  t.same(again.plaintext, dk.plaintext);
  t.not(
    dk.plaintext.every((b) => b === 0),
    true,
    'our copy holds the key',
  );
  t.equal(seen.length, 2);
  for (const p of seen) t.ok(p.length === 32 && p.every((b) => b === 0), 'the SDK buffer is zeroed');
});

t.test('responses are validated', async (t) => {
  const answer = (out: object): KmsClientLike => ({ send: async () => out });
  const short = new Uint8Array(16).fill(7);
  const e1 = await rejection(
    new AwsKmsProvider({ region: 'us-east-1', client: answer({ Plaintext: short, CiphertextBlob: new Uint8Array(8), KeyId: 'k' }) }).generateDataKey('k', ctx),
  );
  t.match(e1.message, /returned 16 bytes of plaintext instead of a 32-byte data key/);
  t.ok(
    short.every((b) => b === 0),
    'a rejected plaintext is zeroed too',
  );
  const e2 = await rejection(new AwsKmsProvider({ region: 'us-east-1', client: answer({ Plaintext: new Uint8Array(32) }) }).generateDataKey('k', ctx));
  t.match(e2.message, /returned no CiphertextBlob/);
  const asymmetric = answer({
    KeyMetadata: { KeyId: 'k', Arn: 'arn:aws:kms:us-east-1:1:key/k', Enabled: true, KeyState: 'Enabled', KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY' },
  });
  const e3 = await rejection(new AwsKmsProvider({ region: 'us-east-1', client: asymmetric }).ensureKey('k', false));
  t.match(e3.message, /KeySpec RSA_2048 and KeyUsage SIGN_VERIFY; kmscrypt needs a symmetric encryption key/);
});

t.test('an unreachable endpoint is one line naming it', async (t) => {
  const port = await new Promise<number>((done) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => done(port));
    });
  });
  const endpoint = `http://127.0.0.1:${port}`;
  const err = await rejection(new AwsKmsProvider({ region: 'us-east-1', endpoint }).ensureKey('alias/kmscrypt', true));
  t.equal(
    err.message,
    `kms:DescribeKey: cannot reach the KMS endpoint ${endpoint} (ECONNREFUSED); check the network, or AWS_ENDPOINT_URL_KMS if you point kmscrypt at another KMS`,
  );
});

t.test('AWS_ENDPOINT_URL_KMS is honoured by the SDK', async (t) => {
  const server = await startServer(t);
  process.env.AWS_ENDPOINT_URL_KMS = server.url;
  t.teardown(() => {
    delete process.env.AWS_ENDPOINT_URL_KMS;
  });
  await new AwsKmsProvider({ region: 'us-east-1', credentials: server.credentials }).ensureKey('alias/kmscrypt', true);
  t.equal(server.calls.DescribeKey, 1);
});

t.test('credentials local-kms does not accept are one line that says where its own are', async (t) => {
  const server = await startServer(t);
  const err = await rejection(new AwsKmsProvider({ region: 'us-east-1', endpoint: server.url }).ensureKey('alias/kmscrypt', true));
  t.equal(
    err.message,
    `kms:DescribeKey: no credentials that the KMS endpoint ${server.url} on this machine accepts (UnrecognizedClientException: The security token included in the request is invalid.); ` +
      'for git kmscrypt local-kms, point kmscrypt.keyring (KMSCRYPT_KEYRING) at the keyring it serves: kmscrypt then signs with the local-kms-credentials.json beside it',
  );
  t.equal(err.data.kmsError, 'UnrecognizedClientException');
  const wrongSecret = new AwsKmsProvider({
    region: 'us-east-1',
    endpoint: server.url,
    credentials: { accessKeyId: server.credentials.accessKeyId, secretAccessKey: 'guess' },
  });
  t.equal((await rejection(wrongSecret.ensureKey('alias/kmscrypt', true))).data.kmsError, 'InvalidSignatureException');
  t.same(server.calls, { DescribeKey: 2 }, 'both reached the server, and neither created a key');
});

t.test('missing credentials are one line', async (t) => {
  const server = await startServer(t);
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
  delete process.env.AWS_ACCESS_KEY_ID;
  delete process.env.AWS_SECRET_ACCESS_KEY;
  t.teardown(() => {
    process.env.AWS_ACCESS_KEY_ID = saved.id;
    process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
  });
  const err = await rejection(new AwsKmsProvider({ region: 'us-east-1', endpoint: server.url }).ensureKey('alias/kmscrypt', true));
  t.match(
    err.message,
    /^kms:DescribeKey: no credentials that the KMS endpoint http:\/\/127\.0\.0\.1:\d+ on this machine accepts \(CredentialsProviderError: .*\); for git kmscrypt local-kms/,
  );
  t.equal(server.calls.DescribeKey, undefined, 'nothing reached the server');
});

t.test('KMS error names map to one-line messages', async (t) => {
  const call = { action: 'Decrypt', keyId: 'alias/kmscrypt', region: 'eu-west-1', endpoint: 'https://kms.eu-west-1.amazonaws.com' };
  const named = (name: string, message = 'x') => Object.assign(new Error(message), { name });
  t.match(kmsError(named('UnrecognizedClientException'), call).message, /no valid AWS credentials for KMS in eu-west-1/);
  t.match(kmsError(named('InvalidSignatureException'), call).message, /no valid AWS credentials/);
  t.match(kmsError(named('ExpiredTokenException'), call).message, /credentials have expired/);
  t.match(kmsError(named('ThrottlingException', 'Rate exceeded'), call).message, /retry later/);
  t.match(kmsError(named('KMSInvalidStateException', 'key is pending import'), call).message, /not in a usable state/);
  t.match(kmsError(new Error('Region is missing'), call).message, /no AWS region is configured; set AWS_REGION/);
  t.match(
    kmsError(Object.assign(new Error('getaddrinfo ENOTFOUND'), { code: 'ENOTFOUND' }), call).message,
    /cannot reach the KMS endpoint https:\/\/kms\.eu-west-1\.amazonaws\.com \(ENOTFOUND\)/,
  );
  t.match(
    kmsError(named('AccessDeniedException'), { ...call, keyId: undefined }).message,
    /^kms:Decrypt on the key that wrapped the data key in eu-west-1 was denied/,
  );
  const multi = kmsError(named('SomethingNew', 'first\nsecond'), call);
  t.equal(multi.message, 'kms:Decrypt on key alias/kmscrypt failed in eu-west-1 (SomethingNew: first second)');
});
