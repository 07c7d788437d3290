import { ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { s3Backend } from './support/s3-backend';
import { Sandbox, writeUncoveredShim } from './support/sandbox';
import { runningServices, s3ClientFor } from './support/services';
import { localStore, type StoreAccess } from './support/store-access';

/**
 * Ctrl-C (SIGINT to git, the helper and its children at once, as a terminal sends it) or a
 * SIGTERM to the helper alone, at several points of a first push (src/interrupt-cleanup.ts):
 * nothing is left in $TMPDIR (one per test), nothing half-written in the store, no child of the
 * helper keeps running, nothing is printed as a kmscrypt failure, and the next push works.
 */

interface Interrupted {
  status: number | null;
  stderr: string;
  /** No process of the push's process group was left a few seconds after git ended. */
  groupGone: boolean;
}

/** Forty random MiB: pack-objects, sealing and the upload each take long enough to be interrupted. */
function sourceRepository(sb: Sandbox): string {
  const src = sb.repo('src');
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 40; i++) files[`f${i}.bin`] = randomBytes(1 << 20);
  sb.commit(src, files, 'forty random MiB');
  return src;
}

/**
 * Starts `git push --progress` in a process group of its own and, once stderr matches `when`,
 * sends `signal` to the whole group (Ctrl-C) or to the helper alone. Resolves once git has
 * ended and no process of the group is left.
 */
function pushAndInterrupt(
  sb: Sandbox,
  src: string,
  url: string,
  env: NodeJS.ProcessEnv,
  when: RegExp,
  target: 'group' | 'helper',
  signal: NodeJS.Signals,
): Promise<Interrupted> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['push', '--progress', url, 'main'], {
      cwd: src,
      env: { ...sb.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
      detached: true,
    });
    let stderr = '';
    let sent = false;
    child.stderr.on('data', (b: Buffer) => {
      stderr += b.toString();
      if (sent || !when.test(stderr)) return;
      sent = true;
      if (target === 'group') process.kill(-child.pid!, signal);
      else process.kill(Number(readFileSync(env.HELPER_PID_FILE!, 'utf8').trim()), signal);
    });
    child.on('error', reject);
    child.on('close', (status, exitSignal) => {
      // git dies of the signal, or exits non-zero once the helper has: either way not 0.
      if (!sent) return reject(new Error(`the push ended before ${when.source} appeared:\n${stderr}`));
      groupGone(child.pid!).then((gone) => resolve({ status: status ?? (exitSignal ? 128 : null), stderr, groupGone: gone }), reject);
    });
  });
}

/** Waits up to 5 s for every process of the group to end; true when none is left. */
async function groupGone(pgid: number): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(-pgid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function walk(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...walk(p).map((q) => join(e.name, q)));
    else out.push(e.name);
  }
  return out;
}

async function checkAfter(tt: Test, sb: Sandbox, src: string, store: StoreAccess, tmp: string, r: Interrupted, label: string): Promise<void> {
  const seen = { status: r.status, stderr: r.stderr };
  tt.not(r.status, 0, `${label}: git did not report success`, seen);
  tt.ok(r.groupGone, `${label}: no process of the push is left (pack-objects, index-pack, the helper)`, seen);
  tt.same(readdirSync(tmp), [], `${label}: nothing is left in TMPDIR`, seen);
  tt.notMatch(r.stderr, /fatal: kmscrypt:/, `${label}: the interruption is not reported as a kmscrypt failure`, { stderr: r.stderr });
  const keys = await store.keys();
  tt.same(
    keys.filter((k) => /(^|\/)\.tmp-|\.lock$/.test(k)),
    [],
    `${label}: no temporary or lock file in the store`,
  );
  tt.same(
    walk(join(src, '.git', 'objects', 'pack')).filter((n) => n.startsWith('tmp_')),
    [],
    `${label}: no temporary pack in the repository`,
  );
  const again = sb.run('git', ['push', '-q', store.url, 'main'], { cwd: src, env: { TMPDIR: tmp } });
  tt.equal(again.status, 0, `${label}: the next push works`, { stderr: again.stderr });
  const clone = sb.path(`clone-${label.replace(/\W+/g, '-')}`);
  sb.run('git', ['clone', '-q', store.url, clone], { env: { TMPDIR: tmp } });
  tt.same(sb.refs(clone), sb.refs(src), `${label}: a clone has the pushed branch`);
  tt.same(readdirSync(tmp), [], `${label}: nothing is left in TMPDIR after the next push and a clone`);
}

const POINTS: Array<{ when: RegExp; name: string }> = [
  { when: /Compressing objects: +\d+%/, name: 'while pack-objects compresses' },
  { when: /Encrypting objects: +\d+%/, name: 'while objects are sealed' },
];

t.test('Ctrl-C during a first push to a local store', async (tt) => {
  const sb = new Sandbox(tt);
  const src = sourceRepository(sb);
  for (const [i, point] of POINTS.entries()) {
    const tmp = sb.path(`tmp-${i}`);
    mkdirSync(tmp);
    const store = localStore(sb.path(`store-${i}`));
    const r = await pushAndInterrupt(sb, src, store.url, { TMPDIR: tmp }, point.when, 'group', 'SIGINT');
    await checkAfter(tt, sb, src, store, tmp, r, `Ctrl-C ${point.name}`);
  }
});

t.test('SIGTERM to the helper alone during a first push to a local store', async (tt) => {
  const sb = new Sandbox(tt);
  const src = sourceRepository(sb);
  const shims = sb.path('shims');
  mkdirSync(shims);
  const pidFile = sb.path('helper.pid');
  writeUncoveredShim(join(shims, 'git-remote-kmscrypt'), 'git-remote-kmscrypt', `echo $$ > ${pidFile}\n`);
  for (const [i, point] of POINTS.entries()) {
    const tmp = sb.path(`tmp-${i}`);
    mkdirSync(tmp);
    const store = localStore(sb.path(`store-${i}`));
    const r = await pushAndInterrupt(
      sb,
      src,
      store.url,
      { TMPDIR: tmp, PATH: `${shims}:${sb.env.PATH}`, HELPER_PID_FILE: pidFile },
      point.when,
      'helper',
      'SIGTERM',
    );
    await checkAfter(tt, sb, src, store, tmp, r, `SIGTERM ${point.name}`);
  }
});

t.test('Ctrl-C during the upload of a first push to S3: the multipart upload is aborted', async (tt) => {
  const backend = await s3Backend();
  const sb = new Sandbox(tt, backend.env);
  const src = sourceRepository(sb);
  const store = await backend.newStore(sb, 'interrupt');
  const tmp = sb.path('tmp');
  mkdirSync(tmp);
  // Traced (docs/debugging.md): when a check below fails, its stderr shows the requests and the cleanup.
  const r = await pushAndInterrupt(sb, src, store.url, { TMPDIR: tmp, KMSCRYPT_TRACE: '1' }, /Uploading: +[1-9]/, 'group', 'SIGINT');
  const [, bucket, prefix] = /^kmscrypt::s3:\/\/([^/]+)\/(.+)$/.exec(store.url)!;
  const uploads = await s3ClientFor(await runningServices()).send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: `${prefix}/` }));
  tt.same(
    (uploads.Uploads ?? []).map((u) => u.Key),
    [],
    'no multipart upload is left open',
    { status: r.status, stderr: r.stderr },
  );
  await checkAfter(tt, sb, src, store, tmp, r, 'Ctrl-C while uploading to S3');
});
