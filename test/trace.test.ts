import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import t, { type Test } from 'tap';
import { generationOfKey, STORE_KEYS } from '../src/format/constants';
import { parseManifestEnvelope } from '../src/format/manifest';
import { repositoryContext } from '../src/keys/key-provider';
import type { KeyringFile } from '../src/keys/keyring';
import type { RemoteConfig } from '../src/remote/remote-repository';
import { localBackend } from './support/local-backend';
import { s3Backend } from './support/s3-backend';
import { type RunResult, Sandbox } from './support/sandbox';
import type { StoreAccess } from './support/store-access';

/**
 * Tracing (src/trace.ts, docs/debugging.md): KMSCRYPT_TRACE, GIT_TRACE and git's -vv show each
 * storage request and KMS call with its time; -v adds one summary line; nothing shows by default;
 * and no trace ever holds key material: the data keys of the pushes, found here by unwrapping
 * them, and the keyring's own keys are searched for in hex and base64.
 */

const TRACE_LINE = /^\d\d:\d\d:\d\d\.\d{6} kmscrypt\[\d+\]: /;

function run(sb: Sandbox, cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): RunResult {
  const r = spawnSync('git', args, { cwd, env: { ...sb.env, ...env }, encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function traceLines(text: string): string[] {
  return text.split('\n').filter((l) => TRACE_LINE.test(l));
}

/** Every data key a manifest of the store was sealed with, unwrapped in-test. */
async function dataKeys(store: StoreAccess, config: RemoteConfig, repositoryId: string): Promise<Buffer[]> {
  const keys: Buffer[] = [];
  for (const key of await store.keys()) {
    if (!key.startsWith(STORE_KEYS.manifestPrefix) || generationOfKey(key) === undefined) continue;
    const envelope = parseManifestEnvelope(await store.read(key), key);
    keys.push((await config.keys.decryptDataKey(envelope.wrappedKey, repositoryContext(repositoryId))).plaintext);
  }
  return keys;
}

function secretsAbsent(tt: Test, trace: string, secrets: Buffer[], label: string): void {
  tt.ok(secrets.length > 0, `${label}: there are keys to look for`);
  for (const secret of secrets) {
    for (const form of [secret.toString('hex'), secret.toString('base64'), secret.toString('base64url'), secret.toString('hex').toUpperCase()]) {
      tt.notOk(trace.includes(form), `${label}: no key material in the trace (${form.slice(0, 6)}…)`);
    }
  }
}

t.test('KMSCRYPT_TRACE=1 on a local store: each request and KMS call with its time, never a key', async (tt) => {
  const sb = new Sandbox(tt);
  const store = await localBackend.newStore(sb, 'store');
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'secret text\n' }, 'one');

  const quiet = run(sb, src, ['push', store.url, 'main']);
  tt.equal(quiet.status, 0, 'a push without tracing', { stderr: quiet.stderr });
  tt.same(traceLines(quiet.stderr), [], 'traces nothing');

  sb.commit(src, { 'b.txt': 'more secret text\n' }, 'two');
  const pushed = run(sb, src, ['push', store.url, 'main'], { KMSCRYPT_TRACE: '1' });
  tt.equal(pushed.status, 0, 'a traced push', { stderr: pushed.stderr });
  const push = traceLines(pushed.stderr);
  const file = store.url.replace('kmscrypt::', '');
  for (const expected of [
    new RegExp(`storage get ${file}/kmscrypt\\.json: \\d+ bytes, \\d+\\.\\d ms$`),
    new RegExp(`storage list ${file}/manifests/: 1 object, \\d+\\.\\d ms$`),
    /kms Decrypt key arn:aws:kms:local:\d+:key\/[0-9a-f-]+ context \{"kmscrypt:repository-id":"[0-9a-f-]{36}"\} \(local keyring \(.+\)\) of \d+ wrapped bytes: unwrapped by arn:aws:kms:local:\d+:key\/[0-9a-f-]+, \d+\.\d ms$/,
    /kms GenerateDataKey key arn:aws:kms:local:\d+:key\/[0-9a-f-]+ context .*: \d+ wrapped bytes under arn:.*, \d+\.\d ms$/,
    new RegExp(`storage put ${file}/containers/[0-9a-f]{32}: stored as it was written, \\d+\\.\\d ms$`),
    new RegExp(`storage put-if-absent ${file}/manifests/0+2: \\d+ bytes, created, \\d+\\.\\d ms$`),
  ]) {
    tt.ok(
      push.some((l) => expected.test(l)),
      `the push traces ${expected.source.slice(0, 60)}`,
      { trace: push },
    );
  }

  const cloned = run(sb, sb.root, ['clone', store.url, sb.path('clone')], { KMSCRYPT_TRACE: 'true' });
  tt.equal(cloned.status, 0, 'a traced clone', { stderr: cloned.stderr });
  const clone = traceLines(cloned.stderr);
  tt.ok(
    clone.some((l) => /storage (get|stream) .*\/containers\/[0-9a-f]{32}/.test(l)),
    'the clone traces the container reads',
    { trace: clone },
  );

  const config = localBackend.remoteConfig(sb, store);
  const repositoryId = (JSON.parse((await store.read('kmscrypt.json')).toString()) as { repositoryId: string }).repositoryId;
  const keyring = JSON.parse(readFileSync(sb.env.KMSCRYPT_KEYRING!, 'utf8')) as KeyringFile;
  const secrets = [...(await dataKeys(store, config, repositoryId)), ...keyring.keys.map((k) => Buffer.from(k.material, 'base64'))];
  secretsAbsent(tt, pushed.stderr + cloned.stderr, secrets, 'push and clone');
});

t.test('KMSCRYPT_TRACE=<absolute path> appends there; GIT_TRACE is followed; bad values warn once', async (tt) => {
  const sb = new Sandbox(tt);
  const store = await localBackend.newStore(sb, 'store');
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  sb.git(src, 'push', '-q', store.url, 'main');

  const traceFile = sb.path('trace.log');
  const first = run(sb, src, ['ls-remote', store.url], { KMSCRYPT_TRACE: traceFile });
  const second = run(sb, src, ['ls-remote', store.url], { KMSCRYPT_TRACE: traceFile });
  tt.equal(first.stderr + second.stderr, '', 'nothing on stderr');
  const logged = traceLines(readFileSync(traceFile, 'utf8'));
  tt.equal(new Set(logged.map((l) => /kmscrypt\[(\d+)\]/.exec(l)![1])).size, 2, 'both helpers appended to the file');
  tt.ok(
    logged.some((l) => /storage get .*kmscrypt\.json/.test(l)),
    'with their requests',
  );

  const viaGit = run(sb, src, ['ls-remote', store.url], { GIT_TRACE: '1' });
  tt.ok(
    traceLines(viaGit.stderr).some((l) => /storage get .*kmscrypt\.json/.test(l)),
    "GIT_TRACE=1: the helper's requests among git's own trace lines",
    { stderr: viaGit.stderr },
  );
  const off = run(sb, src, ['ls-remote', store.url], { GIT_TRACE: '1', KMSCRYPT_TRACE: '0' });
  tt.same(traceLines(off.stderr), [], 'KMSCRYPT_TRACE=0 switches it off whatever GIT_TRACE says');

  const relative = run(sb, src, ['ls-remote', store.url], { KMSCRYPT_TRACE: 'trace.log' });
  tt.equal(relative.status, 0, 'a bad value does not stop the command');
  tt.equal(
    relative.stderr,
    'warning: kmscrypt: KMSCRYPT_TRACE=trace.log is not 1, true, a file descriptor 2-9 or an absolute path; tracing is off\n',
    'one warning line',
  );
});

t.test("git's verbosity: -v adds a summary line, -vv the trace", async (tt) => {
  const sb = new Sandbox(tt);
  const store = await localBackend.newStore(sb, 'store');
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  sb.git(src, 'push', '-q', 'origin', 'main');
  const dir = store.url.replace('kmscrypt::', '');

  const normal = run(sb, src, ['fetch', 'origin']);
  tt.equal(normal.stderr, '', 'a plain fetch prints nothing');
  const v = run(sb, src, ['fetch', '-v', 'origin']);
  const summaries = v.stderr.split('\n').filter((l) => l.startsWith('kmscrypt: '));
  tt.equal(summaries.length, 1, '-v: one kmscrypt line', { stderr: v.stderr });
  // An up-to-date fetch opens the manifest this clone already trusts, so it asks KMS nothing.
  tt.match(summaries[0], new RegExp(`^kmscrypt: ${dir}: storage 2 get, 1 list; KMS none; \\d+\\.\\d\\d s$`), '-v: the requests made and the time');
  tt.same(traceLines(v.stderr), [], '-v: no trace');
  const vv = run(sb, src, ['fetch', '-vv', 'origin']);
  tt.ok(
    traceLines(vv.stderr).some((l) => /storage list .*manifests\//.test(l)),
    '-vv: the trace',
    { stderr: vv.stderr },
  );
  const quiet = run(sb, src, ['push', '-q', 'origin', 'main']);
  tt.equal(quiet.stderr, '', '-q: nothing');
});

t.test('KMSCRYPT_TRACE=1 over S3 and AWS KMS: each HTTP attempt with its status, never a key or a credential', async (tt) => {
  const backend = await s3Backend();
  const sb = new Sandbox(tt, backend.env);
  const store = await backend.newStore(sb, 'trace');
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'secret text\n' }, 'one');
  const pushed = run(sb, src, ['push', store.url, 'main'], { KMSCRYPT_TRACE: '1' });
  tt.equal(pushed.status, 0, 'a traced first push', { stderr: pushed.stderr });
  const push = traceLines(pushed.stderr);
  for (const expected of [
    /s3 GetObjectCommand GET http:\/\/127\.0\.0\.1:\d+\/.*\/kmscrypt\.json: HTTP 404 \(request [^)]+\), \d+\.\d ms$/,
    /s3 PutObjectCommand PUT http:\/\/.*\/\.kmscrypt-probe-[0-9a-f]+: HTTP 412 \(request [^)]+\), \d+\.\d ms$/,
    /s3 PutObjectCommand PUT http:\/\/.*\/kmscrypt\.json: HTTP 200 \(request [^)]+\), \d+\.\d ms$/,
    /storage put-if-absent s3:\/\/.*\/kmscrypt\.json: \d+ bytes, created, \d+\.\d ms$/,
    /kms GenerateDataKey key .* \(AWS KMS.*\): \d+ wrapped bytes under arn:aws:kms:.*, \d+\.\d ms$/,
    /storage put-if-absent s3:\/\/.*\/manifests\/0+1: \d+ bytes, created, \d+\.\d ms$/,
  ]) {
    tt.ok(
      push.some((l) => expected.test(l)),
      `the push traces ${expected.source.slice(0, 60)}`,
      { trace: push },
    );
  }
  const config = backend.remoteConfig(sb, store);
  const repositoryId = (JSON.parse((await store.read('kmscrypt.json')).toString()) as { repositoryId: string }).repositoryId;
  secretsAbsent(tt, pushed.stderr, await dataKeys(store, config, repositoryId), 'S3 push');
  tt.notOk(pushed.stderr.includes(backend.env.AWS_SECRET_ACCESS_KEY!), 'no secret access key in the trace');
  tt.notMatch(pushed.stderr, /Authorization|Signature=/i, 'no request signature in the trace');
});
