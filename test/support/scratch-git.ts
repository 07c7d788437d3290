/**
 * git run in a scratch directory for the tests that compare our readers of git's formats with git
 * itself: no system or user configuration, fixed identities, none of the caller's GIT_* variables.
 * Importing it puts a test file in the local tier (test/setup/test-tiers.js): it starts git.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ScratchGit {
  readonly dir: string;
  /** Runs git in the directory; throws on a non-zero exit. */
  run(args: string[], input?: string | Buffer): Buffer;
  /** The same, as trimmed UTF-8. */
  text(args: string[], input?: string | Buffer): string;
  /** The exit status of a command whose answer it is (0 or 1; anything else throws). */
  status(args: string[]): number;
}

export function scratchGit(t: { teardown(fn: () => void): void }, name: string, env: NodeJS.ProcessEnv = {}): ScratchGit {
  const dir = mkdtempSync(join(tmpdir(), `kmscrypt-${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('GIT_')));
  const fullEnv: NodeJS.ProcessEnv = {
    ...inherited,
    HOME: dir,
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_AUTHOR_NAME: 'A',
    GIT_AUTHOR_EMAIL: 'a@example.com',
    GIT_COMMITTER_NAME: 'C',
    GIT_COMMITTER_EMAIL: 'c@example.com',
    ...env,
  };
  const spawn = (args: string[], input?: string | Buffer) => spawnSync('git', args, { cwd: dir, env: fullEnv, input, maxBuffer: 64 << 20 });
  const run = (args: string[], input?: string | Buffer): Buffer => {
    const r = spawn(args, input);
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
  const status = (args: string[]): number => {
    const r = spawn(args);
    if (r.status !== 0 && r.status !== 1) throw new Error(`git ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
    return r.status;
  };
  return { dir, run, text: (args, input) => run(args, input).toString('utf8').trim(), status };
}
