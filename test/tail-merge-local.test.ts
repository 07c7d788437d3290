/**
 * Tail merging through stock git on a local store (src/remote/tail-merge.ts): what a user sees
 * after many one-commit pushes, and when the helper dies in the middle of a merge. The merge runs
 * after the push has published, so the push has landed whatever happens to the merge.
 */
import t from 'tap';
import { Sandbox } from './support/sandbox';
import { localStore } from './support/store-access';

interface Info {
  containers: number;
  unlistedContainers: number;
}

/** A repository with `origin` a new local store, and what `git kmscrypt info` says of the store. */
function pusher(t: ConstructorParameters<typeof Sandbox>[0]) {
  const sb = new Sandbox(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  const info = () => JSON.parse(sb.git(src, 'kmscrypt', 'info', 'origin', '--json')) as Info;
  return { sb, store, src, info };
}

t.test('after 40 one-commit pushes the store lists 10 containers, and clones read every commit', async (t) => {
  const { sb, store, src, info } = pusher(t);
  sb.commit(src, { 'f.txt': 'first\n' }, 'first');
  sb.git(src, 'push', '-q', 'origin', 'main');
  const upToDate = sb.path('up-to-date');
  sb.git(sb.root, 'clone', '-q', store.url, upToDate);
  for (let i = 1; i < 40; i++) {
    sb.commit(src, { 'f.txt': `push ${i}\n` }, `push ${i}`);
    sb.git(src, 'push', '-q', 'origin', 'main');
    if (i === 14) t.equal(info().containers, 15, '15 pushes: 15 containers, nothing merged yet');
    if (i === 15) t.same(info(), { ...info(), containers: 1, unlistedContainers: 16 }, 'the 16th push merged all 16 into one; the 16 stay stored until gc');
    if (i % 7 === 0) sb.git(upToDate, 'pull', '-q');
  }
  t.equal(info().containers, 10, '40 pushes: two merged containers of 16 pushes and the 8 pushes since');
  sb.git(upToDate, 'pull', '-q');
  t.equal(sb.git(upToDate, 'rev-parse', 'HEAD'), sb.git(src, 'rev-parse', 'HEAD'), 'a clone that pulled along the way is up to date');
  const fresh = sb.path('fresh');
  sb.git(sb.root, 'clone', '-q', store.url, fresh);
  t.equal(sb.git(fresh, 'rev-list', '--count', 'HEAD').trim(), '40', 'a fresh clone has all 40 commits');
  sb.git(fresh, 'fsck', '--strict');
  t.match(sb.git(src, 'kmscrypt', 'verify', 'origin'), /verify: OK/, 'verify checks every object of the merged containers');
});

t.test('a helper killed while merging: the push landed, a fresh clone reads it, the next push merges', async (t) => {
  const { sb, store, src, info } = pusher(t);
  for (let i = 0; i < 15; i++) {
    sb.commit(src, { 'f.txt': `push ${i}\n` }, `push ${i}`);
    sb.git(src, 'push', '-q', 'origin', 'main');
  }
  const sixteenth = sb.commit(src, { 'f.txt': 'the 16th\n' }, 'the 16th');
  const killed = sb.run('git', ['push', '-q', 'origin', 'main'], { cwd: src, env: { KMSCRYPT_TEST_KILL_POINT: 'merge-uploaded' }, expectFailure: true });
  t.match(killed.stderr, /test kill point merge-uploaded/, 'killed after storing the merged container, before publishing it');
  t.equal(sb.git(src, 'ls-remote', 'origin', 'refs/heads/main').split('\t')[0], sixteenth, 'the push itself had landed');
  t.same(info(), { ...info(), containers: 16, unlistedContainers: 1 }, 'nothing merged; the merged container is left unlisted, for gc');
  const fresh = sb.path('fresh');
  sb.git(sb.root, 'clone', '-q', store.url, fresh);
  t.equal(sb.git(fresh, 'rev-parse', 'HEAD').trim(), sixteenth, 'a fresh clone reads the store as the push left it');

  sb.commit(src, { 'f.txt': 'the 17th\n' }, 'the 17th');
  sb.git(src, 'push', '-q', 'origin', 'main');
  t.equal(info().containers, 2, 'the next push merged the 16 and kept its own');
  const again = sb.path('again');
  sb.git(sb.root, 'clone', '-q', store.url, again);
  t.equal(sb.git(again, 'rev-list', '--count', 'HEAD').trim(), '17');
});
