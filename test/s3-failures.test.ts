import { spawn } from 'node:child_process';
import { join } from 'node:path';
import t from 'tap';
import { Keyring } from '../src/keys/keyring';
import { BIN, Sandbox } from './support/sandbox';
import { s3Backend } from './support/s3-backend';

/** A local KMS endpoint of the test's own, in another process, with chosen actions denied. */
function startKms(sb: Sandbox, keyring: string, deny: string[]): Promise<{ endpoint: string; stop: () => void }> {
  return new Promise((resolve, reject) => {
    const args = ['local-kms', '--port', '0', '--keyring', keyring, ...(deny.length ? ['--deny', deny.join(',')] : [])];
    const child = spawn(join(BIN, 'git-kmscrypt'), args, { env: sb.env, stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /KMS_ENDPOINT=(\S+)/.exec(out);
      if (m) resolve({ endpoint: m[1], stop: () => child.kill('SIGTERM') });
    });
    child.on('error', reject);
    child.on('close', () => reject(new Error('local KMS exited early')));
  });
}

t.test('each S3 and KMS failure gives its own clear line and leaves nothing half-written', async (t) => {
  const backend = await s3Backend();
  const sb = new Sandbox(t, backend.env);
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');

  const expectOneLine = async (label: string, env: NodeJS.ProcessEnv, url: string, pattern: RegExp) => {
    const r = sb.run('git', ['push', url, 'main'], { cwd: src, env, expectFailure: true });
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
    t.equal(lines.length, 1, `${label}: one line`);
    t.match(lines[0] ?? r.stderr, pattern, `${label}: names the cause`);
  };

  const wrongKey = await backend.newStore(sb, 'creds');
  await expectOneLine('wrong secret key', { AWS_SECRET_ACCESS_KEY: 'not-the-secret' }, wrongKey.url, /credentials|signature|secret/i);
  t.same(await wrongKey.keys(), [], 'wrong credentials: nothing written');

  await expectOneLine('missing bucket', {}, 'kmscrypt::s3://no-such-bucket-kmscrypt-test/x', /no-such-bucket-kmscrypt-test.*does not exist/);

  const unreachable = await backend.newStore(sb, 'unreachable');
  await expectOneLine('unreachable endpoint', { AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9' }, unreachable.url, /cannot reach|127\.0\.0\.1:9/);

  const keyring = sb.path('kms-keyring.json');
  const kms = await startKms(sb, keyring, ['kms:GenerateDataKey']);
  t.teardown(kms.stop);
  const denied = await backend.newStore(sb, 'denied');
  const ownKms = { AWS_ENDPOINT_URL_KMS: kms.endpoint, KMSCRYPT_KEYRING: keyring };
  await expectOneLine('denied GenerateDataKey', ownKms, denied.url, /kms:GenerateDataKey.*kms:Encrypt, kms:Decrypt, kms:ReEncrypt, kms:GenerateDataKey, kms:GenerateDataKeyWithoutPlaintext and kms:DescribeKey/);
  // The descriptor's proof is made under a GenerateDataKey data key (docs/FORMAT.md), so a
  // denied GenerateDataKey leaves the location exactly as it was: untouched, not half-created.
  t.same(await denied.keys(), [], 'denied: nothing written, not even the descriptor');
  const afterDenial = sb.run('git', ['clone', '-q', denied.url, sb.path('empty-after-denial')], { env: ownKms, expectFailure: true });
  t.match(afterDenial.stderr, /no kmscrypt repository at .*denied.*push to it to create one/, 'a clone finds no repository there, as before the push');

  const disabledKey = new Keyring(keyring).createKey('to be disabled');
  new Keyring(keyring).update((file) => {
    file.keys.find((k) => k.keyId === disabledKey.keyId)!.state = 'Disabled';
  });
  const disabled = await backend.newStore(sb, 'disabled');
  await expectOneLine('disabled key', { ...ownKms, KMSCRYPT_KEY_ID: disabledKey.keyId }, disabled.url, /disabled/i);
  t.same(await disabled.keys(), [], 'disabled key: nothing written');
});
