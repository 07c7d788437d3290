/**
 * Nothing the helper runs may make git fetch lazily from the promisor remote (the helper itself):
 * a fetch in a partial clone used to loop through ever more helpers and hang. Each git command
 * here runs under a time limit (a hang guard, not a performance figure: the limit is minutes) and
 * KMSCRYPT_STATS counts the helper processes it started.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import t, { type Test } from 'tap';
import { Sandbox } from './support/sandbox';
import { localStore } from './support/store-access';

const LIMIT_MS = 180_000;

/** Runs git with a time limit; the test fails (rather than hangs) if git does not finish. */
function gitWithin(sb: Sandbox, cwd: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync('git', args, { cwd, env: { ...sb.env, ...env }, timeout: LIMIT_MS, killSignal: 'SIGKILL', encoding: 'utf8' });
  return { finished: r.signal === null && r.error === undefined, status: r.status, stderr: r.stderr ?? '' };
}

async function bloblessClone(t: Test) {
  const sb = new Sandbox(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'one\n', 'dir/b.txt': 'two\n' }, 'first');
  sb.commit(src, { 'a.txt': 'three\n' }, 'second');
  sb.git(src, 'push', '-q', store.url, 'main');
  const clone = sb.path('clone');
  sb.run('git', ['clone', '-q', '--filter=blob:none', store.url, clone]);
  sb.commit(src, { 'a.txt': 'four\n', 'c.txt': 'five\n' }, 'third');
  sb.git(src, 'push', '-q', store.url, 'main');
  return { sb, store, src, clone };
}

t.test('a fetch in a blobless clone finishes, and starts exactly one helper (no lazy fetch from inside it)', async (t) => {
  const { sb, clone, src } = await bloblessClone(t);
  const stats = sb.path('stats.jsonl');
  writeFileSync(stats, '');
  const fetch = gitWithin(sb, clone, ['fetch', 'origin'], { KMSCRYPT_STATS: stats });
  t.ok(fetch.finished, 'git fetch finished within the limit');
  t.equal(fetch.status, 0, fetch.stderr);
  t.equal(readFileSync(stats, 'utf8').split('\n').filter(Boolean).length, 1, 'one helper process');
  t.equal(sb.git(clone, 'rev-parse', 'origin/main').trim(), sb.git(src, 'rev-parse', 'HEAD').trim());

  writeFileSync(stats, '');
  const pull = gitWithin(sb, clone, ['pull', '-q', '--ff-only'], { KMSCRYPT_STATS: stats });
  t.ok(pull.finished && pull.status === 0, `git pull finished: ${pull.stderr}`);
  t.equal(readFileSync(stats, 'utf8').split('\n').filter(Boolean).length, 2, 'the fetch, then one lazy fetch of the blobs the checkout needs');
  t.equal(readFileSync(`${clone}/c.txt`, 'utf8'), 'five\n');
});

t.test('a push from a blobless clone finishes', async (t) => {
  const { sb, clone } = await bloblessClone(t);
  t.equal(gitWithin(sb, clone, ['pull', '-q', '--ff-only']).status, 0);
  sb.commit(clone, { 'd.txt': 'six\n' }, 'fourth');
  const push = gitWithin(sb, clone, ['push', '-q', 'origin', 'main']);
  t.ok(push.finished && push.status === 0, `git push finished: ${push.stderr}`);
});

t.test('a helper started by a git command another helper ran refuses at once (git older than 2.39.4 has no GIT_NO_LAZY_FETCH)', async (t) => {
  const { sb, clone } = await bloblessClone(t);
  // What the helper sets for everything it runs; a helper that finds it set is a lazy fetch from inside one.
  const nested = gitWithin(sb, clone, ['fetch', 'origin'], { KMSCRYPT_HELPER_PID: '4242' });
  t.ok(nested.finished, 'finished within the limit');
  t.not(nested.status, 0);
  t.match(nested.stderr, /fatal: kmscrypt: refusing a lazy fetch started by a git command that git-remote-kmscrypt \(pid 4242\) ran itself/);
});
