import t from 'tap';
import { readFileSync } from 'node:fs';
import { Sandbox } from './support/sandbox';

const LINE = /^([0-9a-f-]{36})  (arn:aws:kms:local:000000000000:key\/\1)  (Enabled|Disabled|PendingDeletion)  (\S+)$/;

function parseLines(stdout: string): { keyId: string; arn: string; state: string; aliases: string }[] {
  return stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = LINE.exec(line);
      if (!m) throw new Error(`not a key line: ${line}`);
      return { keyId: m[1], arn: m[2], state: m[3], aliases: m[4] };
    });
}

t.test('keys create and keys list on the local keyring', async (t) => {
  const sb = new Sandbox(t);
  t.equal(sb.run('git', ['kmscrypt', 'keys', 'list']).stdout, '', 'no keyring yet: no keys');

  const created = sb.run('git', ['kmscrypt', 'keys', 'create', '--alias', 'team', '--description', 'team repositories']);
  const [key] = parseLines(created.stdout);
  t.match(key, { state: 'Enabled', aliases: 'alias/team' }, 'one line: ID, ARN, state, aliases');
  t.match(created.stderr, `kmscrypt: created key ${key.keyId} in ${sb.env.KMSCRYPT_KEYRING}; back the keyring up. Use it with: git config kmscrypt.keyId ${key.keyId}`);

  const plain = parseLines(sb.run('git', ['kmscrypt', 'keys', 'create']).stdout)[0];
  t.equal(plain.aliases, '-', 'a key without an alias');
  const listed = parseLines(sb.run('git', ['kmscrypt', 'keys', 'list']).stdout);
  t.same(listed.map((k) => [k.keyId, k.aliases]), [[key.keyId, 'alias/team'], [plain.keyId, '-']], 'list shows both, in creation order');

  const json = JSON.parse(sb.run('git', ['kmscrypt', 'keys', 'list', '--json']).stdout) as { keyring: string; keys: { keyId: string; description: string; aliases: string[] }[] };
  t.equal(json.keyring, sb.env.KMSCRYPT_KEYRING);
  t.match(json.keys[0], { keyId: key.keyId, description: 'team repositories', aliases: ['alias/team'] });

  const before = readFileSync(sb.env.KMSCRYPT_KEYRING!);
  for (const [label, args, pattern, status] of [
    ['an alias in use', ['--alias', 'alias/team'], new RegExp(`^fatal: kmscrypt: alias/team already names key ${key.keyId} in keyring .*; choose another alias$`), 128],
    ['an alias with a space', ['--alias', 'my team'], /^fatal: kmscrypt: keys create: --alias "my team" is not an alias name/, 129],
    ['a reserved alias', ['--alias', 'aws/s3'], /^fatal: kmscrypt: keys create: alias names that begin with alias\/aws\/ are reserved/, 129],
    ['an unknown option', ['--colour'], /^fatal: kmscrypt: keys: unknown option --colour; see 'git kmscrypt keys --help'$/, 129],
  ] as const) {
    const r = sb.run('git', ['kmscrypt', 'keys', 'create', ...args], { expectFailure: true });
    const lines = r.stderr.split('\n').filter(Boolean);
    t.equal(lines.length, 1, `${label}: one line`);
    t.match(lines[0], pattern, label);
    t.equal(r.status, status, `${label}: exit ${status}, as git's`);
  }
  t.same(readFileSync(sb.env.KMSCRYPT_KEYRING!), before, 'refused creates left the keyring as it was');
  t.match(sb.run('git', ['kmscrypt', 'keys'], { expectFailure: true }).stderr, /missing action; use 'git kmscrypt keys create' or 'git kmscrypt keys list'/);

  const other = sb.path('elsewhere', 'keyring.json');
  parseLines(sb.run('git', ['kmscrypt', 'keys', 'create', '--keyring', other]).stdout);
  t.equal(parseLines(sb.run('git', ['kmscrypt', 'keys', 'list'], { env: { KMSCRYPT_KEYRING: other } }).stdout).length, 1, '--keyring and KMSCRYPT_KEYRING name the same file');
  t.equal(parseLines(sb.run('git', ['-c', `kmscrypt.keyring=${other}`, 'kmscrypt', 'keys', 'list'], { env: { KMSCRYPT_KEYRING: '' } }).stdout).length, 1, 'so does kmscrypt.keyring');
});

t.test('a second key to rotate a repository to', async (t) => {
  const sb = new Sandbox(t);
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'one\n' }, 'first');
  const store = `kmscrypt::${sb.path('store')}`;
  sb.run('git', ['push', '-q', store, 'main'], { cwd: src });
  const [defaultKey] = parseLines(sb.run('git', ['kmscrypt', 'keys', 'list']).stdout);
  t.equal(defaultKey.aliases, 'alias/kmscrypt', 'the first push made the default key');

  const [next] = parseLines(sb.run('git', ['kmscrypt', 'keys', 'create', '--alias', 'next']).stdout);
  sb.run('git', ['kmscrypt', 'rotate-key', store, '--to', 'alias/next']);
  // A command outside any clone trusts only the keys it is told of (kmscrypt.keyId), as a fresh clone does.
  const info = JSON.parse(sb.run('git', ['-c', `kmscrypt.keyId=${next.keyId}`, 'kmscrypt', 'info', store, '--json']).stdout) as { key: { arn: string } };
  t.equal(info.key.arn, next.arn, 'the repository is now under the new key');
  sb.run('git', ['clone', '-q', '-c', `kmscrypt.keyId=${next.keyId}`, store, sb.path('clone')]);
  t.equal(readFileSync(sb.path('clone', 'a.txt'), 'utf8'), 'one\n', 'a clone reads it');
});

t.test('help', async (t) => {
  const sb = new Sandbox(t);
  const help = sb.run('git', ['kmscrypt', 'keys', '--help']).stdout;
  t.match(help, /^usage: git kmscrypt keys create \[--alias <name>\] \[--description <text>\] \[--keyring <path>\] \[--json\] \| list \[--keyring <path>\] \[--json\]\n/);
  t.match(sb.run('git', ['kmscrypt', 'help']).stdout, /^ {2}keys {8}create and list the master keys of the local keyring/m);
});
