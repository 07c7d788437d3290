import { chmodSync, copyFileSync, cpSync } from 'node:fs';
import { join } from 'node:path';
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
  t.match(sb.git(sb.root, 'ls-remote', url), new RegExp(`\\trefs/tags/v1\\n${target}\\trefs/tags/v1\\^\\{\\}\\n`), 'the push recorded the target it peeled locally');
});
