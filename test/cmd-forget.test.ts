import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Sandbox } from './support/sandbox';

/**
 * `git kmscrypt forget` (src/cli/forget-command.ts): after a repository was deliberately removed,
 * the message names the command, the command drops what the clone remembered, and the next push
 * creates a new repository there.
 */

function fatalLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
}

function descriptorId(store: string): string {
  return (JSON.parse(readFileSync(join(store, 'kmscrypt.json'), 'utf8')) as { repositoryId: string }).repositoryId;
}

t.test('a removed store: the message names forget, forget drops it, the next push makes a new repository', async (t) => {
  const sb = new Sandbox(t);
  const store = sb.path('store');
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  sb.git(src, 'remote', 'add', 'origin', `kmscrypt::${store}`);
  sb.git(src, 'push', '-q', 'origin', 'main');
  const first = descriptorId(store);
  const stateDir = join(src, '.git', 'kmscrypt');
  t.ok(existsSync(join(stateDir, `${first}.json`)), 'the clone keeps state for the repository');

  rmSync(store, { recursive: true });
  const refused = sb.run('git', ['push', 'origin', 'main'], { cwd: src, expectFailure: true });
  t.same(
    fatalLines(refused.stderr),
    [
      `fatal: kmscrypt: repository ${first} that this clone used at file://${store} is gone from the store; if it was deliberately removed: git kmscrypt forget file://${store}`,
    ],
    'the push is refused with the one command that gets past it',
  );
  t.equal(refused.status, 128, "git's exit status when the helper fails before listing refs");
  t.notOk(existsSync(store), 'nothing was created in its place');

  // The command exactly as the message gives it.
  const forgot = sb.run('git', ['kmscrypt', 'forget', `file://${store}`], { cwd: src });
  t.equal(forgot.stdout, `Forgot repository ${first} at file://${store}\n`);
  t.equal(forgot.stderr, '');
  t.same(JSON.parse(readFileSync(join(stateDir, 'remotes.json'), 'utf8')), {}, 'remotes.json no longer names the URL');
  t.notOk(existsSync(join(stateDir, `${first}.json`)), "the repository's state (generation, trusted key) is gone too");

  sb.git(src, 'push', '-q', 'origin', 'main');
  const second = descriptorId(store);
  t.not(second, first, 'the next push created a new repository');
  const clone = sb.path('clone');
  sb.git(sb.root, 'clone', '-q', `kmscrypt::${store}`, clone);
  t.same(sb.refs(clone), sb.refs(src), 'which clones');
});

t.test('forget by remote name, by relative path, and what it refuses', async (t) => {
  const sb = new Sandbox(t);
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  sb.git(src, 'remote', 'add', 'origin', 'kmscrypt::./store');
  sb.git(src, 'remote', 'add', 'mirror', 'kmscrypt::./store');
  sb.git(src, 'push', '-q', 'origin', 'main');
  const store = join(src, 'store');
  const id = descriptorId(store);
  const stateDir = join(src, '.git', 'kmscrypt');

  const unknown = sb.run('git', ['kmscrypt', 'forget', `kmscrypt::${sb.path('elsewhere')}`], { cwd: src, expectFailure: true });
  t.same(fatalLines(unknown.stderr), [`fatal: kmscrypt: this clone remembers no repository at file://${sb.path('elsewhere')}; it remembers: file://${store}`]);
  t.equal(unknown.status, 128);

  // From a subdirectory: the remote's relative URL is anchored at the top of the work tree, as git does.
  const sub = join(src, 'sub');
  sb.run('mkdir', ['-p', sub]);
  const forgot = sb.run('git', ['kmscrypt', 'forget', 'origin'], { cwd: sub });
  t.equal(forgot.stdout, `Forgot repository ${id} at file://${store}\n`);
  t.notOk(existsSync(join(stateDir, `${id}.json`)), 'its state is removed: no other URL leads to it');
  t.notOk(existsSync(join(stateDir, `${id}.manifest.json`)), 'and the manifest it kept');
  const again = sb.run('git', ['kmscrypt', 'forget', 'mirror'], { cwd: src, expectFailure: true });
  t.same(fatalLines(again.stderr), [`fatal: kmscrypt: this clone remembers no repository at file://${store}; it remembers none`], 'forgetting twice says so');

  // The store itself is untouched: the next fetch simply accepts it again.
  t.equal(descriptorId(store), id, 'the store is untouched');
  sb.git(src, 'fetch', '-q', 'origin');
  t.same(readdirSync(stateDir).sort(), [`${id}.json`, `${id}.manifest.json`, 'remotes.json'].sort(), 'a fetch remembers it again');

  const usage = sb.run('git', ['kmscrypt', 'forget'], { cwd: src, expectFailure: true });
  t.equal(usage.status, 129, 'a missing argument is a usage error');
  t.match(usage.stderr, /missing <remote-or-url>/);
  const json = sb.run('git', ['kmscrypt', 'forget', 'origin', '--json'], { cwd: src, expectFailure: true });
  t.equal(json.status, 129, 'forget takes no --json');
  const outside = sb.run('git', ['kmscrypt', 'forget', `kmscrypt::${store}`], { cwd: sb.root, expectFailure: true });
  t.same(fatalLines(outside.stderr), [
    `fatal: kmscrypt: ${sb.root} is not in a git repository; run git kmscrypt forget inside the clone that should forget file://${store}`,
  ]);
  t.match(sb.run('git', ['kmscrypt', 'forget', '--help']).stdout, /^usage: git kmscrypt forget <remote-or-url>/);
});
