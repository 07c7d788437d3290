/**
 * The package as a user gets it: `npm pack` in a checkout, `npm install -g --prefix <tmp>` of the
 * tarball, then, with only that prefix's bin (plus git, node and man) on PATH and a fresh HOME:
 * --version, the manual pages through git and man, a command's help, and push/clone round trips
 * over a local directory and over S3 with AWS KMS (the test setup's RGW and local KMS endpoint).
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, symlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { COMMAND_DOCS } from '../src/cli/help/git-kmscrypt-manual';
import { commandHelp } from '../src/cli/help/render-text';
import { brokenLink, relativeLinks } from './support/markdown-links';
import { PROJECT_ROOT, RunResult, Sandbox } from './support/sandbox';
import { kmsEnvFor, newBucket, runningServices } from './support/services';
import { ensureMan } from './support/system-packages';

interface PackageJson {
  name: string;
  version: string;
  files: string[];
}
const PKG = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as PackageJson;

function run(cmd: string, args: string[], opts: { cwd: string; env: NodeJS.ProcessEnv }): RunResult {
  // npm reaches the registry: a hung connection fails the test after 15 minutes instead of never.
  const r = spawnSync(cmd, args, { ...opts, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 15 * 60_000 });
  const result = { status: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  if (result.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${result.status}:\n${result.stderr}`);
  return result;
}

function which(name: string): string {
  return run('sh', ['-c', `command -v ${name}`], { cwd: PROJECT_ROOT, env: process.env }).stdout.trim();
}

/** npm's environment without what tap adds to every child (its coverage hooks load from this checkout). */
function npmEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (k === 'NODE_OPTIONS' || k === 'NODE_V8_COVERAGE' || k.startsWith('TAP')) delete env[k];
  return env;
}

/** Markdown files under `dir`, recursively. */
function markdownUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'node_modules' ? [] : markdownUnder(path);
    return name.endsWith('.md') ? [path] : [];
  });
}

t.test('npm pack, npm install -g of the tarball, and a new user on a fresh HOME', async (t) => {
  ensureMan();
  const sb = new Sandbox(t);

  // A checkout as a user has it after `npm ci`: what the package is built from and made of.
  const checkout = sb.path('checkout');
  mkdirSync(checkout);
  for (const entry of ['package.json', 'package-lock.json', 'tsconfig.json', 'src', ...PKG.files]) {
    cpSync(join(PROJECT_ROOT, entry), join(checkout, entry), { recursive: true, filter: (src) => !src.startsWith(join(PROJECT_ROOT, 'dist')) });
  }
  symlinkSync(join(PROJECT_ROOT, 'node_modules'), join(checkout, 'node_modules'));

  const out = sb.path('out');
  mkdirSync(out);
  const pack = run('npm', ['pack', '--pack-destination', out], { cwd: checkout, env: npmEnv() });
  t.notMatch(pack.stderr, /npm warn/i, 'npm pack warns about nothing');
  const tarball = join(out, `${PKG.name}-${PKG.version}.tgz`);
  t.ok(existsSync(tarball), `${tarball} written`);

  const listed = run('tar', ['tzf', tarball], { cwd: out, env: process.env })
    .stdout.split('\n')
    .filter((l) => l !== '');
  for (const file of [
    'LICENSE',
    'README.md',
    'man/git-kmscrypt.1',
    'man/git-remote-kmscrypt.1',
    'completion/git-kmscrypt.bash',
    'dist/cli/git-remote-kmscrypt.js',
    'docs/FORMAT.md',
  ]) {
    t.ok(listed.includes(`package/${file}`), `the tarball holds ${file}`);
  }
  t.same(
    listed.filter((f) => f.endsWith('.map')),
    [],
    'no source maps (their sources are not shipped)',
  );
  t.same(
    listed.filter((f) => /^package\/(src|test|bench|scripts)\//.test(f)),
    [],
    'no sources, tests or scripts',
  );
  t.match(readFileSync(join(PROJECT_ROOT, 'LICENSE'), 'utf8'), /^MIT License/);

  const unpacked = sb.path('unpacked');
  mkdirSync(unpacked);
  run('tar', ['xzf', tarball, '-C', unpacked], { cwd: out, env: process.env });
  const pkgRoot = join(unpacked, 'package');
  const broken = markdownUnder(pkgRoot).flatMap((file) =>
    relativeLinks(file).flatMap((link) => {
      const why = brokenLink(link, pkgRoot);
      return why ? [`${file.slice(pkgRoot.length + 1)}:${link.line}: ${why}`] : [];
    }),
  );
  t.same(broken, [], 'every relative link in the packaged markdown resolves inside the package');

  const prefix = sb.path('prefix');
  const install = run('npm', ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', tarball], { cwd: out, env: npmEnv() });
  t.notMatch(install.stderr, /npm warn/i, 'npm install -g warns about nothing (no install script)');
  t.ok(existsSync(join(prefix, 'share', 'man', 'man1', 'git-kmscrypt.1')), 'man page installed under the prefix');

  // The new user: a fresh HOME, and on PATH only the prefix's bin and what git, node and man need.
  const home = sb.path('newhome');
  mkdirSync(home);
  const systemDirs = [...new Set([which('git'), which('man'), process.execPath].map((p) => dirname(p)))];
  const user: NodeJS.ProcessEnv = {
    HOME: home,
    PATH: [join(prefix, 'bin'), ...systemDirs].join(':'),
    LANG: 'C.UTF-8',
    MANWIDTH: '80',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'New User',
    GIT_AUTHOR_EMAIL: 'new@example.com',
    GIT_COMMITTER_NAME: 'New User',
    GIT_COMMITTER_EMAIL: 'new@example.com',
  };
  const as = (cmd: string, args: string[], cwd = home, env: NodeJS.ProcessEnv = {}) => run(cmd, args, { cwd, env: { ...user, ...env } });
  t.equal(as('sh', ['-c', 'command -v git-remote-kmscrypt']).stdout.trim(), join(prefix, 'bin', 'git-remote-kmscrypt'), 'git finds the installed helper');

  t.equal(as('git', ['kmscrypt', '--version']).stdout, `git-remote-kmscrypt version ${PKG.version}\n`);
  const manual = as('git', ['kmscrypt', '--help']).stdout;
  t.match(manual, /NAME\n\s+git-kmscrypt - look after repositories stored encrypted by\s+git-remote-kmscrypt/, 'git kmscrypt --help shows the manual page');
  t.match(manual, /rotate-key/);
  t.equal(as('git', ['help', 'kmscrypt']).stdout, manual, 'git help kmscrypt is the same page');
  t.match(
    as('man', ['git-remote-kmscrypt']).stdout,
    /NAME\n\s+git-remote-kmscrypt - git remote helper for repositories stored\s+encrypted/,
    'man git-remote-kmscrypt',
  );
  const gc = COMMAND_DOCS.find((c) => c.name === 'gc')!;
  t.equal(as('git', ['kmscrypt', 'gc', '--help']).stdout, commandHelp(gc), 'git kmscrypt gc --help');

  // A local directory: the keyring is created in the new HOME.
  const project = join(home, 'project');
  as('git', ['init', '-q', '-b', 'main', project]);
  as('sh', ['-c', 'echo "hello" > README && git add README && git commit -qm first'], project);
  const push = as('git', ['push', '-q', `kmscrypt::${join(home, 'store')}`, 'main'], project);
  t.match(push.stderr, /created local keyring .*\.config\/kmscrypt\/keyring\.json/, 'the keyring notice');
  as('git', ['clone', '-q', `kmscrypt::${join(home, 'store')}`, join(home, 'copy')]);
  t.equal(as('git', ['rev-parse', 'HEAD'], join(home, 'copy')).stdout, as('git', ['rev-parse', 'HEAD'], project).stdout, 'cloned what was pushed');

  // S3 with AWS KMS: the AWS SDK the package depends on was installed with it.
  const services = await runningServices();
  const aws = {
    AWS_ACCESS_KEY_ID: services.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: services.s3.secretAccessKey,
    AWS_REGION: services.s3.region,
    AWS_ENDPOINT_URL_S3: services.s3.endpoint,
    ...kmsEnvFor(services),
  };
  const url = `kmscrypt::s3://${await newBucket('package')}/project`;
  as('git', ['push', '-q', url, 'main'], project, aws);
  as('git', ['clone', '-q', url, join(home, 's3-copy')], home, aws);
  t.equal(as('git', ['rev-parse', 'HEAD'], join(home, 's3-copy')).stdout, as('git', ['rev-parse', 'HEAD'], project).stdout, 'cloned from S3 what was pushed');
  t.match(as('git', ['kmscrypt', 'info', url], home, aws).stdout, /arn:aws:kms:/, 'under an AWS KMS key');
  // The installed helper keeps its compiled code in the new HOME (src/code-cache.ts), privately.
  // tap puts its coverage preload into NODE_OPTIONS of every child, and with a preload the cache is
  // off: these two runs go without it, as a user's would.
  const withoutPreload = () => as('sh', ['-c', 'unset NODE_OPTIONS; exec git ls-remote "$0"', url], home, { ...aws, KMSCRYPT_TRACE: '1' }).stderr;
  t.match(withoutPreload(), /code cache: 0 of \d+ modules compiled from .*; saved/, 'the installed helper compiles its modules and saves the code cache');
  t.match(withoutPreload(), /code cache: (\d+) of \1 modules compiled from /, 'and compiles every module from it the next time');
  const cacheDir = join(home, '.cache', 'git-remote-kmscrypt');
  t.equal(statSync(cacheDir).mode & 0o777, 0o700, 'in a private directory of the new HOME');
  t.equal(readdirSync(cacheDir).filter((name) => /^v8-[0-9a-f]{8}\.bin$/.test(name)).length, 1, 'one cache file');

  run('npm', ['uninstall', '-g', '--prefix', prefix, PKG.name], { cwd: out, env: npmEnv() });
  t.notOk(existsSync(join(prefix, 'bin', 'git-remote-kmscrypt')), 'npm uninstall -g removes the helper');
  t.notOk(existsSync(join(prefix, 'share', 'man', 'man1', 'git-kmscrypt.1')), 'and the manual page');
  t.ok(existsSync(join(home, '.config', 'kmscrypt', 'keyring.json')), 'and leaves the keyring');
});
