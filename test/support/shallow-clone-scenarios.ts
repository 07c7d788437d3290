/**
 * Shallow clones and fetches with stock git over a kmscrypt store (a local directory or S3), each
 * compared in the same test with plain git against a bare repository holding the same history: .git/shallow,
 * `rev-parse --is-shallow-repository`, `git log --all` with parents, the objects and the refs
 * must be the same.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Test } from 'tap';
import { scenarioSandbox, type ScenarioBackend } from './git-scenarios';
import { PlainGitTwin } from './plain-git-twin';
import { Sandbox } from './sandbox';

/** A commit at a fixed time (seconds since the epoch), so that --shallow-since has something to cut. */
function commitAt(sb: Sandbox, repo: string, time: number, files: Record<string, string>, message: string): string {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(repo, name)), { recursive: true });
    writeFileSync(join(repo, name), content);
  }
  const env = { GIT_COMMITTER_DATE: `${time} +0000`, GIT_AUTHOR_DATE: `${time} +0000` };
  sb.run('git', ['add', '-A'], { cwd: repo });
  sb.run('git', ['commit', '-q', '-m', message], { cwd: repo, env });
  return sb.git(repo, 'rev-parse', 'HEAD').trim();
}

const DAY = 86400;
const T0 = 1_600_000_000;

/**
 * main: c1 … c6 with a merge of a side branch (s1, s2, forked at c2) as c5; tag v1 (annotated)
 * on c3, tag light on c2; a big file changed in old commits only.
 */
async function history(t: Test, backend: ScenarioBackend): Promise<PlainGitTwin> {
  const twin = await PlainGitTwin.create(t, backend);
  const { sb, src } = twin;
  commitAt(sb, src, T0, { 'README.md': '# project\n', 'src/a.c': 'int a;\n', 'assets/big.bin': 'x'.repeat(200_000) }, 'c1');
  commitAt(sb, src, T0 + DAY, { 'src/a.c': 'int a = 2;\n', 'assets/big.bin': 'y'.repeat(200_000) }, 'c2');
  sb.git(src, 'tag', 'light');
  sb.git(src, 'branch', 'side');
  commitAt(sb, src, T0 + 2 * DAY, { 'src/b.c': 'int b;\n' }, 'c3');
  sb.run('git', ['tag', '-a', 'v1', '-m', 'version one'], { cwd: src, env: { GIT_COMMITTER_DATE: `${T0 + 2 * DAY} +0000` } });
  commitAt(sb, src, T0 + 3 * DAY, { 'src/b.c': 'int b = 4;\n' }, 'c4');
  sb.git(src, 'checkout', '-q', 'side');
  commitAt(sb, src, T0 + 2 * DAY + 100, { 'side.txt': 'one\n' }, 's1');
  commitAt(sb, src, T0 + 3 * DAY + 100, { 'side.txt': 'two\n' }, 's2');
  sb.git(src, 'checkout', '-q', 'main');
  sb.run('git', ['merge', '-q', '--no-ff', '-m', 'c5 merge side', 'side'], {
    cwd: src,
    env: { GIT_COMMITTER_DATE: `${T0 + 4 * DAY} +0000`, GIT_AUTHOR_DATE: `${T0 + 4 * DAY} +0000` },
  });
  commitAt(sb, src, T0 + 5 * DAY, { 'src/a.c': 'int a = 6;\n' }, 'c6');
  twin.pushAll();
  return twin;
}

/**
 * git before 2.44 does not see, within the fetch, the pack a remote helper stored, so a tag that
 * points into history the fetch just deepened is only created by the next fetch (git's bug, fixed
 * by fba732c4 "transport-helper: re-examine object dir after fetching"; the tag object itself
 * arrives with the deepening fetch). One more plain fetch in both clones, then the refs must agree.
 */
function tagsFollow(twin: PlainGitTwin, clones: [string, string]): void {
  twin.inBoth(clones, 'fetch', '-q');
}

/** Each case against `backend`, compared with plain git against a bare repository. */
export function shallowCloneScenarios(t: Test, backend: ScenarioBackend): void {
  t.test('clone --depth 1: one commit, shallow, the work tree of HEAD', async (t) => {
    const twin = await history(t, backend);
    const clones = twin.cloneBoth('d1', '--depth', '1');
    twin.compare(t, clones, 'depth 1');
    t.equal(twin.sb.git(clones[0], 'rev-parse', '--is-shallow-repository').trim(), 'true');
    t.equal(twin.sb.git(clones[0], 'rev-list', '--count', 'HEAD').trim(), '1');
    t.equal(readFileSync(join(clones[0], 'src/a.c'), 'utf8'), 'int a = 6;\n', 'work tree checked out');
    twin.sb.git(clones[0], 'fsck', '--no-dangling');
  });

  t.test('clone --depth 3 through a merge: the boundary on both sides of it', async (t) => {
    const twin = await history(t, backend);
    const clones = twin.cloneBoth('d3', '--depth', '3');
    twin.compare(t, clones, 'depth 3');
    t.equal(twin.shallowFile(clones[0]).trim().split('\n').length, 2, 'two shallow commits: c4 and s2');
    const all = twin.cloneBoth('d3all', '--depth', '3', '--no-single-branch');
    twin.compare(t, all, 'depth 3, every branch');
  });

  t.test('fetch --deepen, then --depth, then --unshallow', async (t) => {
    const twin = await history(t, backend);
    const clones = twin.cloneBoth('deep', '--depth', '1');
    twin.inBoth(clones, 'fetch', '-q', '--deepen=2');
    twin.compare(t, clones, 'after --deepen=2');
    twin.inBoth(clones, 'fetch', '-q', '--depth=4');
    tagsFollow(twin, clones);
    twin.compare(t, clones, 'after --depth=4');
    twin.inBoth(clones, 'fetch', '-q', '--unshallow');
    tagsFollow(twin, clones);
    twin.compare(t, clones, 'after --unshallow');
    t.equal(twin.sb.git(clones[0], 'rev-parse', '--is-shallow-repository').trim(), 'false');
    twin.sb.git(clones[0], 'fsck', '--no-dangling');
  });

  t.test('clone --shallow-since and fetch --shallow-since', async (t) => {
    const twin = await history(t, backend);
    const since = new Date((T0 + 3 * DAY) * 1000).toISOString();
    const clones = twin.cloneBoth('since', `--shallow-since=${since}`);
    twin.compare(t, clones, '--shallow-since');
    t.notMatch(twin.sb.git(clones[0], 'log', '--format=%s'), /\bc3\b/, 'older commits are not there');
    twin.inBoth(clones, 'fetch', '-q', `--shallow-since=${new Date((T0 + DAY) * 1000).toISOString()}`);
    tagsFollow(twin, clones);
    twin.compare(t, clones, 'deepened by --shallow-since');
    const fail = twin.sb.run('git', ['clone', '--shallow-since=2000-01-01', '--depth=1', twin.store.url, twin.sb.path('both')], { expectFailure: true });
    t.match(
      fail.stderr,
      /fatal: kmscrypt: --depth cannot be combined with --shallow-since/,
      'depth and since together are refused, as upload-pack refuses them',
    );
  });

  t.test('clone --shallow-exclude', async (t) => {
    const twin = await history(t, backend);
    const clones = twin.cloneBoth('exclude', '--shallow-exclude=v1');
    twin.compare(t, clones, '--shallow-exclude=v1');
    const fail = twin.sb.run('git', ['clone', '--shallow-exclude=nosuchref', twin.store.url, twin.sb.path('bad')], { expectFailure: true });
    t.match(fail.stderr, /--shallow-exclude=nosuchref names no ref of the remote/);
  });

  t.test('a fetch and a pull after a new push keep the clone shallow', async (t) => {
    const twin = await history(t, backend);
    const clones = twin.cloneBoth('keep', '--depth', '2');
    const before = twin.shallowFile(clones[0]);
    commitAt(twin.sb, twin.src, T0 + 6 * DAY, { 'src/c.c': 'int c;\n' }, 'c7');
    commitAt(twin.sb, twin.src, T0 + 7 * DAY, { 'src/c.c': 'int c = 8;\n' }, 'c8');
    twin.pushAll();
    twin.inBoth(clones, 'fetch', '-q');
    twin.compare(t, clones, 'fetch after a push');
    t.equal(twin.shallowFile(clones[0]), before, 'the shallow boundary did not move');
    t.equal(twin.sb.git(clones[0], 'rev-list', '--count', 'origin/main').trim(), '4', 'two old commits and the two new ones');

    commitAt(twin.sb, twin.src, T0 + 8 * DAY, { 'src/c.c': 'int c = 9;\n' }, 'c9');
    twin.pushAll();
    twin.inBoth(clones, 'pull', '-q', '--ff-only');
    twin.compare(t, clones, 'pull after a push');
    t.equal(readFileSync(join(clones[0], 'src/c.c'), 'utf8'), 'int c = 9;\n', 'pull updated the work tree');
  });

  t.test('push from a shallow clone: onto the history the store has; never a shallow root into a store', async (t) => {
    const twin = await history(t, backend);
    const [k] = twin.cloneBoth('pusher', '--depth', '1');
    commitAt(twin.sb, k, T0 + 9 * DAY, { 'from-shallow.txt': 'hello\n' }, 'from a shallow clone');
    twin.sb.git(k, 'push', '-q', 'origin', 'main');
    twin.sb.git(twin.src, 'pull', '-q', '--ff-only', 'kms', 'main');
    t.equal(readFileSync(join(twin.src, 'from-shallow.txt'), 'utf8'), 'hello\n', 'the full clone got the commit');
    twin.sb.git(twin.src, 'fsck', '--no-dangling');

    const empty = await backend.newStore(twin.sb, 'empty-store');
    const refused = twin.sb.run('git', ['push', empty.url, 'main'], { cwd: k, expectFailure: true });
    t.match(refused.stderr, /\[remote rejected\] main -> main \(shallow update not allowed\)/);
    const plainEmpty = twin.sb.path('plain-empty.git');
    twin.sb.run('git', ['init', '-q', '--bare', plainEmpty]);
    const plainRefused = twin.sb.run('git', ['push', `file://${plainEmpty}`, 'main'], { cwd: k, expectFailure: true });
    t.match(plainRefused.stderr, /shallow update not allowed/, 'as plain git refuses it');
  });

  t.test('a SHA-256 repository: --depth 1 with --filter=blob:none, checked out', async (t) => {
    const sb = scenarioSandbox(t, backend);
    const twin = new PlainGitTwin(sb, await backend.newStore(sb, 'store'), sb.repo('src', { objectFormat: 'sha256' }), 'plain.git', 'sha256');
    const { src } = twin;
    commitAt(sb, src, T0, { 'a.txt': 'one\n', 'dir/b.txt': 'two\n' }, 'first');
    commitAt(sb, src, T0 + DAY, { 'a.txt': 'three\n' }, 'second');
    twin.pushAll();
    const clones = twin.cloneBoth('sha256', '--depth', '1', '--filter=blob:none');
    twin.compare(t, clones, 'sha256, depth 1, blob:none');
    t.equal(readFileSync(join(clones[0], 'a.txt'), 'utf8'), 'three\n');
  });
}
