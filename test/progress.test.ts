import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { humaniseBytes } from '../src/remote/progress';
import { s3Backend } from './support/s3-backend';
import { Sandbox } from './support/sandbox';

/** git's throughput line: "Uploading: 12.30 MiB | 5.60 MiB/s, done." */
const UPLOAD_LINE = /Uploading: \d+(\.\d\d)? (bytes|KiB|MiB|GiB) \| \d+(\.\d\d)? (bytes|KiB|MiB|GiB)\/s, done\./;

// Progress goes to stderr in git's style when git asks for it (a terminal, or --progress), and
// not at all with -q; stdout stays the protocol's.
t.test('progress lines appear with --progress and not with -q', async (t) => {
  const sb = new Sandbox(t);
  const src = sb.repo('src');
  for (let i = 0; i < 3; i++) sb.commit(src, { [`f${i}.txt`]: `file ${i}\n`.repeat(50) }, `commit ${i}`);
  const url = `kmscrypt::file://${sb.path('store')}`;

  const loud = sb.run('git', ['push', '--progress', url, 'main'], { cwd: src });
  t.match(loud.stderr, /Encrypting objects: 100% \(\d+\/\d+\), done\./, 'push --progress shows encryption progress');
  t.match(loud.stderr, UPLOAD_LINE, 'push --progress shows the bytes uploaded and the rate');

  sb.commit(src, { 'g.txt': 'more\n' }, 'more');
  const quiet = sb.run('git', ['push', '-q', url, 'main'], { cwd: src });
  t.equal(quiet.stderr, '', 'push -q prints nothing at all');

  const clone = sb.run('git', ['clone', '--progress', url, sb.path('c1')]);
  t.match(clone.stderr, /Receiving objects: 100%/, 'clone --progress shows git\'s own receiving progress');
  const quietClone = sb.run('git', ['clone', '-q', url, sb.path('c2')]);
  t.equal(quietClone.stderr, '', 'clone -q prints nothing');

  sb.commit(src, { 'h.txt': 'again\n' }, 'again');
  sb.git(src, 'push', '-q', url, 'main');
  const fetch = sb.run('git', ['fetch', '--progress', 'origin'], { cwd: sb.path('c1') });
  t.match(fetch.stderr, /Decrypting objects: 100% \(\d+\/\d+\), done\./, 'fetch --progress shows decryption progress');
});

/** Runs a command and notes when each piece of its stderr arrived, in ms since the start. */
function timedRun(sb: Sandbox, args: string[], cwd: string): Promise<{ status: number | null; totalMs: number; chunks: Array<{ atMs: number; text: string }> }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const ms = () => Number(process.hrtime.bigint() - started) / 1e6;
    const chunks: Array<{ atMs: number; text: string }> = [];
    const child = spawn('git', args, { cwd, env: sb.env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', (b: Buffer) => chunks.push({ atMs: ms(), text: b.toString() }));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, totalMs: ms(), chunks }));
  });
}

/** git's object progress from pack-objects, then ours: any of these is a progress line. */
const PROGRESS_LINE = /(Enumerating|Counting|Compressing|Writing|Encrypting) objects|Uploading:/;

// A first push used to run pack-objects with its stderr captured: ~40 MiB of random files
// printed nothing for most of the push. Measured relative to the push's own duration, so a
// loaded machine stretches both alike.
t.test('a first push of ~40 MiB shows progress within the first quarter of its time, and none with -q', async (t) => {
  const sb = new Sandbox(t);
  const src = sb.repo('src');
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 40; i++) files[`f${i}.bin`] = randomBytes(1 << 20);
  sb.commit(src, files, 'forty random MiB');
  // The keyring exists before the timed push, as it does for anyone's second repository.
  sb.git(src, 'push', '-q', `kmscrypt::file://${sb.path('warm-up')}`, 'main');

  const loud = await timedRun(sb, ['push', '--progress', `kmscrypt::file://${sb.path('store')}`, 'main'], src);
  t.equal(loud.status, 0, 'the push succeeded', { stderr: loud.chunks.map((c) => c.text).join('') });
  const first = loud.chunks.find((c) => PROGRESS_LINE.test(c.text));
  t.ok(first, 'the push shows progress');
  t.ok(first!.atMs <= loud.totalMs / 4, `the first progress line came at ${first!.atMs.toFixed(0)} ms of ${loud.totalMs.toFixed(0)} ms`, { first: first!.text });
  const all = loud.chunks.map((c) => c.text).join('');
  for (const step of [/Enumerating objects: \d+, done\./, /Counting objects: 100% \(\d+\/\d+\), done\./, /Compressing objects: 100% \(\d+\/\d+\), done\./, /Encrypting objects: 100% \(\d+\/\d+\), done\./, UPLOAD_LINE]) {
    t.match(all, step, `the push shows ${step.source.split(':')[0].replace(/\\/g, '')}`);
  }

  const quiet = await timedRun(sb, ['push', '-q', `kmscrypt::file://${sb.path('store-quiet')}`, 'main'], src);
  t.equal(quiet.status, 0, 'the quiet push succeeded');
  t.equal(quiet.chunks.map((c) => c.text).join(''), '', 'push -q prints nothing at all');
});

t.test('gc shows its progress with --progress and nothing with -q', async (t) => {
  const sb = new Sandbox(t);
  const src = sb.repo('src');
  const url = `kmscrypt::file://${sb.path('store')}`;
  for (let i = 0; i < 2; i++) {
    sb.commit(src, { [`f${i}.txt`]: `file ${i}\n`.repeat(50) }, `commit ${i}`);
    sb.git(src, 'push', '-q', url, 'main');
  }
  const loud = sb.run('git', ['kmscrypt', 'gc', url, '--progress'], { cwd: src });
  t.equal(loud.status, 0, 'gc succeeded', { stderr: loud.stderr });
  t.match(loud.stderr, /Encrypting objects: 100% \(\d+\/\d+\), done\./, 'gc --progress shows encryption progress');
  t.match(loud.stderr, UPLOAD_LINE, 'gc --progress shows the bytes uploaded and the rate');
  sb.commit(src, { 'g.txt': 'more\n' }, 'more');
  sb.git(src, 'push', '-q', url, 'main');
  const quiet = sb.run('git', ['kmscrypt', 'gc', url, '-q'], { cwd: src });
  t.equal(quiet.status, 0, 'gc -q succeeded', { stderr: quiet.stderr });
  t.notMatch(quiet.stderr, /Encrypting|Uploading|%/, 'gc -q prints no progress');
});

t.test('upload progress over S3 counts the bytes of a multipart container as its parts land', async (t) => {
  const backend = await s3Backend();
  const sb = new Sandbox(t, backend.env);
  const store = await backend.newStore(sb, 'progress');
  const src = sb.repo('src');
  // Random bytes do not compress: a 20 MiB container goes up in 8 MiB parts.
  sb.commit(src, { 'blob.bin': randomBytes(20 << 20) }, 'large');
  const loud = sb.run('git', ['push', '--progress', store.url, 'main'], { cwd: src });
  t.equal(loud.status, 0, 'push succeeded', { stderr: loud.stderr });
  t.match(loud.stderr, UPLOAD_LINE, 'push --progress over S3 shows the bytes uploaded and the rate');
  const sizes = [...loud.stderr.matchAll(/Uploading: (\d+\.\d\d) MiB/g)].map((m) => Number(m[1]));
  t.ok(sizes.length > 0 && sizes[sizes.length - 1] >= 20, `the last figure covers the whole container (${sizes.join(', ')} MiB)`);
  sb.commit(src, { 'small.txt': 'small\n' }, 'small');
  const quiet = sb.run('git', ['push', '-q', store.url, 'main'], { cwd: src });
  t.equal(quiet.stderr, '', 'push -q over S3 prints nothing at all');
});

t.test('sizes are written the way git writes them', async (t) => {
  t.equal(humaniseBytes(0), '0 bytes');
  t.equal(humaniseBytes(1023), '1023 bytes');
  t.equal(humaniseBytes(1024), '1.00 KiB');
  t.equal(humaniseBytes(12.3 * 1024 * 1024), '12.30 MiB');
  t.equal(humaniseBytes(3 * 1024 ** 3), '3.00 GiB');
});
