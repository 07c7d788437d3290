import { spawn, SpawnOptions } from 'node:child_process';
import { KmscryptError } from '../errors';

export interface GitResult {
  code: number;
  stdout: Buffer;
  stderr: string;
}

export interface RunGitOptions {
  input?: Buffer | string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Exit codes that are answers rather than failures (e.g. 1 for merge-base --is-ancestor). */
  okCodes?: number[];
}

/** Runs git to completion. stdout is captured; stderr is kept for the error message. */
export function runGit(args: string[], opts: RunGitOptions = {}): Promise<GitResult> {
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = { stdio: ['pipe', 'pipe', 'pipe'], env: opts.env ?? process.env, cwd: opts.cwd };
    const child = spawn('git', args, spawnOpts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on('data', (b: Buffer) => out.push(b));
    child.stderr!.on('data', (b: Buffer) => err.push(b));
    child.on('error', (e) => reject(new KmscryptError('GIT', `cannot run git: ${e.message}; is git installed and on PATH?`)));
    child.on('close', (code) => {
      const result = { code: code ?? 128, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString('utf8') };
      if (result.code === 0 || opts.okCodes?.includes(result.code)) resolve(result);
      else reject(gitFailure(args, result.code, result.stderr));
    });
    child.stdin!.on('error', () => undefined);
    child.stdin!.end(opts.input ?? '');
  });
}

export async function gitText(args: string[], opts: RunGitOptions = {}): Promise<string> {
  return (await runGit(args, opts)).stdout.toString('utf8').trim();
}

export function gitFailure(args: string[], code: number | null, stderr: string): KmscryptError {
  const line = stderr.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';
  return new KmscryptError('GIT', `git ${args[0]} failed (exit ${code ?? 'signal'})${line ? `: ${line}` : ''}`);
}
