import { chmodSync, copyFileSync, cpSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import t from 'tap';
import { Sandbox } from './support/sandbox';
import { semanticsScenarios } from './support/semantics-scenarios';
import { localStore } from './support/store-access';

semanticsScenarios(t, {
  env: {},
  newStore: async (sb, name) => localStore(sb.path(name)),
});

t.test('tags pushed by a version that recorded no peeled targets get them at the next push from a clone that has them', async (t) => {
  // test/fixtures/format-v1: written by an older release, with an annotated tag v1 and no `peeled`.
  const fixture = join(__dirname, 'fixtures', 'format-v1');
  const sb = new Sandbox(t);
  cpSync(join(fixture, 'store'), sb.path('store'), { recursive: true });
  copyFileSync(join(fixture, 'keyring.json'), sb.env.KMSCRYPT_KEYRING!);
  chmodSync(sb.env.KMSCRYPT_KEYRING!, 0o600);
  const url = localStore(sb.path('store')).url;
  const before = sb.git(sb.root, 'ls-remote', url);
  t.match(before, /\trefs\/tags\/v1\n/, 'the old tag is listed');
  t.notMatch(before, /\^\{\}/, 'without a peeled line: the old manifest does not know its target');
  const clone = sb.path('clone');
  sb.run('git', ['clone', '-q', url, clone]);
  sb.commit(clone, { 'next.txt': 'next\n' }, 'a push by this version');
  sb.git(clone, 'push', '-q', 'origin', 'main');
  const target = sb.git(clone, 'rev-parse', 'v1^{}').trim();
  t.match(
    sb.git(sb.root, 'ls-remote', url),
    new RegExp(`\\trefs/tags/v1\\n${target}\\trefs/tags/v1\\^\\{\\}\\n`),
    'the push recorded the target it peeled locally',
  );
});

t.test('a clone from a relative path fetches later, from any directory: its path is stored absolute, as plain git stores it', async (t) => {
  const sb = new Sandbox(t);
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'A');
  sb.run('git', ['init', '-q', '--bare', sb.path('plain.git')]);
  sb.run('git', ['init', '-q', '--bare', sb.path('plain-empty.git')]);
  sb.git(src, 'push', '-q', sb.path('plain.git'), 'main');
  sb.git(src, 'push', '-q', `kmscrypt::${sb.path('store')}`, 'main');
  sb.run('git', ['kmscrypt', 'init', `kmscrypt::${sb.path('empty-store')}`]);
  const elsewhere = sb.path('elsewhere');
  sb.run('mkdir', [elsewhere]);
  const clones = {
    plain: { given: './plain.git', cwd: sb.root, remote: sb.path('plain.git') },
    kmscrypt: { given: 'kmscrypt::./store', cwd: sb.root, remote: `kmscrypt::${sb.path('store')}` },
    'plain, empty, from another directory': { given: '../plain-empty.git', cwd: elsewhere, remote: sb.path('plain-empty.git') },
    'kmscrypt, empty, from another directory': { given: 'kmscrypt::../empty-store', cwd: elsewhere, remote: `kmscrypt::${sb.path('empty-store')}` },
  };
  const b = sb.commit(src, { 'b.txt': 'b\n' }, 'B');
  for (const [name, c] of Object.entries(clones)) {
    const dir = sb.path(`clone ${name}`);
    sb.run('git', ['clone', '-q', c.given, dir], { cwd: c.cwd });
    // Plain git keeps the path as joined (/tmp/…/elsewhere/../plain-empty.git); kmscrypt's is normalised.
    const stored = sb.git(dir, 'config', 'remote.origin.url').trim();
    const [prefix, path] = stored.startsWith('kmscrypt::') ? ['kmscrypt::', stored.slice('kmscrypt::'.length)] : ['', stored];
    t.ok(isAbsolute(path), `${name}: remote.origin.url is an absolute path (${stored})`);
    t.equal(prefix + resolve(path), c.remote, `${name}: … of the remote it was cloned from`);
    sb.git(src, 'push', '-q', c.remote, 'main');
    sb.run('mkdir', ['-p', join(dir, 'sub', 'dir')]);
    sb.git(join(dir, 'sub', 'dir'), 'fetch', '-q', 'origin');
    t.equal(sb.git(dir, 'rev-parse', 'origin/main').trim(), b, `${name}: a fetch from a subdirectory brings the new commit`);
  }
});

t.test('a submodule at a kmscrypt:: URL needs protocol.kmscrypt.allow=always; without it git refuses in its own words', async (t) => {
  const sb = new Sandbox(t);
  const lib = sb.repo('lib');
  const libCommit = sb.commit(lib, { 'lib.c': 'int lib;\n' }, 'lib');
  const libUrl = `kmscrypt::${sb.path('lib-store')}`;
  sb.git(lib, 'push', '-q', libUrl, 'main');
  const app = sb.repo('app');
  sb.run('git', ['-c', 'protocol.kmscrypt.allow=always', 'submodule', '--quiet', 'add', libUrl, 'lib'], { cwd: app });
  sb.git(app, 'commit', '-q', '-m', 'app with lib');

  const refused = sb.run('git', ['clone', '-q', '--recurse-submodules', app, sb.path('refused')], { expectFailure: true });
  t.match(refused.stderr, /^fatal: transport 'kmscrypt' not allowed$/m, "git's own words, from its protocol.allow rule");
  t.notMatch(refused.stderr, /kmscrypt: /, 'the helper never ran');
  const allowed = sb.path('allowed');
  sb.run('git', ['-c', 'protocol.kmscrypt.allow=always', 'clone', '-q', '--recurse-submodules', app, allowed]);
  t.equal(sb.git(join(allowed, 'lib'), 'rev-parse', 'HEAD').trim(), libCommit, 'with the setting the submodule is cloned and checked out');
  // The setting as README gives it, once for the user.
  sb.run('git', ['config', '--global', 'protocol.kmscrypt.allow', 'always']);
  sb.run('git', ['clone', '-q', app, sb.path('later')]);
  sb.git(sb.path('later'), 'submodule', '--quiet', 'update', '--init');
  t.equal(readFileSync(sb.path('later', 'lib', 'lib.c'), 'utf8'), 'int lib;\n', 'git submodule update --init works with the global setting');
});
