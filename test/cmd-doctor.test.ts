import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, renameSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Keyring } from '../src/keys/keyring';
import { withLocalKms } from './support/local-kms-sandbox';
import { BIN, Sandbox } from './support/sandbox';
import { localStore } from './support/store-access';

interface Check {
  name: string;
  status: 'PASS' | 'WARN' | 'FAIL' | 'SKIP';
  detail: string;
  fix?: string;
}

interface Doctor {
  ok: boolean;
  checks: Check[];
}

const ACTIONS = ['kms:DescribeKey', 'kms:GenerateDataKeyWithoutPlaintext', 'kms:GenerateDataKey', 'kms:Decrypt', 'kms:ReEncrypt', 'kms:Encrypt'];

async function doctor(sb: Sandbox, target: string, opts: { cwd?: string; expectFailure?: boolean } = {}): Promise<Doctor> {
  return JSON.parse((await sb.runAsync(['git', 'kmscrypt', 'doctor', target, '--json'], opts)).stdout) as Doctor;
}

function row(report: Doctor, name: string): Check {
  const found = report.checks.find((c) => c.name === name);
  if (!found) throw new Error(`no ${name} row in ${JSON.stringify(report.checks)}`);
  return found;
}

t.test('local store and keyring: every check passes for an existing repository', async (t) => {
  const sb = new Sandbox(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'first');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  sb.git(src, 'push', '-q', 'origin', 'main');

  const report = await doctor(sb, 'origin', { cwd: src });
  t.equal(report.ok, true);
  t.same(
    report.checks.filter((c) => c.status !== 'PASS'),
    [],
    'nothing but PASS',
  );
  for (const name of ['url', 'settings', 'store', 'repository', 'manifest', 'conditional writes', 'keyring', ...ACTIONS])
    t.equal(row(report, name).status, 'PASS', name);
  const id = row(report, 'repository').detail.split(' ')[0];
  t.match(row(report, 'kms:ReEncrypt').detail, `{"kmscrypt:repository-id":"${id}"}`, "exercised with the repository's encryption context");
  t.same(
    await localStore(sb.path('store'))
      .keys()
      .then((k) => k.filter((x) => x.includes('probe'))),
    [],
    'the probe object was removed',
  );

  const text = (await sb.runAsync(['git', 'kmscrypt', 'doctor', store.url])).stdout;
  t.match(text, /^CHECK +STATUS +DETAIL$/m);
  t.match(text, /^conditional writes +PASS +If-None-Match and If-Match are enforced$/m);
  t.match(text, /^doctor: all checks passed$/m);
});

t.test('before the first push: warnings, nothing created, and a bad URL fails', async (t) => {
  const sb = new Sandbox(t);
  const report = await doctor(sb, `kmscrypt::${sb.path('new-store')}`);
  t.equal(report.ok, true, 'warnings only');
  t.equal(row(report, 'store').status, 'WARN');
  t.equal(row(report, 'repository').status, 'WARN');
  t.equal(row(report, 'conditional writes').status, 'SKIP');
  t.equal(row(report, 'keyring').status, 'WARN');
  t.equal(row(report, 'kms:DescribeKey').status, 'WARN');
  t.match(row(report, 'kms:DescribeKey').detail, /alias\/kmscrypt does not exist yet: the first push creates it/);
  t.notOk(existsSync(sb.path('new-store')), 'doctor did not create the directory');
  t.notOk(existsSync(sb.env.KMSCRYPT_KEYRING!), 'nor the keyring');

  const bad = await doctor(sb, 'kmscrypt::Not_A_Bucket', { expectFailure: true });
  t.equal(bad.ok, false);
  t.equal(row(bad, 'url').status, 'FAIL');
  t.ok(row(bad, 'url').fix, 'with a fix');
});

t.test('AWS KMS endpoint: all six actions pass; a denied ReEncrypt fails that row with its fix', async (t) => {
  const { sb, server } = await withLocalKms(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'first');
  await sb.runAsync(['git', 'push', '-q', store.url, 'main'], { cwd: src });

  const before = { ...server.calls };
  const report = await doctor(sb, store.url);
  t.equal(report.ok, true, JSON.stringify(report.checks.filter((c) => c.status !== 'PASS')));
  for (const action of ACTIONS) {
    t.equal(row(report, action).status, 'PASS', action);
    const name = action.slice('kms:'.length);
    t.ok((server.calls[name] ?? 0) > (before[name] ?? 0), `${action} was really sent to KMS`);
  }
  t.match(
    row(report, 'kms:DescribeKey').detail,
    /^arn:aws:kms:us-east-1:111122223333:key\/[0-9a-f-]{36}: Enabled, SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT \(AWS KMS \(us-east-1\)\)$/,
  );

  server.deny(['kms:ReEncrypt']);
  const denied = await doctor(sb, store.url, { expectFailure: true });
  t.equal(denied.ok, false);
  const reEncrypt = row(denied, 'kms:ReEncrypt');
  t.equal(reEncrypt.status, 'FAIL');
  t.match(reEncrypt.detail, /kms:ReEncrypt .*was denied \(AccessDeniedException\)/);
  t.match(reEncrypt.fix, /remove what denies kms:ReEncrypt on arn:aws:kms:us-east-1:111122223333:key\/\S+ to this identity/);
  for (const action of ACTIONS.filter((a) => a !== 'kms:ReEncrypt')) t.equal(row(denied, action).status, 'PASS', `${action} still passes`);
  const text = await sb.runAsync(['git', 'kmscrypt', 'doctor', store.url], { expectFailure: true });
  t.equal(text.status, 1);
  t.match(text.stdout, /^kms:ReEncrypt +FAIL +/m);
  t.match(text.stdout, /^ +fix: remove what denies kms:ReEncrypt/m);
  t.match(text.stdout, /^doctor: 1 check failed$/m);
  server.deny([]);
});

t.test('AWS KMS endpoint: a throwaway context before the repository exists; a disabled key fails', async (t) => {
  const { sb, keyring } = await withLocalKms(t);
  const key = keyring.createKey('chosen key');
  sb.env.KMSCRYPT_KEY_ID = key.keyId;
  const report = await doctor(sb, `kmscrypt::${sb.path('store')}`);
  t.equal(report.ok, true, JSON.stringify(report.checks.filter((c) => c.status === 'FAIL')));
  for (const action of ACTIONS) t.equal(row(report, action).status, 'PASS', action);
  t.match(row(report, 'kms:GenerateDataKey').detail, '{"kmscrypt:repository-id":"doctor-check"}');

  keyring.update((file) => {
    file.keys.find((k) => k.keyId === key.keyId)!.state = 'Disabled';
  });
  const disabled = await doctor(sb, `kmscrypt::${sb.path('store')}`, { expectFailure: true });
  const describe = row(disabled, 'kms:DescribeKey');
  t.equal(describe.status, 'FAIL');
  t.match(describe.detail, /its state is Disabled/);
  t.match(describe.fix, /enable it \(aws kms enable-key --key-id arn:aws:kms:us-east-1:111122223333:key\//);
  t.equal(row(disabled, 'kms:Decrypt').status, 'SKIP');
});

t.test("each failure's fix is the one for that failure, not the check's generic advice", async (t) => {
  const sb = new Sandbox(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'first');
  sb.git(src, 'push', '-q', store.url, 'main');
  const keyring = sb.env.KMSCRYPT_KEYRING!;

  // A keyring readable by others: the manifest cannot be opened, and the fix is chmod, not verify.
  chmodSync(keyring, 0o644);
  const open = await doctor(sb, store.url, { expectFailure: true });
  for (const name of ['manifest', 'keyring', 'kms:DescribeKey']) {
    t.equal(row(open, name).status, 'FAIL', `${name} fails`);
    t.equal(row(open, name).detail, `keyring ${keyring} is readable by group or others (mode 644)`, `${name}: the cause`);
    t.equal(row(open, name).fix, `run: chmod 600 ${keyring}`, `${name}: the fix for it`);
  }
  chmodSync(keyring, 0o600);

  // The keyring deleted: restore it; choosing another key cannot help.
  renameSync(keyring, `${keyring}.saved`);
  const gone = await doctor(sb, store.url, { expectFailure: true });
  t.equal(row(gone, 'manifest').status, 'FAIL');
  const restore = 'restore it from your backup, or point KMSCRYPT_KEYRING (kmscrypt.keyring) at it';
  t.equal(row(gone, 'manifest').fix, restore);
  t.equal(row(gone, 'kms:DescribeKey').status, 'FAIL');
  t.match(row(gone, 'kms:DescribeKey').detail, `the local keyring ${keyring} does not exist`);
  t.equal(row(gone, 'kms:DescribeKey').fix, restore, 'kms:DescribeKey: restore the keyring, not check kmscrypt.keyId and the region');
  renameSync(`${keyring}.saved`, keyring);

  // An S3 endpoint nobody listens on: the fix is about the endpoint, not the bucket name or region.
  const closed = await new Promise<number>((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
  sb.env.AWS_ACCESS_KEY_ID = 'AKIDEXAMPLE';
  sb.env.AWS_SECRET_ACCESS_KEY = 'secret';
  sb.env.AWS_REGION = 'us-east-1';
  sb.env.AWS_ENDPOINT_URL_S3 = `http://127.0.0.1:${closed}`;
  const refused = await doctor(sb, 'kmscrypt::s3://bucket-x/repo', { expectFailure: true });
  const storeRow = row(refused, 'store');
  t.equal(storeRow.status, 'FAIL');
  t.match(storeRow.detail, `cannot reach S3 endpoint http://127.0.0.1:${closed} (from AWS_ENDPOINT_URL_S3) (ECONNREFUSED)`);
  t.equal(storeRow.fix, 'check kmscrypt.endpoint / AWS_ENDPOINT_URL_S3 and the network');
});

/** `git kmscrypt local-kms` as a user starts it: its endpoint and the credentials file it prints. */
function startLocalKms(sb: Sandbox, t: Test, keyring: string): Promise<{ endpoint: string; credentialsFile: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(BIN, 'git-kmscrypt'), ['local-kms', '--port', '0', '--keyring', keyring], { env: sb.env, stdio: ['ignore', 'pipe', 'ignore'] });
    t.teardown(() => {
      child.kill('SIGTERM');
    });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const endpoint = /^KMS_ENDPOINT=(\S+)$/m.exec(out)?.[1];
      const credentialsFile = /^KMS_CREDENTIALS_FILE=(\S+)$/m.exec(out)?.[1];
      if (endpoint && credentialsFile) resolve({ endpoint, credentialsFile });
    });
    child.on('error', reject);
    child.on('close', () => reject(new Error('local-kms exited early')));
  });
}

t.test('local keyring: a disabled key is enabled again through git kmscrypt local-kms, which the fix says and which works', async (t) => {
  const sb = new Sandbox(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'first');
  sb.git(src, 'push', '-q', store.url, 'main');
  const keyringPath = sb.env.KMSCRYPT_KEYRING!;
  const keyring = new Keyring(keyringPath);
  const keyId = keyring.load().aliases['alias/kmscrypt'];
  keyring.update((file) => {
    file.keys.find((k) => k.keyId === keyId)!.state = 'Disabled';
  });

  const enable = `enable it again (start git kmscrypt local-kms --keyring ${keyringPath}, then aws kms enable-key --key-id ${keyId} with the endpoint and credentials it prints)`;
  const report = await doctor(sb, store.url, { expectFailure: true });
  t.same(row(report, 'kms:DescribeKey'), {
    name: 'kms:DescribeKey',
    status: 'FAIL',
    detail: `arn:aws:kms:local:000000000000:key/${keyId} (alias/kmscrypt): its state is Disabled`,
    fix: enable,
  });
  t.same(row(report, 'manifest'), { name: 'manifest', status: 'FAIL', detail: `Decrypt: key ${keyId} is disabled (DisabledException)`, fix: enable });
  const text = await sb.runAsync(['git', 'kmscrypt', 'doctor', store.url], { expectFailure: true });
  t.equal(text.status, 1, 'doctor exits 1');
  t.notMatch(text.stdout, /aws kms enable-key --key-id arn:/, 'no AWS ARN for a key of the local keyring');

  sb.commit(src, { 'b.txt': 'b\n' }, 'second');
  const push = sb.run('git', ['push', store.url, 'main'], { cwd: src, expectFailure: true });
  t.same(
    push.stderr.split('\n').filter((l) => l.startsWith('fatal:')),
    [`fatal: kmscrypt: Decrypt: key ${keyId} is disabled (DisabledException); ${enable}`],
    'a push says the same, in one line',
  );
  t.equal(push.status, 128);

  // Doing what the fix says (EnableKey, as the AWS CLI sends it) makes the key serve again.
  const { endpoint, credentialsFile } = await startLocalKms(sb, t, keyringPath);
  const { KMSClient, EnableKeyCommand } = await import('@aws-sdk/client-kms');
  const credentials = JSON.parse(readFileSync(credentialsFile, 'utf8')) as { accessKeyId: string; secretAccessKey: string };
  const kms = new KMSClient({ endpoint, region: 'us-east-1', credentials });
  await kms.send(new EnableKeyCommand({ KeyId: keyId }));
  kms.destroy();
  t.equal((await doctor(sb, store.url)).ok, true, 'doctor passes');
  sb.git(src, 'push', '-q', store.url, 'main');
});
