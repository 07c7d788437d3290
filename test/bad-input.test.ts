import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { PROJECT_ROOT, type RunResult, Sandbox } from './support/sandbox';

/**
 * Whatever is wrong in what the user or git hands the helper — a URL, a setting, a protocol
 * line, the keyring file — the answer is one clear `fatal: kmscrypt:` line and a non-zero exit,
 * with nothing created; and what is merely large (ref names at git's limits, 10,000 refs) works.
 */

function attempt(sb: Sandbox, cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): RunResult {
  const r = spawnSync('git', args, { cwd, env: { ...sb.env, ...env }, encoding: 'utf8', maxBuffer: 256 << 20 });
  return { status: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** Exactly one kmscrypt fatal line, matching `pattern`, no stack trace, non-zero exit. */
function oneFatal(tt: Test, r: RunResult, label: string, pattern: RegExp): string {
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
  tt.not(r.status, 0, `${label}: non-zero exit`);
  tt.equal(lines.length, 1, `${label}: exactly one kmscrypt fatal line`, { stderr: r.stderr });
  tt.match(lines[0] ?? '', pattern, `${label}: the line names the problem and the fix`, { stderr: r.stderr });
  tt.notMatch(r.stderr, /^\s+at |node:internal|TypeError|ReferenceError/m, `${label}: no stack trace`);
  return lines[0] ?? '';
}

t.test('malformed URLs: one line naming the URL and what is wrong; nothing is created', async (tt) => {
  const sb = new Sandbox(tt);
  const cases: Array<[string, RegExp]> = [
    ['kmscrypt::', /invalid kmscrypt URL "": it is empty; use kmscrypt::s3:\/\/bucket\/prefix or kmscrypt::file:\/\/\/path/],
    ['kmscrypt::s3://', /invalid kmscrypt URL "s3:\/\/": "" is not a valid S3 bucket name/],
    ['kmscrypt::UPPER_case_bucket/x', /invalid kmscrypt URL "UPPER_case_bucket\/x": "UPPER_case_bucket" is not a valid S3 bucket name \(3-63 lowercase letters, digits, dots, hyphens\); for a local directory write \.\/UPPER_case_bucket\/x or file:\/\/\/absolute\/path/],
    ['kmscrypt::ftp://x', /invalid kmscrypt URL "ftp:\/\/x": unsupported scheme ftp; use s3:\/\/ or file:\/\//],
    ['kmscrypt::file:///tmp/%zz', /invalid kmscrypt URL "file:\/\/\/tmp\/%zz": malformed percent-encoding/],
    ['kmscrypt::file:///tmp/%E0%A4%A', /malformed percent-encoding/],
    ['kmscrypt::s3://bucket-ok/p?region=%E0%A4%A', /malformed percent-encoding in "%E0%A4%A"/],
    ['kmscrypt::s3://bucket-ok/p?colour=blue', /unknown parameter "colour"; known: region, endpoint/],
    ['kmscrypt::s3://bucket-ok/p?region=', /parameter region has no value/],
    ['kmscrypt::s3://bucket-ok/a//b', /the prefix has an empty, "\." or "\.\." segment/],
    ['kmscrypt::s3://bucket-ok/../b', /the prefix has an empty, "\." or "\.\." segment/],
    ['kmscrypt::s3://bad profile@bucket-ok/p', /profile name "bad profile" is not valid/],
    ['kmscrypt::s3://ab/p', /"ab" is not a valid S3 bucket name/],
    ['kmscrypt::file://', /no path after file:\/\//],
  ];
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  for (const [url, pattern] of cases) {
    oneFatal(tt, attempt(sb, sb.root, ['ls-remote', url]), `ls-remote ${url}`, pattern);
    const dir = sb.path(`clone-${Math.random().toString(36).slice(2)}`);
    oneFatal(tt, attempt(sb, sb.root, ['clone', url, dir]), `clone ${url}`, pattern);
    tt.notOk(existsSync(dir), `clone ${url}: no directory is left behind`);
    oneFatal(tt, attempt(sb, src, ['push', url, 'main']), `push ${url}`, pattern);
  }
  // A hint must fit the URL: an s3:// URL is not a local path with a missing "./".
  const s3Hint = attempt(sb, sb.root, ['ls-remote', 'kmscrypt::s3://']).stderr;
  tt.notMatch(s3Hint, /write \.\/s3:\/\//, 'the hint for a bad s3:// URL does not suggest the local path ./s3://', { stderr: s3Hint });
});

t.test('bad settings: one line naming the setting and its valid values', async (tt) => {
  const sb = new Sandbox(tt);
  const store = sb.path('store');
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  sb.git(src, 'push', '-q', `kmscrypt::${store}`, 'main');
  const url = `kmscrypt::${store}`;
  sb.git(src, 'remote', 'add', 'origin', url);
  const cases: Array<{ label: string; args: string[]; env?: NodeJS.ProcessEnv; pattern: RegExp }> = [
    { label: 'kmscrypt.kms=gcp', args: ['-c', 'kmscrypt.kms=gcp'], pattern: /kmscrypt\.kms .*must be "local" or "aws", not "gcp"/ },
    { label: 'KMSCRYPT_KMS=gcp', args: [], env: { KMSCRYPT_KMS: 'gcp' }, pattern: /KMSCRYPT_KMS.*must be "local" or "aws", not "gcp"/ },
    { label: 'kmscrypt.allowHttp=maybe', args: ['-c', 'kmscrypt.allowHttp=maybe'], pattern: /kmscrypt\.allowHttp must be true or false, not "maybe"/i },
    { label: 'kmscrypt.allowUnsafeServer=sometimes', args: ['-c', 'kmscrypt.allowUnsafeServer=sometimes'], pattern: /kmscrypt\.allowUnsafeServer must be true or false, not "sometimes"/i },
    { label: 'kmscrypt.pathStyle=2', args: ['-c', 'kmscrypt.pathStyle=2'], pattern: /kmscrypt\.pathStyle must be true or false, not "2"/i },
    { label: 'kmscrypt.requestTimeout=soon', args: ['-c', 'kmscrypt.requestTimeout=soon'], pattern: /kmscrypt\.requestTimeout must be a number of seconds between 1 and 3600, not "soon"/i },
    { label: 'remote.origin.kmscryptAllowHttp=maybe', args: ['-c', 'remote.origin.kmscryptAllowHttp=maybe'], pattern: /: remote\.origin\.kmscryptAllowHttp must be true or false, not "maybe"$/ },
    // The line names the setting the value came from, spelled as documented.
    { label: 'remote.origin.kmscryptKms=gcp', args: ['-c', 'remote.origin.kmscryptKms=gcp'], pattern: /: remote\.origin\.kmscryptKms must be "local" or "aws", not "gcp"$/ },
  ];
  for (const c of cases) {
    oneFatal(tt, attempt(sb, src, [...c.args, 'ls-remote', 'origin'], c.env), `ls-remote with ${c.label}`, c.pattern);
    oneFatal(tt, attempt(sb, src, [...c.args, 'push', 'origin', 'main'], c.env), `push with ${c.label}`, c.pattern);
    const dir = sb.path(`clone-${Math.random().toString(36).slice(2)}`);
    oneFatal(tt, attempt(sb, sb.root, [...c.args, 'clone', url, dir], c.env), `clone with ${c.label}`, c.pattern);
    tt.notOk(existsSync(dir), `clone with ${c.label}: no directory is left behind`);
  }
  // Set through the environment, the line must name the environment variable: that is where the user must look.
  const fromEnv = attempt(sb, src, ['ls-remote', url], { KMSCRYPT_ALLOW_HTTP: 'maybe' });
  oneFatal(tt, fromEnv, 'KMSCRYPT_ALLOW_HTTP=maybe', /must be true or false, not "maybe"/);
  tt.match(fromEnv.stderr, /KMSCRYPT_ALLOW_HTTP/, 'KMSCRYPT_ALLOW_HTTP=maybe: the line names the environment variable that holds the bad value', { stderr: fromEnv.stderr });
  // Boolean words are accepted in every documented spelling.
  for (const v of ['true', 'false', 'yes', 'no', 'on', 'off', '1', '0', 'TRUE', 'Off']) {
    const r = attempt(sb, src, ['-c', `kmscrypt.allowHttp=${v}`, 'ls-remote', url]);
    tt.equal(r.status, 0, `kmscrypt.allowHttp=${v} is accepted`, { stderr: r.stderr });
  }
});

t.test('the helper protocol: an unknown or malformed line is one fatal line, after nothing more on stdout', async (tt) => {
  const sb = new Sandbox(tt);
  const store = sb.path('store');
  const src = sb.repo('src');
  const head = sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  sb.git(src, 'push', '-q', `kmscrypt::${store}`, 'main');
  const CAPS = 'fetch\npush\noption\nobject-format\ncheck-connectivity\n\n';
  const helper = (input: string) => {
    const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'git-remote-kmscrypt'), 'origin', `file://${store}`], { cwd: src, env: sb.env, input, encoding: 'utf8' });
    return { status: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  const cases: Array<{ label: string; input: string; stdout: string; pattern: RegExp }> = [
    { label: 'capabilities, then frobnicate', input: 'capabilities\nfrobnicate\n', stdout: CAPS, pattern: /unknown command "frobnicate" from git/ },
    { label: 'frobnicate first', input: 'frobnicate\n', stdout: '', pattern: /unknown command "frobnicate" from git/ },
    { label: 'a command with trailing junk', input: 'capabilities\nlist please\n', stdout: CAPS, pattern: /unknown command "list please"/ },
    { label: 'a malformed fetch line', input: 'capabilities\nlist\nfetch 123 refs/heads/main\n\n', stdout: `${CAPS}@refs/heads/main HEAD\n${head} refs/heads/main\n\n`, pattern: /malformed fetch line "123 refs\/heads\/main"/ },
    { label: 'a push line without a colon', input: 'capabilities\nlist for-push\npush refs/heads/main\n\n', stdout: `${CAPS}${head} refs/heads/main\n\n`, pattern: /malformed push line "refs\/heads\/main"/ },
    { label: 'another command inside a fetch batch', input: `capabilities\nlist\nfetch ${head} refs/heads/main\nlist\n\n`, stdout: `${CAPS}@refs/heads/main HEAD\n${head} refs/heads/main\n\n`, pattern: /unexpected "list" inside a fetch batch/ },
    { label: 'fetch before list', input: `capabilities\nfetch ${head} refs/heads/main\n\n`, stdout: CAPS, pattern: /fetch before listing refs/ },
  ];
  for (const c of cases) {
    const r = helper(c.input);
    tt.not(r.status, 0, `${c.label}: non-zero exit`);
    tt.equal(r.stdout, c.stdout, `${c.label}: stdout holds the answers before the bad line and nothing after`);
    const lines = r.stderr.split('\n').filter(Boolean);
    tt.equal(lines.length, 1, `${c.label}: exactly one line on stderr`, { stderr: r.stderr });
    tt.match(lines[0] ?? '', /^fatal: kmscrypt: /, `${c.label}: it is a kmscrypt fatal line`);
    tt.match(lines[0] ?? '', c.pattern, `${c.label}: it names the line`);
  }
  // An unknown option is answered `unsupported`, not fatal (git asks about options it may not need).
  const opt = helper('capabilities\noption frobnicate 1\n\n');
  tt.equal(opt.status, 0, 'an unknown option is not fatal');
  tt.equal(opt.stdout, `${CAPS}unsupported\n`, 'it is answered unsupported');
  tt.equal(opt.stderr, '', 'with nothing on stderr');
  // Wrong arguments: usage, exit 129, as git's own commands do.
  const usage = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'git-remote-kmscrypt'), 'a', 'b', 'c'], { env: sb.env, encoding: 'utf8' });
  tt.equal(usage.status, 129, 'three arguments: exit 129');
  tt.match(usage.stderr, /^usage: git-remote-kmscrypt <remote> \[<url>\]/, 'and the usage on stderr');
  tt.equal(usage.stdout, '', 'and nothing on stdout');
});

t.test('a broken keyring: one line naming the file and the fix', async (tt) => {
  const sb = new Sandbox(tt);
  const store = sb.path('store');
  const url = `kmscrypt::${store}`;
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  sb.git(src, 'push', '-q', url, 'main');
  sb.git(src, 'remote', 'add', 'origin', url);
  sb.commit(src, { 'b.txt': 'b\n' }, 'two');

  const brokenKeyrings: Array<{ label: string; make: (path: string) => void; pattern: (path: string) => RegExp }> = [
    {
      // Tests run as root, who reads a mode-000 file anyway: a directory where the file should be is unreadable for everyone.
      label: 'a directory at the keyring path',
      make: (p) => mkdirSync(p, { mode: 0o700 }),
      pattern: (p) => new RegExp(`keyring ${escape(p)}.*(EISDIR|directory)`),
    },
    {
      // A directory that group and others may list: the advice must not be to chmod it 600.
      label: 'a directory (mode 755) at the keyring path',
      make: (p) => {
        mkdirSync(p);
        chmodSync(p, 0o755);
      },
      pattern: (p) => new RegExp(`keyring ${escape(p)}.*(EISDIR|directory)`),
    },
    {
      label: 'not JSON',
      make: (p) => writeFileSync(p, '{"version": 1, "keys": [', { mode: 0o600 }),
      pattern: (p) => new RegExp(`keyring ${escape(p)} is corrupt \\(not valid JSON\\); restore it from your backup`),
    },
    {
      label: 'JSON of the wrong shape',
      make: (p) => writeFileSync(p, '{"version": 1, "keys": "none"}\n', { mode: 0o600 }),
      pattern: (p) => new RegExp(`keyring ${escape(p)} is corrupt \\(.+\\); restore it from your backup`),
    },
    {
      label: 'readable by group and others (0644)',
      make: (p) => {
        writeFileSync(p, sbKeyring(sb));
        chmodSync(p, 0o644);
      },
      pattern: (p) => new RegExp(`keyring ${escape(p)} is readable by group or others \\(mode 644\\); run: chmod 600 ${escape(p)}`),
    },
    {
      label: 'readable by group (0640)',
      make: (p) => {
        writeFileSync(p, sbKeyring(sb));
        chmodSync(p, 0o640);
      },
      pattern: (p) => new RegExp(`keyring ${escape(p)} is readable by group or others \\(mode 640\\); run: chmod 600 ${escape(p)}`),
    },
  ];
  if (process.getuid?.() !== 0) {
    brokenKeyrings.push({
      label: 'mode 000',
      make: (p) => {
        writeFileSync(p, sbKeyring(sb));
        chmodSync(p, 0o000);
      },
      pattern: (p) => new RegExp(`cannot read keyring ${escape(p)}: EACCES`),
    });
  } else {
    tt.comment('running as root: a mode-000 keyring is readable, so that case is covered by the directory case');
  }
  brokenKeyrings.forEach((k, i) => {
    const path = sb.path(`keyring-${i}.json`);
    k.make(path);
    const env = { KMSCRYPT_KEYRING: path };
    oneFatal(tt, attempt(sb, src, ['ls-remote', 'origin'], env), `ls-remote with ${k.label}`, k.pattern(path));
    oneFatal(tt, attempt(sb, src, ['push', 'origin', 'main'], env), `push with ${k.label}`, k.pattern(path));
    const dir = sb.path(`clone-${i}`);
    oneFatal(tt, attempt(sb, sb.root, ['clone', url, dir], env), `clone with ${k.label}`, k.pattern(path));
    tt.notOk(existsSync(dir), `clone with ${k.label}: no directory is left behind`);
    // A new repository needs a key too: nothing may be created in the store when the keyring is broken.
    const fresh = sb.path(`fresh-store-${i}`);
    oneFatal(tt, attempt(sb, src, ['push', `kmscrypt::${fresh}`, 'main'], env), `first push with ${k.label}`, k.pattern(path));
    tt.notOk(existsSync(join(fresh, 'manifests')), `first push with ${k.label}: no manifest was written`);
    tt.notOk(existsSync(join(fresh, 'kmscrypt.json')), `first push with ${k.label}: no repository was created`);
  });
  // The good keyring still works: nothing above changed the store.
  const ok = attempt(sb, src, ['push', '-q', 'origin', 'main']);
  tt.equal(ok.status, 0, 'with the right keyring the push succeeds', { stderr: ok.stderr });
});

t.test('a deleted keyring: the line says the file is missing and how to get it back', async (tt) => {
  const sb = new Sandbox(tt);
  const store = sb.path('store');
  const url = `kmscrypt::${store}`;
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  sb.git(src, 'push', '-q', url, 'main');
  const keyring = sb.env.KMSCRYPT_KEYRING!;
  // The key as the wrapped data key names it: its ID, without the ARN.
  const keyId = (JSON.parse(readFileSync(join(store, 'kmscrypt.json'), 'utf8')) as { keyId: string }).keyId.replace(/^arn:.*:key\//, '');
  renameSync(keyring, `${keyring}.backup`);
  const line = `fatal: kmscrypt: the local keyring ${keyring} does not exist, and without it this repository cannot be decrypted (NotFoundException: key ${keyId}); restore it from your backup, or point KMSCRYPT_KEYRING (kmscrypt.keyring) at it`;
  const dir = sb.path('clone');
  for (const [label, cwd, args] of [
    ['ls-remote', src, ['ls-remote', url]],
    ['clone', sb.root, ['clone', url, dir]],
    ['push', src, ['push', url, 'main']],
  ] as const) {
    const r = attempt(sb, cwd, [...args]);
    tt.same(
      r.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:')),
      [line],
      `${label}: exactly this line`,
      { stderr: r.stderr },
    );
    tt.not(r.status, 0, `${label}: fails`);
  }
  tt.notOk(existsSync(dir), 'the clone left no directory');
  tt.notOk(existsSync(keyring), 'no new, empty keyring was created in its place');

  // A new repository with a chosen key: nothing to restore, the key is to be made.
  const fresh = sb.path('fresh-store');
  const first = attempt(sb, src, ['-c', 'kmscrypt.keyId=alias/team', 'push', `kmscrypt::${fresh}`, 'main']);
  tt.same(
    first.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:')),
    [
      `fatal: kmscrypt: key alias/team for the new repository is not in local keyring ${keyring}, which does not exist yet (NotFoundException); create it with 'git kmscrypt keys create --alias team', or choose a key the keyring holds ('git kmscrypt keys list') with kmscrypt.keyId`,
    ],
    'first push with a key not made yet: exactly this line',
    { stderr: first.stderr },
  );
  tt.not(first.status, 0, 'first push: fails');
  tt.notOk(existsSync(fresh), 'first push: no store directory was created');
  tt.notOk(existsSync(keyring), 'first push: no keyring was created');
  renameSync(`${keyring}.backup`, keyring);
  tt.equal(attempt(sb, src, ['ls-remote', url]).status, 0, 'with the keyring restored it works again');
});

function sbKeyring(sb: Sandbox): string {
  return readFileSync(sb.env.KMSCRYPT_KEYRING!, 'utf8');
}

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

t.test("ref names at git's limits: very long and very deep names round-trip", async (tt) => {
  const sb = new Sandbox(tt);
  const store = sb.path('store');
  const url = `kmscrypt::${store}`;
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  const second = sb.commit(src, { 'b.txt': 'b\n' }, 'two');
  // Each component at most 200 bytes (file systems limit a name to 255), 1,000+ characters in all.
  const component = (c: string, n: number) => c.repeat(n);
  const long = `refs/heads/${['a', 'b', 'c', 'd', 'e'].map((c) => component(c, 200)).join('/')}`;
  const longer = `refs/heads/${Array.from({ length: 10 }, (_, i) => `${i}`.repeat(200)).join('/')}`;
  const deep = `refs/heads/${Array.from({ length: 200 }, (_, i) => `d${i}`).join('/')}`;
  const longTag = `refs/tags/${component('t', 200)}/${component('u', 200)}/${component('v', 200)}/${component('w', 200)}/${component('x', 200)}`;
  const odd = 'refs/heads/we!rd#name$%&()+,;=@-_x';
  const unicode = `refs/heads/${'ü'.repeat(100)}/${'日本'.repeat(30)}`;
  tt.ok(long.length > 1000 && longer.length > 2000 && deep.split('/').length > 200, 'names are 1,000+ and 2,000+ characters, and 200+ levels deep');
  const names = [long, longer, deep, longTag, odd, unicode];
  sb.run('git', ['update-ref', '--stdin'], { cwd: src, input: names.map((n) => `create ${n} ${second}\n`).join('') });
  sb.git(src, 'push', '-q', url, ...names.map((n) => `${n}:${n}`), 'main');
  const listed = new Set(sb.git(src, 'ls-remote', url).split('\n').filter(Boolean).map((l) => l.split('\t')[1]));
  for (const n of names) tt.ok(listed.has(n), `ls-remote lists ${n.slice(0, 60)}… (${n.length} chars)`);
  const mirror = sb.path('mirror.git');
  sb.run('git', ['clone', '-q', '--mirror', url, mirror]);
  tt.same(sb.refs(mirror), sb.refs(src), 'a mirror clone has exactly the same refs');
  sb.git(mirror, 'fsck', '--strict', '--no-dangling');
  // A normal clone maps them under refs/remotes/origin/, even longer paths.
  const clone = sb.path('clone');
  sb.run('git', ['clone', '-q', url, clone]);
  tt.equal(sb.git(clone, 'rev-parse', `refs/remotes/origin/${long.slice('refs/heads/'.length)}`).trim(), second, 'a normal clone has the long branch as a remote-tracking ref');
  tt.equal(sb.git(clone, 'rev-parse', `refs/remotes/origin/${deep.slice('refs/heads/'.length)}`).trim(), second, 'and the deep one');
  // Deleting and updating them works too.
  sb.git(src, 'push', '-q', url, `:${long}`, `:${deep}`);
  const after = sb.git(src, 'ls-remote', url);
  tt.notOk(after.includes(long) || after.includes(deep), 'they can be deleted');
  // A name git refuses is refused before anything is sent.
  const bad = attempt(sb, src, ['push', url, 'main:refs/heads/bad..name']);
  tt.not(bad.status, 0, 'an invalid ref name is refused');
});

t.test('10,000 refs are pushed and mirror-cloned exactly', async (tt) => {
  const sb = new Sandbox(tt);
  const store = sb.path('store');
  const url = `kmscrypt::${store}`;
  const src = sb.repo('src');
  const commits: string[] = [];
  for (let i = 0; i < 10; i++) commits.push(sb.commit(src, { [`f${i}.txt`]: `${i}\n` }, `commit ${i}`));
  // 9,000 branches and 1,000 lightweight tags over ten commits, in nested namespaces.
  const lines: string[] = [];
  for (let i = 0; i < 9000; i++) lines.push(`create refs/heads/team-${i % 30}/topic-${String(i).padStart(5, '0')} ${commits[i % 10]}`);
  for (let i = 0; i < 1000; i++) lines.push(`create refs/tags/v${Math.floor(i / 100)}.${i % 100}.0 ${commits[i % 10]}`);
  sb.run('git', ['update-ref', '--stdin'], { cwd: src, input: lines.join('\n') + '\n' });
  const expected = sb.refs(src);
  tt.equal(expected.size, 10001, '10,000 refs plus main');
  let started = Date.now();
  sb.git(src, 'push', '-q', url, '--all');
  sb.git(src, 'push', '-q', url, '--tags');
  const pushMs = Date.now() - started;
  started = Date.now();
  const ls = sb.git(src, 'ls-remote', url).split('\n').filter(Boolean);
  const lsMs = Date.now() - started;
  tt.equal(ls.length, 10002, 'ls-remote lists HEAD and the 10,001 refs');
  const mirror = sb.path('mirror.git');
  started = Date.now();
  sb.run('git', ['clone', '-q', '--mirror', url, mirror]);
  const cloneMs = Date.now() - started;
  tt.same(sb.refs(mirror), expected, 'the mirror has exactly the 10,001 refs with their values');
  sb.git(mirror, 'fsck', '--strict', '--no-dangling');
  // One more push on top of 10,000 refs updates only what changed.
  const next = sb.commit(src, { 'g.txt': 'g\n' }, 'next');
  sb.git(src, 'push', '-q', url, 'main', `${next}:refs/heads/team-0/topic-00000`, ':refs/tags/v0.0.0');
  const mirror2 = sb.path('mirror2.git');
  sb.run('git', ['clone', '-q', '--mirror', url, mirror2]);
  const refs2 = sb.refs(mirror2);
  tt.equal(refs2.size, 10000, 'one tag deleted');
  tt.equal(refs2.get('refs/heads/team-0/topic-00000'), next, 'one branch moved');
  tt.equal(refs2.get('refs/heads/team-1/topic-00001'), commits[1], 'the others kept their values');
  tt.comment(`10,000 refs: push ${pushMs} ms, ls-remote ${lsMs} ms, mirror clone ${cloneMs} ms`);
});
