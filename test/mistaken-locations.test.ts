import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { PROJECT_ROOT, type RunResult, Sandbox } from './support/sandbox';

/**
 * Locations a user mistypes (src/cli/url.ts, src/cli/mistaken-locations.ts, resolveTarget):
 * each is one exact `fatal: kmscrypt:` line, git's usual exit status, and nothing created. git
 * exits 128 when the helper dies before the refs are listed, 1 when a push then fails.
 */

function attempt(sb: Sandbox, cwd: string, args: string[]): RunResult {
  const r = spawnSync('git', args, { cwd, env: sb.env, encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

/** The helper on its own, as git starts it, asked what a push asks first: its own exit status. */
function helper(sb: Sandbox, cwd: string, url: string): RunResult {
  const r = spawnSync(process.execPath, [join(PROJECT_ROOT, 'bin', 'git-remote-kmscrypt'), url, url], {
    cwd,
    env: sb.env,
    input: 'capabilities\nlist for-push\n\n',
    encoding: 'utf8',
  });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function fatal(tt: Test, r: RunResult, label: string, message: string, status: number): void {
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
  tt.same(lines, [`fatal: kmscrypt: ${message}`], `${label}: exactly this one line`, { stderr: r.stderr });
  tt.equal(r.status, status, `${label}: exit ${status}`);
}

t.test('file://tmp/x (two slashes) is a host name, refused as git refuses it; nothing is created', async (tt) => {
  const sb = new Sandbox(tt);
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  const message =
    'invalid kmscrypt URL "file://tmp/x": file:// is followed by a host name, here "tmp"; for the absolute path /tmp/x write file:///tmp/x (three slashes), for a directory relative to here write ./tmp/x';
  fatal(tt, attempt(sb, src, ['push', 'kmscrypt::file://tmp/x', 'main']), 'push', message, 128);
  fatal(tt, attempt(sb, src, ['ls-remote', 'kmscrypt::file://tmp/x']), 'ls-remote', message, 128);
  fatal(tt, helper(sb, src, 'file://tmp/x'), 'the helper itself', message, 128);
  tt.notOk(existsSync(join(src, 'tmp')), 'no tmp/ inside the working tree');
});

t.test('a bare name with a directory of that name here: the ./ form is named, S3 is not asked', async (tt) => {
  const sb = new Sandbox(tt);
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  mkdirSync(join(src, 'store2'));
  const message =
    'invalid kmscrypt URL "store2": a bare name is an S3 bucket, but store2 here is a local directory; for the directory write kmscrypt::./store2, for the bucket kmscrypt::s3://store2';
  fatal(tt, attempt(sb, src, ['push', 'kmscrypt::store2', 'main']), 'push', message, 128);
  fatal(tt, helper(sb, src, 'store2'), 'the helper itself', message, 128);
  tt.same(readdirSync(join(src, 'store2')), [], 'nothing was written into the directory');
  mkdirSync(sb.path('store3'));
  const clone = attempt(sb, sb.root, ['clone', 'kmscrypt::store3', 'c3']);
  fatal(tt, clone, 'clone', message.replace(/store2/g, 'store3'), 128);
  tt.notOk(existsSync(sb.path('c3')), 'clone: no directory is left behind');
  // The form the message gives works.
  const ok = attempt(sb, src, ['push', '-q', 'kmscrypt::./store2', 'main']);
  tt.equal(ok.status, 0, 'kmscrypt::./store2 pushes into the directory', { stderr: ok.stderr });
});

t.test('git kmscrypt <command> with a name that is no remote: outside a repository, and a mistyped remote', async (tt) => {
  const sb = new Sandbox(tt);
  const outside = sb.path('not-a-repo');
  mkdirSync(outside);
  const where = 'a URL such as kmscrypt::s3://bucket/prefix or kmscrypt::./directory (kmscrypt::s3://origin for the bucket of that name)';
  for (const command of ['info', 'verify', 'gc']) {
    fatal(
      tt,
      attempt(sb, outside, ['kmscrypt', command, 'origin']),
      `${command} origin outside a repository`,
      `"origin" is not a remote here: ${outside} is not in a git repository; run this inside the repository, or give ${where}`,
      128,
    );
  }
  const src = sb.repo('src');
  sb.git(src, 'remote', 'add', 'origin', `kmscrypt::${sb.path('store')}`);
  sb.git(src, 'remote', 'add', 'backup', `kmscrypt::${sb.path('backup')}`);
  fatal(
    tt,
    attempt(sb, src, ['kmscrypt', 'info', 'orgin']),
    'info with a mistyped remote',
    `no remote named "orgin" (remotes here: backup, origin); give a remote name or ${where.replace('s3://origin', 's3://orgin')}`,
    128,
  );
  const doctor = attempt(sb, outside, ['kmscrypt', 'doctor', 'origin']);
  tt.match(doctor.stdout, /^url +FAIL +"origin" is not a remote here/m, 'doctor reports it on its url row');
});

t.test('a first push into a directory that is not a kmscrypt store is refused; nothing is added to it', async (tt) => {
  const sb = new Sandbox(tt);
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  const bare = sb.path('plain.git');
  sb.git(sb.root, 'init', '-q', '--bare', bare);
  const before = readdirSync(bare).sort();
  fatal(
    tt,
    attempt(sb, src, ['push', `kmscrypt::${bare}`, 'main']),
    'push into a bare git repository',
    `${bare} is a git repository (HEAD, branches, config, description, …), not a kmscrypt store; nothing was written; to push to it unencrypted drop kmscrypt:: from the URL, for an encrypted repository give a new or empty directory`,
    1,
  );
  tt.same(readdirSync(bare).sort(), before, 'the bare repository holds what it held');
  fatal(
    tt,
    attempt(sb, sb.root, ['kmscrypt', 'init', `kmscrypt::${bare}`]),
    'init in a bare git repository',
    `${bare} is a git repository (HEAD, branches, config, description, …), not a kmscrypt store; nothing was written; to push to it unencrypted drop kmscrypt:: from the URL, for an encrypted repository give a new or empty directory`,
    128,
  );

  const photos = sb.path('photos');
  mkdirSync(photos);
  writeFileSync(join(photos, 'cat.jpg'), 'meow');
  fatal(
    tt,
    attempt(sb, src, ['push', `kmscrypt::${photos}`, 'main']),
    'push into a directory of other files',
    `${photos} already holds other files (cat.jpg) and no kmscrypt repository; nothing was written; give a new or empty directory for the encrypted repository`,
    1,
  );
  tt.same(readdirSync(photos), ['cat.jpg'], 'nothing was added next to cat.jpg');

  const regular = sb.path('regular.txt');
  writeFileSync(regular, 'text\n');
  const fileMessage = `${regular} is a file, not a directory; a local store is a directory: give the repository's directory, or a new or empty one`;
  fatal(tt, attempt(sb, src, ['push', `kmscrypt::${regular}`, 'main']), 'push into a regular file', fileMessage, 128);
  fatal(tt, attempt(sb, src, ['push', `kmscrypt::${regular}/sub`, 'main']), 'push below a regular file', fileMessage, 128);
  fatal(tt, attempt(sb, src, ['ls-remote', `kmscrypt::${regular}`]), 'ls-remote of a regular file', fileMessage, 128);
  tt.same(
    readdirSync(sb.root).filter((n) => n.startsWith('.tmp-')),
    [],
    'no temporary file beside it',
  );

  // An empty directory, and one a killed writer left a temporary file in, are fine.
  const empty = sb.path('empty');
  mkdirSync(empty);
  writeFileSync(join(empty, '.tmp-12345-abcdef'), '');
  const ok = attempt(sb, src, ['push', '-q', `kmscrypt::${empty}`, 'main']);
  tt.equal(ok.status, 0, 'a push into an empty directory works', { stderr: ok.stderr });
});
