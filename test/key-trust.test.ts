import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { Keyring } from '../src/keys/keyring';
import { Sandbox } from './support/sandbox';

// Whoever can write to the store could name a KMS key of their own in it; kmscrypt must not
// read a repository under, or encrypt new pushes for, a key the user has not chosen.
t.test('a repository protected by a key the user has not chosen is refused until configured', async (t) => {
  const sb = new Sandbox(t);
  const other = new Keyring(sb.env.KMSCRYPT_KEYRING).createKey('somebody else’s key');
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  const url = `kmscrypt::file://${sb.path('store')}`;
  sb.run('git', ['-c', `kmscrypt.keyId=${other.keyId}`, 'push', '-q', url, 'main'], { cwd: src });

  const arn = `arn:aws:kms:local:000000000000:key/${other.keyId}`;
  const stats = sb.path('stats.jsonl');
  writeFileSync(stats, '');
  const refused = sb.run('git', ['clone', url, sb.path('c1')], { expectFailure: true, env: { KMSCRYPT_STATS: stats } });
  const kms = JSON.parse(readFileSync(stats, 'utf8').trim()) as { kms: Record<string, number> };
  t.equal(kms.kms.decrypt, 0, 'the clone asked the key the store names nothing (no Decrypt)');
  const lines = refused.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
  t.equal(lines.length, 1, 'one line');
  const fix = `git clone -c kmscrypt.keyId=${arn} ${url}`;
  t.match(lines[0], `protected by KMS key ${arn}, which this clone does not trust`, 'it names the key');
  t.ok(lines[0].endsWith(`; if you trust it: ${fix}`), 'and the one command that works for a clone');

  const [cmd, ...args] = fix.split(' ');
  sb.run(cmd, [...args.slice(0, -1), url, sb.path('c2')]);
  t.equal(sb.git(sb.path('c2'), 'rev-parse', 'HEAD').trim(), sb.git(src, 'rev-parse', 'HEAD').trim(), 'configured key: the clone works');
  sb.git(sb.path('c2'), 'config', '--unset', 'kmscrypt.keyId');
  sb.commit(sb.path('c2'), { 'b.txt': 'b\n' }, 'two');
  sb.git(sb.path('c2'), 'push', '-q');
  t.pass('once trusted, the clone keeps trusting the key without the setting');
});
