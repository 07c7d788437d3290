import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Test } from 'tap';
import { scenarioSandbox, type ScenarioBackend } from './git-scenarios';
import { RunResult, Sandbox } from './sandbox';
import { localStore, StoreAccess } from './store-access';

/** One remote of a comparison: a plain bare repository, or a kmscrypt store; `store` sees its bytes. */
interface Remote {
  kind: 'plain' | 'kmscrypt';
  url: string;
  store: StoreAccess;
}

/** Identical commits and tags in both runs: the same IDs, so git's reports can be compared line by line. */
const FIXED_DATES = { GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z', GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z' };

/**
 * git's own semantics, compared: each scenario runs the same git commands against a plain bare
 * repository and against a kmscrypt remote, in one test, and compares what a user checks: exit
 * statuses, git's report lines and the refs the remote ends with.
 */
export function semanticsScenarios(t: Test, backend: ScenarioBackend): void {
  const world = (tt: Test) => {
    const sb = scenarioSandbox(tt, backend, FIXED_DATES);
    let made = 0;
    /** A new location of the kind given; a plain one is an empty bare repository. */
    const newRemote = async (kind: Remote['kind']): Promise<Remote> => {
      const name = `${kind}-${made++}`;
      if (kind === 'kmscrypt') {
        const store = await backend.newStore(sb, name);
        return { kind, url: store.url, store };
      }
      const bare = sb.path(`${name}.git`);
      sb.run('git', ['init', '-q', '--bare', bare]);
      return { kind, url: bare, store: localStore(bare) };
    };
    /** Runs `scenario` against a bare repository, then against a kmscrypt store, each with its own directories. */
    const compare = async <T>(scenario: (remote: Remote, dir: (name: string) => string) => Promise<T> | T) => ({
      plain: await scenario(await newRemote('plain'), (name) => sb.path(`${name}-plain`)),
      kmscrypt: await scenario(await newRemote('kmscrypt'), (name) => sb.path(`${name}-kmscrypt`)),
    });
    return { sb, newRemote, compare };
  };

  t.test('git push --mirror succeeds on every run, as to a bare repository (nightly mirror backups)', async (tt) => {
    const { sb, compare } = world(tt);
    const seen = await compare((remote, dir) => {
      const src = sb.repo(dir('src'));
      sb.commit(src, { 'a.txt': 'a\n' }, 'first');
      sb.git(src, 'branch', 'feature');
      sb.git(src, 'tag', '-a', 'v1', '-m', 'one');
      sb.git(src, 'tag', 'light');
      const runs = [attempt(sb, src, ['push', '--mirror', remote.url]), attempt(sb, src, ['push', '--mirror', remote.url])];
      // The next night: a new commit, a deleted branch, a new tag.
      sb.commit(src, { 'b.txt': 'b\n' }, 'second');
      sb.git(src, 'branch', '-D', 'feature');
      sb.git(src, 'tag', '-a', 'v2', '-m', 'two');
      runs.push(attempt(sb, src, ['push', '--mirror', remote.url]), attempt(sb, src, ['push', '--mirror', remote.url]));
      return { statuses: runs.map((r) => r.status), reports: runs.map((r) => pushReport(r, remote.url)), refs: lsRemote(sb, remote.url) };
    });
    tt.same(seen.plain.statuses, [0, 0, 0, 0], 'with a bare repository every run exits 0');
    tt.same(seen.kmscrypt, seen.plain, 'the same exit statuses, push reports and remote refs');
  });

  t.test("--force-with-lease: a lease that holds overwrites, a stale one is refused in git's words", async (tt) => {
    const { sb, compare } = world(tt);
    const seen = await compare((remote, dir) => {
      const alice = sb.repo(dir('alice'));
      sb.git(alice, 'remote', 'add', 'origin', remote.url);
      sb.commit(alice, { 'a.txt': 'a\n' }, 'A');
      sb.git(alice, 'push', '-q', 'origin', 'main');
      sb.run('git', ['clone', '-q', remote.url, dir('bob')]);
      const bob = dir('bob');
      const b = sb.commit(bob, { 'b.txt': 'b\n' }, 'B');
      sb.git(bob, 'push', '-q', 'origin', 'main');
      sb.git(alice, 'fetch', '-q', 'origin');
      const c = sb.commit(alice, { 'c.txt': 'c\n' }, 'C');
      const runs = [
        // Diverged: refused without a lease, accepted with the bare form after the fetch.
        attempt(sb, alice, ['push', 'origin', 'main']),
        attempt(sb, alice, ['push', '--force-with-lease', 'origin', 'main']),
      ];
      // Bob's view of main (B) is stale now.
      const d = sb.commit(bob, { 'd.txt': 'd\n' }, 'D');
      runs.push(
        attempt(sb, bob, ['push', '--force-with-lease', 'origin', 'main']),
        attempt(sb, bob, ['push', `--force-with-lease=main:${b}`, 'origin', 'main']),
        attempt(sb, bob, ['push', `--force-with-lease=main:${c}`, 'origin', 'main']),
      );
      const afterExplicit = lsRemote(sb, remote.url);
      // The same lease, with --force-if-includes, whose check git makes itself.
      sb.git(alice, 'fetch', '-q', 'origin');
      sb.git(alice, 'reset', '-q', '--hard', 'origin/main');
      sb.commit(alice, { 'e.txt': 'e\n' }, 'E');
      runs.push(attempt(sb, alice, ['push', '--force-with-lease', '--force-if-includes', 'origin', `HEAD~1:main`]));
      return { statuses: runs.map((r) => r.status), reports: runs.map((r) => pushReport(r, remote.url)), afterExplicit, refs: lsRemote(sb, remote.url), d };
    });
    tt.same(seen.plain.statuses, [1, 0, 1, 1, 0, 0], 'plain git: refused, leased, stale, stale, leased, leased');
    tt.match(seen.plain.reports[2], /! \[rejected\] +main -> main \(stale info\)/, 'plain git names the stale lease');
    tt.match(seen.kmscrypt.afterExplicit, new RegExp(`^${seen.kmscrypt.d}\trefs/heads/main$`, 'm'), 'the explicit lease with the current value overwrote main');
    tt.same(seen.kmscrypt, seen.plain, 'the same exit statuses, push reports and remote refs');
  });

  t.test('a lease is checked again when the helper publishes: a push that landed after git listed the refs is not overwritten', async (tt) => {
    const { sb, compare } = world(tt);
    const seen = await compare((remote, dir) => {
      const alice = sb.repo(dir('alice'));
      sb.git(alice, 'remote', 'add', 'origin', remote.url);
      sb.commit(alice, { 'a.txt': 'a\n' }, 'A');
      sb.git(alice, 'push', '-q', 'origin', 'main');
      sb.run('git', ['clone', '-q', remote.url, dir('bob')]);
      sb.git(alice, 'fetch', '-q', 'origin');
      sb.commit(alice, { 'c.txt': 'c\n' }, 'C');
      // git runs pre-push after it listed the remote's refs and checked the lease against them,
      // and before it hands the update over: Bob's push lands in between.
      writeFileSync(
        `${alice}/.git/hooks/pre-push`,
        `#!/bin/sh\nunset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\ncd '${dir('bob')}' && echo b > b.txt && git add b.txt && git commit -q -m B && git push -q origin main\n`,
        { mode: 0o755 },
      );
      const raced = attempt(sb, alice, ['push', '--force-with-lease', 'origin', 'main']);
      return { status: raced.status, report: raced.stderr, refs: lsRemote(sb, remote.url), bob: sb.git(dir('bob'), 'rev-parse', 'HEAD').trim() };
    });
    for (const kind of ['plain', 'kmscrypt'] as const) {
      tt.equal(seen[kind].status, 1, `${kind}: the push fails`);
      tt.match(seen[kind].refs, new RegExp(`^${seen[kind].bob}\trefs/heads/main$`, 'm'), `${kind}: Bob's commit stays`);
    }
    // receive-pack finds the ref moved when it takes the lock ("failed to update ref"); the helper
    // finds the lease broken when it publishes, and says so in git's words for a broken lease.
    tt.match(seen.plain.report, /! \[remote rejected\] main -> main \(failed to update ref\)/);
    tt.match(seen.kmscrypt.report, /! \[rejected\] +main -> main \(stale info\)/);
  });

  t.test('git ls-remote shows each annotated tag peeled (<tag>^{}) right after it, as a bare repository does', async (tt) => {
    const { sb, compare } = world(tt);
    const seen = await compare((remote, dir) => {
      const src = sb.repo(dir('src'));
      sb.git(src, 'remote', 'add', 'origin', remote.url);
      sb.commit(src, { 'a.txt': 'a\n' }, 'A');
      sb.git(src, 'tag', '-a', 'v1', '-m', 'one');
      sb.git(src, 'tag', 'light');
      sb.git(src, 'tag', '-a', 'tree-tag', '-m', 'a tree', 'HEAD^{tree}');
      sb.commit(src, { 'b.txt': 'b\n' }, 'B');
      sb.git(src, 'tag', '-a', 'v2', '-m', 'two');
      sb.run('git', ['-c', 'advice.nestedTag=false', 'tag', '-a', 'v2-signed-off', '-m', 'a tag of a tag', 'v2'], { cwd: src });
      sb.git(src, 'push', '-q', 'origin', 'main', '--tags');
      const first = lsRemote(sb, remote.url);
      // A moved tag gets its new target; a deleted one takes its peeled line with it.
      sb.git(src, 'tag', '-f', '-a', 'v1', '-m', 'one again', 'HEAD');
      sb.git(src, 'push', '-q', '--force', 'origin', 'v1', ':refs/tags/v2-signed-off');
      const clone = dir('clone');
      sb.run('git', ['clone', '-q', remote.url, clone]);
      return {
        first,
        second: lsRemote(sb, remote.url),
        cloneTags: sb.git(clone, 'for-each-ref', '--format=%(refname) %(objecttype) %(*objectname)', 'refs/tags'),
      };
    });
    tt.match(seen.plain.first, /\trefs\/tags\/v1\n[0-9a-f]{40}\trefs\/tags\/v1\^\{\}\n/, 'plain git: the peeled line follows its tag');
    tt.same(seen.kmscrypt, seen.plain, 'the same listing, before and after a tag moved and one was deleted; clones get the same tags');
  });

  t.test('deleting the branch HEAD points at is refused, with --force and --mirror too, as receive-pack does by default', async (tt) => {
    const { sb, compare } = world(tt);
    const seen = await compare((remote, dir) => {
      const src = sb.repo(dir('src'));
      sb.commit(src, { 'a.txt': 'a\n' }, 'A');
      sb.git(src, 'branch', 'other');
      sb.git(src, 'push', '-q', remote.url, 'main', 'other');
      const runs = [attempt(sb, src, ['push', remote.url, '--delete', 'main']), attempt(sb, src, ['push', '--force', remote.url, ':main'])];
      // Atomically with another update: that one fails too, in receive-pack's words.
      runs.push(attempt(sb, src, ['push', '--atomic', remote.url, ':main', 'main:refs/heads/side']));
      // A mirror of a repository whose main was renamed: the rest of the mirror push goes through.
      sb.git(src, 'branch', '-m', 'main', 'renamed');
      runs.push(attempt(sb, src, ['push', '--mirror', remote.url]));
      sb.git(src, 'branch', '-m', 'renamed', 'main');
      // Another branch is deleted as usual; deleting a ref that is not there succeeds (with a warning), atomically too.
      runs.push(attempt(sb, src, ['push', remote.url, '--delete', 'other']));
      runs.push(
        attempt(sb, src, ['push', remote.url, ':refs/heads/never']),
        attempt(sb, src, ['push', '--atomic', remote.url, 'main:refs/heads/new', ':refs/heads/never']),
      );
      const clone = dir('clone');
      sb.run('git', ['clone', '-q', remote.url, clone]);
      return {
        statuses: runs.map((r) => r.status),
        reports: runs.map((r) => pushReport(r, remote.url)),
        refs: lsRemote(sb, remote.url),
        cloneBranch: sb.git(clone, 'symbolic-ref', 'HEAD').trim(),
        explained: runs.map(
          (r) =>
            r.stderr.split('\n').filter((l) => /^error: kmscrypt: refusing to delete the current branch refs\/heads\/main\b.*git kmscrypt set-head/.test(l))
              .length,
        ),
      };
    });
    tt.same(seen.plain.statuses, [1, 1, 1, 1, 0, 0, 0], 'plain git: four refusals, then deletions');
    tt.match(seen.plain.reports[0], /! \[remote rejected\] main \(deletion of the current branch prohibited\)/);
    tt.match(seen.plain.reports[2], /! \[remote rejected\] main -> side \(atomic push failure\)/, "plain git: the atomic push's other update");
    tt.match(seen.plain.reports[6], / - \[deleted\] +never/, 'plain git: deleting a missing ref is reported as done');
    tt.same(seen.kmscrypt.explained, [1, 1, 1, 1, 0, 0, 0], 'kmscrypt explains each refusal in one line, naming the way out');
    tt.same(
      { ...seen.kmscrypt, explained: undefined },
      { ...seen.plain, explained: undefined },
      'the same statuses, reports, remote refs, and a clone on main',
    );
  });

  t.test('git kmscrypt set-head points HEAD elsewhere; then the old branch can be deleted and clones check out the new one', async (tt) => {
    const { sb, newRemote } = world(tt);
    const remote = await newRemote('kmscrypt');
    const src = sb.repo('src');
    sb.commit(src, { 'a.txt': 'a\n' }, 'A');
    sb.git(src, 'branch', 'trunk');
    sb.git(src, 'remote', 'add', 'origin', remote.url);
    sb.git(src, 'push', '-q', 'origin', 'main', 'trunk');
    const missing = sb.run('git', ['kmscrypt', 'set-head', 'origin', 'nope'], { cwd: src, expectFailure: true });
    tt.equal(missing.stderr, `fatal: kmscrypt: ${remote.url.slice('kmscrypt::'.length)} has no branch nope; push it first, or choose one of: main, trunk\n`);
    tt.equal(missing.status, 128);
    sb.run('git', ['kmscrypt', 'set-head', 'origin', 'trunk'], { cwd: src });
    tt.match(lsRemote(sb, remote.url), /^([0-9a-f]+)\tHEAD\n\1\trefs\/heads\/main\n/, 'ls-remote still lists HEAD');
    sb.git(src, 'push', '-q', 'origin', '--delete', 'main');
    sb.run('git', ['clone', '-q', remote.url, sb.path('clone')]);
    tt.equal(sb.git(sb.path('clone'), 'symbolic-ref', 'HEAD').trim(), 'refs/heads/trunk', 'a clone checks out the new HEAD');
    const again = sb.run('git', ['kmscrypt', 'set-head', 'origin', 'trunk', '--json'], { cwd: src });
    tt.same(
      JSON.parse(again.stdout),
      {
        repositoryId: JSON.parse(sb.run('git', ['kmscrypt', 'info', 'origin', '--json'], { cwd: src }).stdout).repositoryId,
        previous: 'refs/heads/trunk',
        head: 'refs/heads/trunk',
        generation: null,
      },
      'setting it again publishes nothing',
    );
  });

  t.test('a SHA-256 repository pushing to or fetching from a SHA-1 one: one clear line, no rejection or hint about fetching', async (tt) => {
    const { sb, compare } = world(tt);
    const seen = await compare((remote, dir) => {
      const sha1 = sb.repo(dir('sha1'));
      sb.commit(sha1, { 'a.txt': 'a\n' }, 'A');
      sb.git(sha1, 'push', '-q', remote.url, 'main');
      const sha256 = sb.repo(dir('sha256'), { objectFormat: 'sha256' });
      sb.commit(sha256, { 'b.txt': 'b\n' }, 'B');
      const push = attempt(sb, sha256, ['push', remote.url, 'main']);
      const dry = attempt(sb, sha256, ['push', '--dry-run', remote.url, 'main']);
      const fetch = attempt(sb, sha256, ['fetch', remote.url, 'main']);
      return { push, dry, fetch, refs: lsRemote(sb, remote.url), local: sb.git(sha256, 'for-each-ref') };
    });
    for (const step of ['push', 'dry', 'fetch'] as const) {
      const plain = seen.plain[step];
      const mine = seen.kmscrypt[step];
      tt.equal(mine.status, plain.status, `${step}: exit status ${plain.status}, as plain git's`);
      tt.match(plain.stderr, /^fatal: /m, `${step}: plain git stops with a fatal line`);
      tt.same(mine.stderr.split('\n').filter(Boolean), [mine.stderr.trim()], `${step}: kmscrypt prints exactly one line`);
      tt.match(
        mine.stderr,
        /^fatal: kmscrypt: \S+ holds sha1 objects but this repository uses sha256; git cannot push or fetch between the two formats/,
        `${step}: naming both formats`,
      );
      tt.notMatch(mine.stderr, /rejected|hint:|fetch first/, `${step}: nothing about fetching first`);
    }
    tt.equal(seen.kmscrypt.refs.split('\n')[0].split('\t')[0].length, 40, 'the remote still holds its SHA-1 refs');
    tt.same(
      [seen.kmscrypt.refs.split('\n').length, seen.kmscrypt.local],
      [seen.plain.refs.split('\n').length, seen.plain.local],
      'nothing changed on either side',
    );
  });

  t.test('a clone of an empty repository checks out the branch its HEAD names, as plain git does; the first push keeps it', async (tt) => {
    const { sb, newRemote } = world(tt);
    const plain = sb.path('empty-plain.git');
    sb.run('git', ['init', '-q', '--bare', '--initial-branch=trunk', plain]);
    const crypt = await newRemote('kmscrypt');
    sb.run('git', ['kmscrypt', 'init', '--initial-branch', 'trunk', crypt.url]);
    const observe = (url: string, kind: string) => {
      // The cloner's own default branch is another one: only the remote's HEAD can give trunk.
      const clone = sb.path(`clone-${kind}`);
      const r = sb.run('git', ['-c', 'init.defaultBranch=master', 'clone', url, clone]);
      const bare = sb.path(`bare-${kind}.git`);
      sb.run('git', ['-c', 'init.defaultBranch=master', 'clone', '-q', '--bare', url, bare]);
      const seen = {
        warning: r.stderr.includes('warning: You appear to have cloned an empty repository.'),
        head: sb.git(clone, 'symbolic-ref', 'HEAD').trim(),
        upstream: sb.git(clone, 'config', '--get-regexp', '^branch\\.'),
        bareHead: sb.git(bare, 'symbolic-ref', 'HEAD').trim(),
      };
      sb.commit(clone, { 'a.txt': 'a\n' }, 'first');
      const push = attempt(sb, clone, ['push']);
      sb.run('git', ['clone', '-q', url, sb.path(`second-${kind}`)]);
      return { ...seen, pushed: push.status, refs: lsRemote(sb, url), second: sb.git(sb.path(`second-${kind}`), 'symbolic-ref', 'HEAD').trim() };
    };
    const seenPlain = observe(plain, 'plain');
    const seenCrypt = observe(crypt.url, 'kmscrypt');
    tt.same(seenPlain.head, 'refs/heads/trunk', 'plain git: the clone is on trunk');
    tt.same(seenPlain.upstream, 'branch.trunk.remote origin\nbranch.trunk.merge refs/heads/trunk\n', 'plain git: trunk tracks origin/trunk');
    tt.same(seenCrypt, seenPlain, 'the same HEAD, upstream, bare HEAD; a plain git push then creates trunk, which the next clone checks out');
  });

  t.test("a fetch follows only the tags whose targets it fetched, and brings the same objects as git's own transport", async (tt) => {
    const { sb, compare } = world(tt);
    const seen = await compare((remote, dir) => {
      // git's local clone copies every object; file:// goes through upload-pack, as any server does.
      const url = remote.kind === 'plain' ? `file://${remote.url}` : remote.url;
      const src = sb.repo(dir('src'));
      sb.commit(src, { 'a.txt': 'a\n' }, 'A');
      sb.git(src, 'push', '-q', url, 'main');
      const clone = dir('clone');
      sb.run('git', ['clone', '-q', url, clone]);
      // Tags on a commit no branch holds, and a tag on the branch, pushed together.
      sb.git(src, 'checkout', '-q', '-b', 'tmp');
      sb.commit(src, { 'orphan.txt': 'orphan\n' }, 'orphan');
      sb.git(src, 'tag', '-a', 'v-orphan', '-m', 'orphan');
      sb.git(src, 'tag', 'light-orphan');
      sb.git(src, 'checkout', '-q', 'main');
      sb.git(src, 'branch', '-q', '-D', 'tmp');
      sb.commit(src, { 'b.txt': 'b\n' }, 'B');
      sb.git(src, 'tag', '-a', 'v-main', '-m', 'on main');
      sb.git(src, 'push', '-q', url, 'main', 'v-orphan', 'light-orphan', 'v-main');
      const view = (repo: string) => ({ refs: [...sb.refs(repo).keys()], objects: sb.objects(repo) });
      const fetched = attempt(sb, clone, ['fetch', 'origin']);
      const afterFetch = view(clone);
      sb.git(clone, 'fsck', '--strict', '--no-dangling');
      const single = dir('single');
      sb.run('git', ['clone', '-q', '--single-branch', url, single]);
      const afterSingle = view(single);
      sb.git(clone, 'fetch', '-q', '--tags', 'origin');
      // The report's ref lines; its "From <url>" line names the transport (plain git drops ".git").
      const report = fetched.stderr.split('\n').filter((l) => !l.startsWith('From '));
      return { fetched: fetched.status, report, afterFetch, afterSingle, afterTags: view(clone) };
    });
    tt.same(seen.plain.afterFetch.refs, ['refs/heads/main', 'refs/tags/v-main'], 'plain git: only the tag on the fetched branch');
    tt.same(
      seen.plain.afterTags.refs,
      ['refs/heads/main', 'refs/tags/light-orphan', 'refs/tags/v-main', 'refs/tags/v-orphan'],
      'plain git: --tags brings the others',
    );
    tt.same(seen.kmscrypt, seen.plain, 'the same report, refs and objects after a fetch, a --single-branch clone and a fetch --tags');
  });

  t.test('an object two pushes both stored reaches a clone once, and a branch takes only commits, as with a bare repository', async (tt) => {
    const { sb, compare } = world(tt);
    const seen = await compare((remote, dir) => {
      const src = sb.repo(dir('src'));
      sb.commit(src, { 'a.txt': 'a\n' }, 'A');
      sb.git(src, 'push', '-q', remote.url, 'main');
      // The same file committed on two branches by two clones: each push stores its blob.
      for (const who of ['one', 'two']) {
        const clone = dir(who);
        sb.run('git', ['clone', '-q', remote.url, clone]);
        sb.git(clone, 'checkout', '-q', '-b', who);
        sb.commit(clone, { 'same.txt': 'the same content\n' }, `same file on ${who}`);
        sb.git(clone, 'push', '-q', 'origin', who);
      }
      // A tag of a tree the first push stored: the push sends the tree's objects again.
      sb.git(src, 'tag', '-a', 'tree-tag', '-m', 'a tree', 'HEAD^{tree}');
      sb.git(src, 'tag', '-a', 'v1', '-m', 'one');
      const runs = [attempt(sb, src, ['push', remote.url, 'tree-tag', 'v1']), attempt(sb, src, ['push', remote.url, 'v1:refs/heads/from-tag'])];
      const clone = dir('clone');
      const cloned = attempt(sb, sb.root, ['clone', '-q', remote.url, clone]);
      return {
        statuses: runs.map((r) => r.status),
        reports: runs.map((r) => pushReport(r, remote.url)),
        refused: runs[1].stderr.includes(`cannot update ref 'refs/heads/from-tag': trying to write non-commit object`),
        refs: lsRemote(sb, remote.url),
        clone: cloned.status,
        cloneRefs: cloned.status === 0 ? sb.git(clone, 'for-each-ref', '--format=%(objectname) %(refname)') : cloned.stderr,
        fsck: cloned.status === 0 ? attempt(sb, clone, ['fsck', '--strict', '--no-dangling']).status : -1,
      };
    });
    tt.same(seen.plain.statuses, [0, 1], 'plain git: the tags are pushed, a tag is refused as a branch');
    tt.match(seen.plain.reports[1], /! \[remote rejected\] v1 -> from-tag \(failed to update ref\)/);
    tt.same([seen.plain.clone, seen.plain.fsck, seen.plain.refused], [0, 0, true], 'plain git: the clone works and is whole');
    tt.same(seen.kmscrypt, seen.plain, 'the same statuses, reports, remote refs, and a whole clone with the same refs');
  });

  t.test('--dry-run writes nothing to the store, prints what git would do, and creates no repository', async (tt) => {
    const { sb, compare, newRemote } = world(tt);
    const statsFile = sb.path('stats.jsonl');
    const env = { KMSCRYPT_STATS: statsFile };
    const seen = await compare(async (remote, dir) => {
      const src = sb.repo(dir('src'));
      sb.git(src, 'remote', 'add', 'origin', remote.url);
      sb.commit(src, { 'a.txt': 'a\n' }, 'A');
      sb.git(src, 'branch', 'old');
      sb.git(src, 'push', '-q', 'origin', 'main', 'old');
      sb.commit(src, { 'b.txt': 'b\n' }, 'B');
      sb.git(src, 'tag', '-a', 'v1', '-m', 'one');
      const refsBefore = lsRemote(sb, remote.url);
      const before = await storeState(remote.store);
      writeFileSync(statsFile, '');
      const runs = [
        attempt(sb, src, ['push', '--dry-run', '--follow-tags', 'origin', 'main', 'main:topic', ':old'], env),
        attempt(sb, src, ['push', '--dry-run', '--force', 'origin', 'HEAD:old'], env),
      ];
      const after = await storeState(remote.store);
      // A location that holds nothing yet: git says what it would create, and nothing is created.
      const fresh = await newRemote(remote.kind);
      const freshBefore = await storeState(fresh.store);
      runs.push(attempt(sb, src, ['push', '--dry-run', fresh.url, 'main'], env));
      const freshAfter = await storeState(fresh.store);
      return {
        statuses: runs.map((r) => r.status),
        reports: runs.map((r, i) => pushReport(r, i < 2 ? remote.url : fresh.url)),
        storeUnchanged: before === after && before !== '',
        freshUnchanged: freshBefore === freshAfter,
        refsUnchanged: lsRemote(sb, remote.url) === refsBefore,
        // An empty bare repository lists nothing; the kmscrypt location still holds no key at all.
        freshHolds: remote.kind === 'plain' ? lsRemote(sb, fresh.url) : (await fresh.store.keys()).join('\n'),
      };
    });
    tt.same(seen.plain.statuses, [0, 0, 0], 'plain git: every dry run exits 0');
    tt.match(seen.plain.reports[0], / \* \[new branch\] +main -> topic/, 'plain git reports the branch it would create');
    tt.match(seen.plain.reports[0], / - \[deleted\] +old/, 'and the branch it would delete');
    tt.same(seen.kmscrypt, seen.plain, 'the same statuses and reports; nothing changed on either remote');
    const stats = readFileSync(statsFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { storage: Record<string, number>; kms: Record<string, number> });
    tt.equal(stats.length, 3, 'three helper runs');
    for (const s of stats) {
      tt.same(
        { put: s.storage.put, delete: s.storage.delete ?? 0, uploads: s.storage.createMultipart ?? 0 },
        { put: 0, delete: 0, uploads: 0 },
        'no write, delete or upload request',
      );
      tt.equal(s.kms.generateDataKey, 0, 'no data key asked for');
    }
  });
}

/** Runs git and returns its result, whatever its exit status. */
function attempt(sb: Sandbox, cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): RunResult {
  const r = spawnSync('git', args, { cwd, env: { ...sb.env, ...env }, encoding: 'utf8', maxBuffer: 64 << 20 });
  return { status: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/**
 * What git's push report says, the transport aside: the ref lines, the summary, up-to-date and
 * failure lines, with the URL replaced. Lines from the other end (`remote:`), hints and
 * kmscrypt's own notices are left out.
 */
function pushReport(r: RunResult, url: string): string {
  return r.stderr
    .split('\n')
    .map((l) => l.split(url).join('<remote>'))
    .filter((l) => /^To <remote>$|^ [ +\-*=!] |^Everything up-to-date|^error: failed to push/.test(l))
    .join('\n');
}

/** `git ls-remote <url>`: what the remote holds, as any user looks at it. */
function lsRemote(sb: Sandbox, url: string): string {
  return sb.run('git', ['ls-remote', url]).stdout;
}

/** Every file or key of a store with a hash of its bytes, one per line; '' when it holds nothing. */
async function storeState(store: StoreAccess): Promise<string> {
  const lines: string[] = [];
  for (const key of await store.keys())
    lines.push(
      `${key} ${createHash('sha256')
        .update(await store.read(key))
        .digest('hex')}`,
    );
  return lines.join('\n');
}
