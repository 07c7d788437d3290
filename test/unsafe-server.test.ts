import { spawn } from 'node:child_process';
import t from 'tap';
import { Sandbox } from './support/sandbox';
import { s3Backend } from './support/s3-backend';
import { loadServices } from './support/services';
import { startS3Proxy } from './support/s3-proxy';

/** Runs a command without blocking this process, which serves the proxy. */
function run(sb: Sandbox, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(args[0], args.slice(1), { cwd, env: { ...sb.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code) => resolve({ status: code ?? 1, stdout, stderr }));
  });
}

// A server that silently ignores If-None-Match / If-Match would let two pushes both "win" and one
// be lost: kmscrypt refuses it when a repository is created, and doctor reports it.
t.test('a server that ignores conditional writes is refused at creation and by doctor', async (t) => {
  const services = loadServices();
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

  const refused = await run(sb, ['git', 'push', store.url, 'main'], src, env);
  t.not(refused.status, 0, 'the push fails');
  const lines = refused.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
  t.equal(lines.length, 1, 'one line');
  t.match(lines[0], /ignores conditional writes .*concurrent pushes could be lost.*kmscrypt\.allowUnsafeServer=true/, 'names the cause and the opt-out');
  t.same(await store.keys(), [], 'no repository was created');

  const doctor = await run(sb, ['git', 'kmscrypt', 'doctor', store.url], src, env);
  t.not(doctor.status, 0, 'doctor exits non-zero');
  t.match(doctor.stdout + doctor.stderr, /FAIL.*conditional/i, 'doctor marks the conditional-write check as failed');

  const allowed = await run(sb, ['git', 'push', store.url, 'main'], src, { ...env, KMSCRYPT_ALLOW_UNSAFE_SERVER: 'true' });
  t.equal(allowed.status, 0, 'with the explicit opt-out the push goes through');
  t.match(allowed.stderr, /warning: kmscrypt: .*does not enforce conditional writes/, 'with one warning line');
});
