import { spawn, SpawnOptions } from 'node:child_process';
import type { Writable } from 'node:stream';
import { KmscryptError } from '../errors';

export interface GitResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface RunGitOptions {
  /**
   * What git reads on stdin: bytes, or a function that writes them to git's stdin and ends it,
   * honouring backpressure (e.g. through a PackStream). When git exits before reading everything,
   * its exit status is the answer, not the broken pipe.
   */
  input?: Buffer | string | ((stdin: Writable) => Promise<void>);
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Exit codes that are answers rather than failures (e.g. 1 for merge-base --is-ancestor); 'any': every one is. */
  okCodes?: number[] | 'any';
  /**
   * Run git on a scratch repository of ours alone: the variables through which a calling git points
   * its children at the user's repository (GIT_DIR, GIT_WORK_TREE, …) are removed, and GIT_DIR
   * names `gitDir` when there is one (for `git init` there is none yet). cwd defaults to `gitDir`.
   */
  isolated?: { gitDir?: string };
}

/** Variables that would make git look at another repository than the one it is given. */
const REPOSITORY_ENV = [
  'GIT_DIR',
  'GIT_WORK_TREE',
  'GIT_INDEX_FILE',
  'GIT_OBJECT_DIRECTORY',
  'GIT_ALTERNATE_OBJECT_DIRECTORIES',
  'GIT_COMMON_DIR',
  'GIT_NAMESPACE',
  'GIT_QUARANTINE_PATH',
];

/** Runs git to completion. stdout is captured; stderr is kept for the error message. */
export async function runGit(args: string[], opts: RunGitOptions = {}): Promise<GitResult> {
  const spawnOpts: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'], env: gitEnv(opts), cwd: opts.cwd ?? opts.isolated?.gitDir };
  const child = spawn('git', args, spawnOpts);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  let stdinBroken = false;
  child.stdin!.on('error', () => (stdinBroken = true));
  let exited = false;
  const closed = new Promise<number>((resolve, reject) => {
    child.on('error', (e) => reject(new KmscryptError('GIT', `cannot run git: ${e.message}`, { fix: 'is git installed and on PATH?' })));
    child.on('close', (code) => {
      exited = true;
      resolve(code ?? 128);
    });
  });
  const input = opts.input;
  if (typeof input === 'function') {
    try {
      await input(child.stdin!);
      if (!child.stdin!.writableEnded) child.stdin!.end();
    } catch (e) {
      // git stopped reading (it refused the input, say): its exit status says why.
      if (!(stdinBroken || exited)) {
        child.kill('SIGKILL');
        await closed.catch(() => undefined);
        throw e;
      }
    }
  } else {
    child.stdin!.end(input ?? '');
  }
  const result = { code: await closed, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') };
  if (result.code === 0 || opts.okCodes === 'any' || opts.okCodes?.includes(result.code)) return result;
  throw gitFailure(args, result.code, result.stderr);
}

export async function gitText(args: string[], opts: RunGitOptions = {}): Promise<string> {
  return (await runGit(args, opts)).stdout.toString('utf8').trim();
}

export function gitFailure(args: string[], code: number | null, stderr: string): KmscryptError {
  const line = lastLine(stderr);
  return new KmscryptError('GIT', `git ${args[0]} failed (exit ${code ?? 'signal'})${line ? `: ${line}` : ''}`);
}

/** The last non-empty line of git's stderr: where git says what went wrong. */
export function lastLine(text: string): string {
  return (
    text
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .pop() ?? ''
  );
}

function gitEnv(opts: RunGitOptions): NodeJS.ProcessEnv {
  const env = opts.env ?? process.env;
  if (!opts.isolated) return env;
  const scrubbed: NodeJS.ProcessEnv = { ...env };
  for (const name of REPOSITORY_ENV) delete scrubbed[name];
  if (opts.isolated.gitDir !== undefined) scrubbed.GIT_DIR = opts.isolated.gitDir;
  return scrubbed;
}
