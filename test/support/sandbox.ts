import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';

export const PROJECT_ROOT = resolve(__dirname, '..', '..');
export const BIN = join(PROJECT_ROOT, 'bin');
/**
 * Writes a shell script that starts one of the project's commands (`git-remote-kmscrypt` or
 * `git-kmscrypt`) without tap's process-info hook (see Sandbox.withoutCoverage), after `before`
 * (more shell lines, e.g. recording the PID, which `exec` keeps).
 */
export function writeUncoveredShim(path: string, command: string, before = ''): void {
  writeFileSync(path, `#!/bin/sh\nunset NODE_OPTIONS NODE_V8_COVERAGE\n${before}exec ${shellQuote(process.execPath)} ${shellQuote(join(BIN, command))} "$@"\n`);
  chmodSync(path, 0o755);
}

/**
 * Where this test's helpers write raw V8 coverage, which tap's report reads with its own (see
 * Sandbox): the .tap/coverage directory of the run, or nothing when the run has no coverage
 * (`--disable-coverage`, as in test:reliability).
 */
function rawCoverageDirectory(): string | undefined {
  if (process.env._TAPJS_PROCESSINFO_COVERAGE_ !== '1') return undefined;
  return join(process.env._TAPJS_PROCESSINFO_CWD_ ?? PROJECT_ROOT, '.tap', 'coverage');
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export interface RunResult {
  status: number;
  stdout: string;
  stderr: string;
}

interface Teardown {
  teardown(fn: () => void | Promise<void>): void;
}

/**
 * A temporary world for end-to-end tests: its own HOME, keyring and git config, with bin/ on
 * PATH so that stock git finds git-remote-kmscrypt exactly as a user's git would.
 */
export class Sandbox {
  readonly root: string;
  readonly env: NodeJS.ProcessEnv;

  constructor(t: Teardown, extraEnv: NodeJS.ProcessEnv = {}) {
    this.root = mkdtempSync(join(tmpdir(), 'kmscrypt-test-'));
    t.teardown(() => rmSync(this.root, { recursive: true, force: true }));
    const home = join(this.root, 'home');
    mkdirSync(home);
    // NODE_EXTRA_CA_CERTS (set on the CI machines) costs every Node start 40-50 ms of CPU parsing
    // the bundle, thousands of times a run; no test server uses a private CA (tls-failures sets its own).
    const inherited = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('KMSCRYPT_') && !k.startsWith('GIT_') && k !== 'NODE_EXTRA_CA_CERTS'),
    );
    this.env = {
      ...inherited,
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      PATH: `${BIN}:${process.env.PATH}`,
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_TERMINAL_PROMPT: '0',
      GIT_AUTHOR_NAME: 'Test Author',
      GIT_AUTHOR_EMAIL: 'author@example.com',
      GIT_COMMITTER_NAME: 'Test Committer',
      GIT_COMMITTER_EMAIL: 'committer@example.com',
      KMSCRYPT_KEYRING: join(this.root, 'keyring.json'),
      ...extraEnv,
    };
    this.startHelpersWithRawCoverage();
    writeFileSync(join(home, '.gitconfig'), '[init]\n\tdefaultBranch = main\n[advice]\n\tdetachedHead = false\n');
  }

  /**
   * tap adds its process-info hook to every process a test spawns, through NODE_OPTIONS, and git
   * passes it on to the helpers it starts. The hook (precise coverage through the inspector, and
   * a module loader on its own thread) more than doubles a helper's run (a local push: 0.43 s
   * without, 0.89 s with, measured). So every sandbox starts the helpers through shims first on
   * PATH that drop the hook and let V8 itself write the coverage (NODE_V8_COVERAGE) into the run's
   * .tap/coverage, which tap's report reads as it reads its own files: the same figures, measured
   * on test/e2e-local.test.ts, at a fraction of the cost.
   */
  private startHelpersWithRawCoverage(): void {
    const directory = rawCoverageDirectory();
    const shims = join(this.root, 'helper-bin');
    mkdirSync(shims, { recursive: true });
    const coverage = directory === undefined ? '' : `export NODE_V8_COVERAGE=${shellQuote(directory)}\n`;
    for (const name of ['git-remote-kmscrypt', 'git-kmscrypt']) writeUncoveredShim(join(shims, name), name, coverage);
    this.env.PATH = `${shims}:${this.env.PATH}`;
  }

  /**
   * Starts the helpers of this sandbox without any coverage, for the scenarios that start hundreds
   * of helpers along paths the other end-to-end tests cover: shims before the ones above.
   */
  withoutCoverage(): this {
    const shims = join(this.root, 'uncovered-bin');
    mkdirSync(shims, { recursive: true });
    for (const name of ['git-remote-kmscrypt', 'git-kmscrypt']) writeUncoveredShim(join(shims, name), name);
    this.env.PATH = `${shims}:${this.env.PATH}`;
    return this;
  }

  path(...parts: string[]): string {
    return join(this.root, ...parts);
  }

  /** Runs a command; throws with its stderr unless it exits 0 (or `expectFailure`). */
  run(cmd: string, args: string[], opts: { cwd?: string; input?: string | Buffer; env?: NodeJS.ProcessEnv; expectFailure?: boolean } = {}): RunResult {
    const r = spawnSync(cmd, args, {
      cwd: opts.cwd ?? this.root,
      env: { ...this.env, ...opts.env },
      input: opts.input,
      maxBuffer: 256 << 20,
      encoding: 'utf8',
    });
    const result = { status: r.status ?? 128, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    if (opts.expectFailure && result.status === 0) {
      throw new Error(`${cmd} ${args.join(' ')} succeeded but should have failed:\n${result.stderr}`);
    }
    if (!opts.expectFailure && result.status !== 0) {
      throw new Error(`${cmd} ${args.join(' ')} exited ${result.status}:\n${result.stderr}`);
    }
    return result;
  }

  /**
   * Like run, without blocking this process: needed when the test itself serves something the
   * command talks to (a KMS endpoint or an S3 proxy started in-process).
   */
  runAsync(argv: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; expectFailure?: boolean } = {}): Promise<RunResult> {
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0], argv.slice(1), { cwd: opts.cwd ?? this.root, env: { ...this.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('error', reject);
      child.on('close', (code) => {
        const status = code ?? 128;
        if (opts.expectFailure ? status === 0 : status !== 0) reject(new Error(`${argv.join(' ')} exited ${status}:\n${stdout}\n${stderr}`));
        else resolve({ status, stdout, stderr });
      });
    });
  }

  git(cwd: string, ...args: string[]): string {
    return this.run('git', args, { cwd }).stdout;
  }

  gitFails(cwd: string, ...args: string[]): RunResult {
    return this.run('git', args, { cwd, expectFailure: true });
  }

  /** A new repository with `files` committed as one commit. */
  repo(name: string, opts: { objectFormat?: 'sha1' | 'sha256' } = {}): string {
    const dir = this.path(name);
    this.run('git', ['init', '-q', ...(opts.objectFormat ? [`--object-format=${opts.objectFormat}`] : []), dir]);
    return dir;
  }

  commit(repo: string, files: Record<string, string | Buffer>, message: string): string {
    for (const [name, content] of Object.entries(files)) {
      const file = join(repo, name);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, content);
    }
    this.git(repo, 'add', '-A');
    this.git(repo, 'commit', '-q', '-m', message);
    return this.git(repo, 'rev-parse', 'HEAD').trim();
  }

  /** Branches and tags with their values, the way a user compares two repositories. */
  refs(repo: string): Map<string, string> {
    const out = this.git(repo, 'for-each-ref', '--format=%(objectname) %(refname)', 'refs/heads', 'refs/tags');
    return new Map(
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const [oid, name] = l.split(' ');
          return [name, oid] as [string, string];
        }),
    );
  }

  /** Every object ID in a repository, sorted. */
  objects(repo: string): string[] {
    return this.git(repo, 'cat-file', '--batch-all-objects', '--batch-check=%(objectname)').split('\n').filter(Boolean).sort();
  }
}
