/**
 * The manifest a clone keeps (src/remote/manifest-cache.ts, docs/FORMAT.md §8.4) on a local store:
 * the helper's list takes it only while the stored manifest is the one it opened, so ls-remote and
 * a fetch with nothing new need no key; a new manifest is opened (and needs the key) again; doctor
 * opens the stored manifest every time, so its manifest row still says whether the key works.
 */
import t from 'tap';
import { renameSync } from 'node:fs';
import { Sandbox } from './support/sandbox';
import { localStore } from './support/store-access';

t.test('ls-remote and a no-op fetch use the kept manifest; a new manifest and doctor open the stored one', async (t) => {
  const sb = new Sandbox(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  const first = sb.commit(src, { 'a.txt': 'a\n' }, 'first');
  sb.git(src, 'push', '-q', store.url, 'main');
  const clone = sb.path('clone');
  sb.git(sb.root, 'clone', '-q', '--mirror', store.url, clone);

  // Without the keyring, only what this clone already opened can be listed.
  const keyring = sb.env.KMSCRYPT_KEYRING!;
  renameSync(keyring, `${keyring}.away`);
  t.equal(sb.git(clone, 'ls-remote', 'origin', 'refs/heads/main'), `${first}\trefs/heads/main\n`, 'ls-remote lists the refs of the manifest this clone opened');
  sb.git(clone, 'fetch', '-q', 'origin');
  t.pass('a fetch with nothing new needs no key either');

  const doctor = sb.run('git', ['kmscrypt', 'doctor', 'origin', '--json'], { cwd: clone, expectFailure: true });
  const manifestRow = (JSON.parse(doctor.stdout) as { checks: { name: string; status: string }[] }).checks.find((c) => c.name === 'manifest');
  t.equal(manifestRow?.status, 'FAIL', 'doctor opens the stored manifest: without the keyring it cannot');

  renameSync(`${keyring}.away`, keyring);
  const second = sb.commit(src, { 'b.txt': 'b\n' }, 'second');
  sb.git(src, 'push', '-q', store.url, 'main');
  renameSync(keyring, `${keyring}.away`);
  const refused = sb.gitFails(clone, 'ls-remote', 'origin');
  t.match(refused.stderr, /^fatal: kmscrypt: .*keyring/m, 'a new manifest must be opened, with the key');
  renameSync(`${keyring}.away`, keyring);
  t.equal(sb.git(clone, 'ls-remote', 'origin', 'refs/heads/main'), `${second}\trefs/heads/main\n`, 'with the key, the new ref is listed');
});
