import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { Sandbox } from './sandbox';
import type { StoreAccess } from './store-access';

export interface ScenarioBackend {
  /** A new, empty store location. */
  newStore(sb: Sandbox, name: string): Promise<StoreAccess>;
  /** Extra environment for git and the helper (endpoints, credentials, key provider). */
  env: NodeJS.ProcessEnv;
  /** Run the helpers without tap's coverage hook (see withoutHelperCoverage). */
  uncoveredHelpers?: boolean;
}

/**
 * The S3 twin of a scenario file whose local twin covers the same code: its helpers run without
 * tap's coverage hook (Sandbox.withoutCoverage), which more than doubles each helper's run. The
 * S3 storage and the AWS KMS provider stay covered through test/e2e-s3.test.ts and the in-process
 * S3 tests; `npm test` fits its time budget only this way.
 */
export function withoutHelperCoverage<B extends ScenarioBackend>(backend: B): B {
  return { ...backend, uncoveredHelpers: true };
}

/** The sandbox of one scenario on `backend` (more environment in `env`). */
export function scenarioSandbox(t: Test, backend: ScenarioBackend, env: NodeJS.ProcessEnv = {}): Sandbox {
  const sb = new Sandbox(t, { ...backend.env, ...env });
  return backend.uncoveredHelpers ? sb.withoutCoverage() : sb;
}

/**
 * The end-to-end scenarios of git's own t5801-remote-helpers.sh, run with stock git against one
 * backend: the helper is found on PATH through the kmscrypt:: URL prefix.
 */
export function gitScenarios(t: Test, backend: ScenarioBackend): void {
  const setup = async (tt: Test, opts: { objectFormat?: 'sha1' | 'sha256' } = {}) => {
    const sb = scenarioSandbox(tt, backend);
    const store = await backend.newStore(sb, 'store');
    const src = sb.repo('src', opts);
    sb.commit(src, { 'README.md': '# project\n', 'src/main.c': 'int main(void) { return 0; }\n' }, 'initial commit');
    sb.commit(src, { 'src/util.c': 'int util(void) { return 1; }\n' }, 'add util');
    sb.git(src, 'remote', 'add', 'origin', store.url);
    return { sb, store, src };
  };

  t.test('push --all and --tags, then a mirror clone has identical refs and objects and passes fsck --strict', async (tt) => {
    const { sb, store, src } = await setup(tt);
    sb.git(src, 'branch', 'feature');
    sb.git(src, 'tag', 'light');
    sb.git(src, 'tag', '-a', 'v1.0', '-m', 'release one');
    sb.git(src, 'push', 'origin', '--all');
    sb.git(src, 'push', 'origin', '--tags');
    const clone = sb.run('git', ['clone', '-q', '--mirror', store.url, sb.path('mirror.git')], { env: { GIT_TRANSPORT_HELPER_DEBUG: '1' } });
    // index-pack checked the pack is self-contained and connected, so git skips walking every object again.
    tt.match(clone.stderr, /-> option check-connectivity true\n[^]*<- connectivity-ok\n/, 'the clone is checked for connectivity once, by index-pack');
    tt.same(sb.refs(sb.path('mirror.git')), sb.refs(src), 'mirror has exactly the pushed refs');
    tt.same(sb.objects(sb.path('mirror.git')), sb.objects(src), 'mirror has exactly the pushed objects');
    sb.git(sb.path('mirror.git'), 'fsck', '--strict', '--no-dangling');
    tt.equal(sb.git(sb.path('mirror.git'), 'cat-file', '-t', 'v1.0').trim(), 'tag', 'annotated tag arrives as a tag object');
    const ls = sb.git(src, 'ls-remote', 'origin');
    tt.match(ls, /\tHEAD\n/, 'ls-remote shows HEAD');
    tt.match(ls, /\trefs\/tags\/v1\.0\n/, 'ls-remote shows the tag');
  });

  t.test('a normal clone checks out HEAD; incremental push, fetch and pull carry new commits', async (tt) => {
    const { sb, store, src } = await setup(tt);
    sb.git(src, 'push', '-q', 'origin', 'main');
    sb.run('git', ['clone', '-q', store.url, sb.path('clone')]);
    const clone = sb.path('clone');
    tt.equal(readFileSync(join(clone, 'src/util.c'), 'utf8'), 'int util(void) { return 1; }\n', 'work tree checked out');
    tt.equal(sb.git(clone, 'symbolic-ref', 'HEAD').trim(), 'refs/heads/main');

    const c3 = sb.commit(src, { 'src/util.c': 'int util(void) { return 2; }\n' }, 'change util');
    sb.git(src, 'push', '-q', 'origin', 'main');
    sb.git(clone, 'fetch', '-q', 'origin');
    tt.equal(sb.git(clone, 'rev-parse', 'origin/main').trim(), c3, 'fetch brings the new commit');
    sb.git(clone, 'pull', '-q', '--ff-only');
    tt.equal(readFileSync(join(clone, 'src/util.c'), 'utf8'), 'int util(void) { return 2; }\n', 'pull updates the work tree');

    const c4 = sb.commit(clone, { 'NEWS': 'from the clone\n' }, 'news from clone');
    sb.git(clone, 'push', '-q');
    sb.git(src, 'pull', '-q', '--ff-only', 'origin', 'main');
    tt.equal(sb.git(src, 'rev-parse', 'HEAD').trim(), c4, 'commits flow both ways');
    sb.git(src, 'fsck', '--strict', '--no-dangling');
  });

  t.test('a non-fast-forward push is refused; a forced push replaces the branch', async (tt) => {
    const { sb, store, src } = await setup(tt);
    sb.git(src, 'push', '-q', 'origin', 'main');
    sb.run('git', ['clone', '-q', store.url, sb.path('other')]);
    const other = sb.path('other');
    const theirs = sb.commit(other, { 'theirs.txt': 'theirs\n' }, 'their work');
    sb.git(other, 'push', '-q');
    const mine = sb.commit(src, { 'mine.txt': 'mine\n' }, 'my work');
    const refused = sb.gitFails(src, 'push', 'origin', 'main');
    tt.match(refused.stderr, /rejected/, 'git reports the push as rejected');
    tt.equal(sb.git(src, 'ls-remote', 'origin', 'refs/heads/main').split('\t')[0], theirs, 'their commit is still there');
    sb.git(src, 'push', '-q', '--force', 'origin', 'main');
    tt.equal(sb.git(src, 'ls-remote', 'origin', 'refs/heads/main').split('\t')[0], mine, 'forced push replaced the branch');
  });

  t.test('branches and tags can be deleted', async (tt) => {
    const { sb, src } = await setup(tt);
    sb.git(src, 'branch', 'topic');
    sb.git(src, 'tag', '-a', 'v2', '-m', 'two');
    sb.git(src, 'push', '-q', 'origin', 'main', 'topic', 'v2');
    sb.git(src, 'push', '-q', 'origin', '--delete', 'topic', 'v2');
    const ls = sb.git(src, 'ls-remote', 'origin');
    tt.notMatch(ls, /refs\/heads\/topic/, 'branch gone');
    tt.notMatch(ls, /refs\/tags\/v2/, 'tag gone');
    tt.match(ls, /refs\/heads\/main/, 'main kept');
  });

  t.test('cloning an empty remote works; cloning a missing remote fails with one clear line', async (tt) => {
    const sb = scenarioSandbox(tt, backend);
    const store = await backend.newStore(sb, 'empty');
    sb.run('git', ['kmscrypt', 'init', store.url]);
    const r = sb.run('git', ['clone', store.url, sb.path('empty-clone')]);
    tt.match(r.stderr, /cloned an empty repository/);
    const missing = await backend.newStore(sb, 'never-created');
    const fail = sb.run('git', ['clone', missing.url, sb.path('nope')], { expectFailure: true });
    const fatal = fail.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
    tt.equal(fatal.length, 1, 'exactly one kmscrypt line');
    tt.match(fatal[0], /no kmscrypt repository at .*; check the URL, or push to it to create one/);
    tt.notOk(existsSync(sb.path('nope', '.git', 'refs', 'heads', 'main')), 'no ref was created');
  });

  t.test('a SHA-256 repository round-trips', async (tt) => {
    const { sb, store, src } = await setup(tt, { objectFormat: 'sha256' });
    sb.git(src, 'push', '-q', 'origin', 'main');
    sb.run('git', ['clone', '-q', store.url, sb.path('clone256')]);
    tt.equal(sb.git(sb.path('clone256'), 'rev-parse', '--show-object-format').trim(), 'sha256');
    tt.equal(sb.git(sb.path('clone256'), 'rev-parse', 'HEAD').trim(), sb.git(src, 'rev-parse', 'HEAD').trim());
    sb.git(sb.path('clone256'), 'fsck', '--strict', '--no-dangling');
  });

  t.test('a 7 MiB binary file (the AES-256-CBC + HMAC path) and unicode names round-trip', async (tt) => {
    const { sb, store, src } = await setup(tt);
    const blob = randomBytes(7 << 20);
    sb.commit(src, { 'assets/model.bin': blob, 'docs/résumé-日本.txt': 'naïve café ☕\n' }, 'binaire et unicode ✓');
    sb.git(src, 'branch', 'feature/über-ß');
    sb.git(src, 'push', '-q', 'origin', 'main', 'feature/über-ß');
    sb.run('git', ['clone', '-q', store.url, sb.path('bin-clone')]);
    const clone = sb.path('bin-clone');
    tt.ok(readFileSync(join(clone, 'assets/model.bin')).equals(blob), 'large binary identical');
    tt.equal(readFileSync(join(clone, 'docs/résumé-日本.txt'), 'utf8'), 'naïve café ☕\n');
    tt.match(sb.git(clone, 'branch', '-r'), /origin\/feature\/über-ß/, 'unicode branch name');
    tt.equal(sb.git(clone, 'log', '-1', '--format=%s').trim(), 'binaire et unicode ✓');
  });

  t.test('many refs in one push', async (tt) => {
    const { sb, store, src } = await setup(tt);
    const refs = Array.from({ length: 300 }, (_, i) => `create refs/heads/b${String(i).padStart(3, '0')} HEAD`).join('\n');
    sb.run('git', ['update-ref', '--stdin'], { cwd: src, input: refs + '\n' });
    sb.git(src, 'push', '-q', 'origin', '--all');
    const ls = sb.git(src, 'ls-remote', '--heads', 'origin').split('\n').filter(Boolean);
    tt.equal(ls.length, 301, 'all 301 branches listed');
    sb.run('git', ['clone', '-q', '--mirror', store.url, sb.path('many.git')]);
    tt.same(sb.refs(sb.path('many.git')), sb.refs(src));
  });
}
