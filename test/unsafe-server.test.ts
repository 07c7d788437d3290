import t from 'tap';
import { Sandbox } from './support/sandbox';
import { s3Backend } from './support/s3-backend';
import { runningServices } from './support/services';
import { startS3Proxy } from './support/s3-proxy';

// A server that silently ignores If-None-Match / If-Match would let two pushes both "win" and one
// be lost: kmscrypt refuses it when a repository is created, and doctor reports it.
t.test('a server that ignores conditional writes is refused at creation and by doctor', async (t) => {
  const services = await runningServices();
  const backend = await s3Backend();
  const sb = new Sandbox(t, backend.env);
  const proxy = await startS3Proxy({
    target: services.s3.endpoint,
    credentials: { accessKeyId: services.s3.accessKeyId, secretAccessKey: services.s3.secretAccessKey },
    stripHeaders: ['if-none-match', 'if-match'],
  });
  t.teardown(() => proxy.close());
  const env = { AWS_ENDPOINT_URL_S3: proxy.url };
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  const store = await backend.newStore(sb, 'unsafe');

  const refused = await sb.runAsync(['git', 'push', store.url, 'main'], { cwd: src, env, expectFailure: true });
  const lines = refused.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
  t.equal(lines.length, 1, 'one line');
  t.match(lines[0], /ignores conditional writes .*concurrent pushes could be lost.*kmscrypt\.allowUnsafeServer=true/, 'names the cause and the opt-out');
  t.same(await store.keys(), [], 'no repository was created');

  const doctor = await sb.runAsync(['git', 'kmscrypt', 'doctor', store.url], { cwd: src, env, expectFailure: true });
  t.match(doctor.stdout + doctor.stderr, /FAIL.*conditional/i, 'doctor marks the conditional-write check as failed');

  const allowed = await sb.runAsync(['git', 'push', store.url, 'main'], { cwd: src, env: { ...env, KMSCRYPT_ALLOW_UNSAFE_SERVER: 'true' } });
  t.match(allowed.stderr, /warning: kmscrypt: .*does not enforce conditional writes/, 'with one warning line');
});
