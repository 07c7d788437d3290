import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import type * as CodeCacheModule from '../src/code-cache';
import { s3Backend } from './support/s3-backend';
import { Sandbox } from './support/sandbox';

// From dist/, as every helper loads it: tap then merges the coverage of this test and of the
// helpers into the same statements of src/code-cache.ts (src/ through tsx maps them differently).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { useCodeCache } = require('../dist/code-cache.js') as typeof CodeCacheModule;

/**
 * The V8 code cache of the helper's modules (src/code-cache.ts, issue 16): a module compiled from
 * cached code behaves as compiled from its source, and code that may be stale or that someone else
 * could have written is never run.
 */

/** A package of two modules, and a cache directory, in a fresh temporary directory. */
function fixture(t: Test) {
  const root = mkdtempSync(join(tmpdir(), 'kmscrypt-code-cache-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const pkg = join(root, 'pkg');
  mkdirSync(join(pkg, 'dist'), { recursive: true });
  writeFileSync(join(pkg, 'dist', 'main.js'), "'use strict';\nexports.answer = require('./double').double(21);\n");
  writeFileSync(join(pkg, 'dist', 'double.js'), "'use strict';\nexports.double = (n) => n * 2;\n");
  const env: NodeJS.ProcessEnv = { XDG_CACHE_HOME: join(root, 'cache'), HOME: join(root, 'home') };
  const directory = join(root, 'cache', 'git-remote-kmscrypt');
  /** One "process": the cache installed, the package's main module loaded afresh, Node's compilation put back. */
  const run = (runEnv: NodeJS.ProcessEnv = env, execArgv: string[] = []) => {
    const cache = useCodeCache(pkg, runEnv, execArgv);
    const load = createRequire(join(pkg, 'index.js'));
    try {
      for (const name of ['main.js', 'double.js']) delete load.cache[join(pkg, 'dist', name)];
      const answer = (load('./dist/main.js') as { answer: number }).answer;
      return { answer, cache, saved: cache?.saveIfIncomplete() ?? false };
    } finally {
      cache?.uninstall();
    }
  };
  const cacheFile = () => join(directory, readdirSync(directory)[0]);
  return { pkg, env, directory, run, cacheFile };
}

t.test('the second run compiles every module from the cache, with the same result', async (t) => {
  const f = fixture(t);
  const first = f.run();
  t.equal(first.answer, 42);
  t.match(first.cache, { compiled: 2, fromCache: 0 }, 'the first run compiles from source');
  t.equal(first.saved, true, 'and writes the cache');
  t.equal(statSync(f.directory).mode & 0o777, 0o700, 'the cache directory is private');
  t.equal(statSync(f.cacheFile()).mode & 0o777, 0o600, 'the cache file is private');
  t.same(readdirSync(f.directory).length, 1, 'no temporary file is left');

  const second = f.run();
  t.equal(second.answer, 42);
  t.match(second.cache, { compiled: 2, fromCache: 2 }, 'the second run compiles both modules from the cache');
  t.equal(second.saved, false, 'a complete cache is not written again');
});

t.test('a module whose source changed, even to the same length, is compiled from its source', async (t) => {
  const f = fixture(t);
  f.run();
  writeFileSync(join(f.pkg, 'dist', 'double.js'), "'use strict';\nexports.double = (n) => n * 3;\n");
  const after = f.run();
  t.equal(after.answer, 63, 'the new source runs, not the cached code of the old one');
  t.match(after.cache, { compiled: 2, fromCache: 1 }, 'only the unchanged module comes from the cache');
  t.equal(after.saved, true, 'the cache is written again with the new code');
  t.match(f.run().cache, { fromCache: 2 });
});

t.test('a damaged or truncated cache file is ignored, then written anew', async (t) => {
  const f = fixture(t);
  f.run();
  const bytes = readFileSync(f.cacheFile());
  const damaged = Buffer.from(bytes);
  damaged[damaged.length - 10] ^= 0x55;
  for (const [what, content] of [
    ['a changed byte', damaged],
    ['a truncated file', bytes.subarray(0, bytes.length - 100)],
    ['another format', Buffer.concat([Buffer.from('kmscrypt code cache 9\n'), bytes.subarray(22)])],
  ] as const) {
    writeFileSync(f.cacheFile(), content);
    const run = f.run();
    t.equal(run.answer, 42, `${what}: the modules still load`);
    t.match(run.cache, { compiled: 2, fromCache: 0 }, `${what}: nothing comes from the cache`);
    t.equal(run.saved, true, `${what}: the cache is written anew`);
    t.match(f.run().cache, { fromCache: 2 }, `${what}: and used again`);
  }
});

t.test('a temporary file left by a helper killed while it wrote the cache is removed by the next write', async (t) => {
  const f = fixture(t);
  f.run();
  const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
  const left = `${f.cacheFile()}.${dead}.tmp`;
  const writing = `${f.cacheFile()}.${process.ppid}.tmp`;
  writeFileSync(left, 'half a cache');
  writeFileSync(writing, 'being written');
  writeFileSync(join(f.pkg, 'dist', 'double.js'), "'use strict';\nexports.double = (n) => n + n;\n");
  t.equal(f.run().saved, true);
  t.notOk(existsSync(left), "the dead process's temporary file is removed");
  t.ok(existsSync(writing), "a live process's is left alone");
});

t.test('a cache that someone else could have written is not used', async (t) => {
  const f = fixture(t);
  f.run();
  chmodSync(f.cacheFile(), 0o666);
  t.match(f.run().cache, { fromCache: 0 }, 'a cache file writable by others is not read');
  t.equal(statSync(f.cacheFile()).mode & 0o777, 0o600, 'the file written in its place is private');

  const elsewhere = join(f.directory, '..', 'planted.bin');
  writeFileSync(elsewhere, readFileSync(f.cacheFile()));
  const name = f.cacheFile();
  rmSync(name);
  symlinkSync(elsewhere, name);
  t.match(f.run().cache, { fromCache: 0 }, 'a cache file that is a symbolic link is not read');

  chmodSync(f.directory, 0o777);
  t.equal(f.run().cache, undefined, 'a cache directory writable by others turns the cache off');
  chmodSync(f.directory, 0o755);
  t.not(f.run().cache, undefined, 'a directory others may read but not write is used');
});

t.test("no cache directory is made in another user's directory (a HOME kept by sudo)", async (t) => {
  const f = fixture(t);
  const uid = process.getuid?.() ?? 0;
  // As root, a home given to another user; as anyone else, / (root's).
  const foreign = uid === 0 ? join(f.directory, '..', '..', 'alice') : '/';
  if (uid === 0) {
    mkdirSync(foreign);
    chownSync(foreign, 4242, 4242);
  }
  const env = { XDG_CACHE_HOME: join(foreign, '.cache') };
  const run = f.run(env);
  t.equal(run.answer, 42);
  t.equal(run.saved, false, 'nothing is saved');
  t.notOk(existsSync(join(foreign, '.cache')), 'and no directory is made there');
});

t.test('the cache is off when asked, while V8 collects coverage, and in a process with a preload', async (t) => {
  const f = fixture(t);
  for (const value of ['0', 'false', 'off']) {
    const run = f.run({ ...f.env, KMSCRYPT_CODE_CACHE: value });
    t.equal(run.answer, 42);
    t.equal(run.cache, undefined, `KMSCRYPT_CODE_CACHE=${value}`);
  }
  t.equal(f.run({ ...f.env, NODE_V8_COVERAGE: '/tmp/coverage' }).cache, undefined, 'NODE_V8_COVERAGE');
  // tap's coverage is such a preload: with the cache, every file a helper loaded was misreported.
  for (const execArgv of [['--require', '/x.js'], ['-r', '/x.js'], ['--import=tsx'], ['--experimental-loader', 'x'], ['--enable-source-maps']]) {
    t.equal(f.run(f.env, execArgv).cache, undefined, `node ${execArgv.join(' ')}`);
  }
  t.equal(f.run({ ...f.env, NODE_OPTIONS: '--max-old-space-size=512 --import=file:///x/processinfo.mjs' }).cache, undefined, 'NODE_OPTIONS with --import');
  t.equal(f.run({ ...f.env, NODE_OPTIONS: '"--import=file:///x/processinfo.mjs"' }).cache, undefined, 'NODE_OPTIONS with a quoted --import, as tap sets it');
  t.equal(f.run({ ...f.env, NODE_OPTIONS: process.env.NODE_OPTIONS }, process.execArgv).cache, undefined, "this test process's own options (tap's)");
  t.notOk(existsSync(f.directory), 'no cache directory was made');
  t.not(f.run({ ...f.env, NODE_OPTIONS: '--max-old-space-size=512' }, ['--stack-size=2000']).cache, undefined, 'other options leave it on');
  t.equal(
    f.run({ HOME: join(f.directory, '..', 'home') }).cache?.file.startsWith(join(f.directory, '..', 'home', '.cache', 'git-remote-kmscrypt')),
    true,
    'without XDG_CACHE_HOME the cache is in ~/.cache',
  );
});

/** Push, list and clone through helpers compiled from the cache: the answers of helpers compiled from source. */
async function endToEnd(t: Test, sb: Sandbox, url: string): Promise<void> {
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'one\n' }, 'one');
  const traced = { KMSCRYPT_TRACE: '1' };
  const push = sb.run('git', ['push', '-q', url, 'main'], { cwd: src, env: traced });
  t.match(
    push.stderr,
    /code cache: 0 of \d+ modules compiled from .*\/\.cache\/git-remote-kmscrypt\/v8-[0-9a-f]{8}\.bin; saved/,
    'the first helper compiles from source and saves',
  );

  const listed = sb.run('git', ['ls-remote', url], { env: traced });
  const [, fromCache, compiled] = /code cache: (\d+) of (\d+) modules compiled from/.exec(listed.stderr) ?? [];
  t.ok(Number(compiled) > 20, `the helper's modules go through the cache (${compiled})`);
  t.equal(fromCache, compiled, 'the next helper compiles all of them from the cache');
  t.equal(listed.stdout, sb.run('git', ['ls-remote', url], { env: { KMSCRYPT_CODE_CACHE: '0' } }).stdout, 'and lists the same refs as a helper without it');

  const clone = sb.path('clone');
  sb.run('git', ['clone', '-q', url, clone]);
  t.equal(readFileSync(join(clone, 'a.txt'), 'utf8'), 'one\n', 'a clone through cached code has the pushed file');
  // Each kind of operation loads some modules of its own; a run that compiled any from source saves them.
  for (const text of ['two\n', 'three\n']) {
    sb.commit(src, { 'a.txt': text }, text);
    sb.git(src, 'push', '-q', url, 'main');
    const fetched = sb.run('git', ['pull', '-q', 'origin', 'main'], { cwd: clone, env: traced });
    t.equal(readFileSync(join(clone, 'a.txt'), 'utf8'), text, 'a pull brings the new commit');
    if (text === 'three\n')
      t.match(fetched.stderr, /code cache: (\d+) of \1 modules compiled from/, 'and the second pull compiles every module from the cache');
  }
}

// Helpers without coverage: under NODE_V8_COVERAGE the cache is off.
t.test('end to end, local store: git gets the same answers from helpers compiled from the cache', async (t) => {
  const sb = new Sandbox(t).withoutCoverage();
  await endToEnd(t, sb, `kmscrypt::file://${sb.path('store')}`);
});

t.test('end to end, S3 and AWS KMS: the AWS SDK compiled from the cache', async (t) => {
  const backend = await s3Backend();
  const sb = new Sandbox(t, backend.env).withoutCoverage();
  await endToEnd(t, sb, (await backend.newStore(sb, 'code-cache')).url);
});
