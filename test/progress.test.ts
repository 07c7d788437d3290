import t from 'tap';
import { Sandbox } from './support/sandbox';

// Progress goes to stderr in git's style when git asks for it (a terminal, or --progress), and
// not at all with -q; stdout stays the protocol's.
t.test('progress lines appear with --progress and not with -q', async (t) => {
  const sb = new Sandbox(t);
  const src = sb.repo('src');
  for (let i = 0; i < 3; i++) sb.commit(src, { [`f${i}.txt`]: `file ${i}\n`.repeat(50) }, `commit ${i}`);
  const url = `kmscrypt::file://${sb.path('store')}`;

  const loud = sb.run('git', ['push', '--progress', url, 'main'], { cwd: src });
  t.match(loud.stderr, /Encrypting objects: 100% \(\d+\/\d+\), done\./, 'push --progress shows encryption progress');

  sb.commit(src, { 'g.txt': 'more\n' }, 'more');
  const quiet = sb.run('git', ['push', '-q', url, 'main'], { cwd: src });
  t.equal(quiet.stderr, '', 'push -q prints nothing at all');

  const clone = sb.run('git', ['clone', '--progress', url, sb.path('c1')]);
  t.match(clone.stderr, /Receiving objects: 100%/, 'clone --progress shows git\'s own receiving progress');
  const quietClone = sb.run('git', ['clone', '-q', url, sb.path('c2')]);
  t.equal(quietClone.stderr, '', 'clone -q prints nothing');

  sb.commit(src, { 'h.txt': 'again\n' }, 'again');
  sb.git(src, 'push', '-q', url, 'main');
  const fetch = sb.run('git', ['fetch', '--progress', 'origin'], { cwd: sb.path('c1') });
  t.match(fetch.stderr, /Decrypting objects: 100% \(\d+\/\d+\), done\./, 'fetch --progress shows decryption progress');
});
