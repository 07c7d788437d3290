import t from 'tap';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { withLocalKms } from './support/local-kms-sandbox';
import { Sandbox } from './support/sandbox';
import { localStore } from './support/store-access';

interface Info {
  url: string;
  repositoryId: string;
  objectFormat: string;
  createdAt: string;
  key: { arn: string; aliases: string[]; state?: string };
  containerKeys: Record<string, number>;
  generation: number;
  manifestsStored: number;
  refs: number;
  head: string | null;
  containers: number;
  unlistedContainers: number;
  bytes: { total: number; containers: number; manifests: number; descriptor: number };
  cloudTrail: string | null;
}

function fatalLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
}

t.test('info over the local store and keyring: counts, bytes, key and creation time', async (t) => {
  const sb = new Sandbox(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'one\n' }, 'first');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  sb.git(src, 'push', '-q', 'origin', 'main');
  sb.commit(src, { 'b.txt': 'two\n' }, 'second');
  sb.git(src, 'tag', '-a', 'v1', '-m', 'one');
  sb.git(src, 'push', '-q', 'origin', 'main', 'v1');

  const info = JSON.parse(sb.run('git', ['kmscrypt', 'info', 'origin', '--json'], { cwd: src }).stdout) as Info;
  const descriptor = JSON.parse(await fs.readFile(join(sb.path('store'), 'kmscrypt.json'), 'utf8')) as { repositoryId: string; createdAt: string };
  t.equal(info.repositoryId, descriptor.repositoryId, 'repository ID from the descriptor');
  t.equal(info.createdAt, descriptor.createdAt, 'created time from the descriptor');
  t.equal(info.objectFormat, 'sha1');
  t.equal(info.generation, 2, 'two pushes, two manifests');
  t.equal(info.manifestsStored, 2);
  t.equal(info.refs, 2, 'main and v1');
  t.equal(info.head, 'refs/heads/main');
  const keys = await store.keys();
  t.equal(info.containers, keys.filter((k) => k.startsWith('containers/')).length, 'one container per push');
  t.equal(info.unlistedContainers, 0);
  let total = 0;
  for (const k of keys) total += (await fs.stat(join(sb.path('store'), k))).size;
  t.equal(info.bytes.total, total, 'stored bytes are the sum of everything in the store');
  t.equal(info.bytes.containers + info.bytes.manifests + info.bytes.descriptor, total);
  t.match(info.key.arn, /^arn:aws:kms:local:000000000000:key\/[0-9a-f-]{36}$/);
  t.same(info.key.aliases, ['alias/kmscrypt'], 'aliases from DescribeKey');
  t.equal(info.key.state, 'Enabled');
  t.same(info.containerKeys, { [info.key.arn]: 2 }, 'every data key under the repository key');
  t.equal(info.cloudTrail, null, 'the local keyring has no CloudTrail');

  const text = sb.run('git', ['kmscrypt', 'info', store.url]).stdout;
  t.match(text, new RegExp(`^repository +${info.repositoryId}$`, 'm'));
  t.match(text, /^manifest +generation 2 \(2 stored\)$/m);
  t.match(text, /^refs +2, HEAD -> refs\/heads\/main$/m);
  t.match(text, new RegExp(`^stored bytes +${total} \\(`, 'm'));
  t.match(text, /^key +arn:aws:kms:local:\S+ \(alias\/kmscrypt\), Enabled$/m);
  t.match(text, /^CloudTrail +not applicable/m);

  for (const target of [sb.path('store'), `file://${sb.path('store')}`, store.url]) {
    const other = JSON.parse(sb.run('git', ['kmscrypt', 'info', target, '--json']).stdout) as Info;
    t.equal(other.repositoryId, info.repositoryId, `the same repository through ${target}`);
  }
});

t.test('info with AWS KMS prints the CloudTrail query for the repository ID', async (t) => {
  const { sb } = await withLocalKms(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'one\n' }, 'first');
  await sb.runAsync(['git', 'push', '-q', store.url, 'main'], { cwd: src });
  const info = JSON.parse((await sb.runAsync(['git', 'kmscrypt', 'info', store.url, '--json'])).stdout) as Info;
  t.match(info.key.arn, /^arn:aws:kms:us-east-1:111122223333:key\//);
  t.ok(info.cloudTrail, 'a CloudTrail command');
  t.match(info.cloudTrail!, `aws cloudtrail lookup-events --region us-east-1 --lookup-attributes AttributeKey=ResourceName,AttributeValue=${info.key.arn}`);
  t.match(info.cloudTrail!, `.requestParameters.encryptionContext`);
  t.match(info.cloudTrail!, `["kmscrypt:repository-id"] == "${info.repositoryId}"`);
  const text = (await sb.runAsync(['git', 'kmscrypt', 'info', store.url])).stdout;
  t.match(text, /^CloudTrail +aws cloudtrail lookup-events /m);
});

t.test('info fails with one line for a missing repository, a non-kmscrypt remote or a missing argument', async (t) => {
  const sb = new Sandbox(t);
  const missing = sb.run('git', ['kmscrypt', 'info', `kmscrypt::${sb.path('nothing')}`], { expectFailure: true });
  t.equal(fatalLines(missing.stderr).length, 1);
  t.match(missing.stderr, /no kmscrypt repository at file:\/\/.*nothing; check the URL, or push to it to create one/);
  t.equal(missing.status, 128, "a fatal error: exit 128, as git's die");

  const src = sb.repo('src');
  sb.git(src, 'remote', 'add', 'plain', sb.path('elsewhere.git'));
  const plain = sb.run('git', ['kmscrypt', 'info', 'plain'], { cwd: src, expectFailure: true });
  t.equal(fatalLines(plain.stderr).length, 1);
  t.match(plain.stderr, /remote plain is not a kmscrypt remote/);

  const none = sb.run('git', ['kmscrypt', 'info'], { expectFailure: true });
  t.equal(none.status, 129, 'a usage error: exit 129, as git');
  t.match(none.stderr, /missing <remote-or-url>/);
  const unknown = sb.run('git', ['kmscrypt', 'info', 'x', '--to', 'y'], { expectFailure: true });
  t.match(unknown.stderr, /unknown option --to; see 'git kmscrypt info --help'/);
  t.equal(unknown.status, 129, 'an unknown option: exit 129, as git');
  t.match(sb.run('git', ['kmscrypt', 'info', '--help']).stdout, /^usage: git kmscrypt info <remote-or-url> \[--json\]/);
});
