/**
 * Repositories written in format version 1 (test/fixtures/format-v1, made by the release before
 * version 2) stay readable, take pushes of the version written now (3), and read back whole with
 * both versions mixed; gc then rewrites them into one version 3 container. Stock git against the
 * real helper.
 */
import t from 'tap';
import { chmodSync, copyFileSync, cpSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Sandbox } from './support/sandbox';
import { localStore } from './support/store-access';

const FIXTURE = join(__dirname, 'fixtures', 'format-v1');

/** The version byte of a stored container or manifest (docs/FORMAT.md §6.1, §7.1). */
const versionOf = (bytes: Buffer | undefined) => bytes?.[4];

t.test('a version 1 repository is cloned, takes version 3 pushes, fetches and gc across both', async (t) => {
  const sb = new Sandbox(t);
  // The fixture itself is never written to; git does not keep the keyring's 0600 mode.
  cpSync(join(FIXTURE, 'store'), sb.path('store'), { recursive: true });
  copyFileSync(join(FIXTURE, 'keyring.json'), sb.env.KMSCRYPT_KEYRING!);
  chmodSync(sb.env.KMSCRYPT_KEYRING!, 0o600);
  const store = localStore(sb.path('store'));
  const expected = new Map(
    readFileSync(join(FIXTURE, 'refs.txt'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(' ').reverse() as [string, string]),
  );

  const v1Keys = await store.keys();
  const sealedV1 = v1Keys.filter((k) => k.startsWith('manifests/') || k.startsWith('containers/'));
  t.equal(sealedV1.length, 4, 'the fixture holds two manifests and two containers');
  for (const k of sealedV1) t.equal(versionOf(await store.read(k)), 1, `${k} is version 1`);

  const mirror = sb.path('mirror.git');
  sb.run('git', ['clone', '-q', '--mirror', store.url, mirror]);
  t.same(sb.refs(mirror), expected, 'a mirror clone has every ref of the version 1 repository');
  sb.git(mirror, 'fsck', '--strict', '--no-dangling');
  const first = sb.path('first');
  sb.run('git', ['clone', '-q', store.url, first]);
  t.equal(readFileSync(join(first, 'README'), 'utf8'), 'readme 3\n', 'files as committed');

  const second = sb.path('second');
  sb.run('git', ['clone', '-q', store.url, second]);
  const commit = sb.commit(second, { 'README': 'readme 4, pushed by version 3\n', 'notes.txt': 'rewritten\n'.repeat(500) }, 'version 3 commit');
  sb.git(second, 'push', '-q', 'origin', 'main');
  const newKeys = (await store.keys()).filter((k) => !v1Keys.includes(k));
  t.equal(newKeys.length, 2, 'the push added one container and one manifest');
  for (const k of newKeys) t.equal(versionOf(await store.read(k)), 3, `${k} is version 3`);

  sb.git(first, 'pull', '-q', '--ff-only');
  t.equal(sb.git(first, 'rev-parse', 'HEAD').trim(), commit, 'a version 1 clone fetches a version 3 push');
  sb.git(first, 'fsck', '--strict', '--no-dangling');
  const mixed = sb.path('mixed.git');
  sb.run('git', ['clone', '-q', '--mirror', store.url, mixed]);
  t.same(sb.refs(mixed), new Map([...expected, ['refs/heads/main', commit]]), 'a fresh clone reads both versions together');
  sb.git(mixed, 'fsck', '--strict', '--no-dangling');
  const verify = JSON.parse(sb.run('git', ['kmscrypt', 'verify', store.url, '--json']).stdout) as { ok: boolean };
  t.equal(verify.ok, true, 'git kmscrypt verify finds nothing wrong');

  sb.run('git', ['kmscrypt', 'gc', store.url, '--grace', '0', '--json']);
  const left = (await store.keys()).filter((k) => k.startsWith('containers/'));
  t.equal(left.length, 1, 'gc leaves one container');
  t.equal(versionOf(await store.read(left[0])), 3, 'and it is version 3');
  const after = sb.path('after.git');
  sb.run('git', ['clone', '-q', '--mirror', store.url, after]);
  t.same(sb.refs(after), sb.refs(mixed), 'a clone after gc has every ref');
  sb.git(after, 'fsck', '--strict', '--no-dangling');
});
