import type { ChildProcess } from 'node:child_process';
import { promises as fs, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * What a process must not leave behind when it is interrupted (Ctrl-C sends SIGINT to git, the
 * helper and its children at once; `kill` sends SIGTERM to one of them): temporary files and
 * directories, and git children that would otherwise keep running. Like git's sigchain and
 * tempfile.c: on the signal, children are told to stop (they remove their own temporary files),
 * registered paths are removed, and the signal is raised again so that whoever waits for this
 * process sees it die of that signal.
 *
 * A kill -9 runs nothing: children started through src/git/git-child.ts die with the helper
 * anyway (setpriv --pdeathsig), and the temporary directories are under $TMPDIR.
 */
const paths = new Set<string>();
const children = new Set<ChildProcess>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** How long children get to end (and remove their own temporary files) before SIGKILL. */
const CHILD_GRACE_MS = 1000;
let installed = false;

/** Removes `path` (file or directory) if the process is interrupted; call the result once it is gone or kept. */
export function removeOnInterrupt(path: string): () => void {
  paths.add(path);
  return () => paths.delete(path);
}

/** Runs `body` with a new directory under $TMPDIR, removed afterwards however it ends, interrupts included. */
export async function withTemporaryDirectory<T>(prefix: string, body: (dir: string) => Promise<T>): Promise<T> {
  const dir = await fs.mkdtemp(join(tmpdir(), prefix));
  const forget = removeOnInterrupt(dir);
  try {
    return await body(dir);
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
    forget();
  }
}

/** Stops `child` if the process is interrupted before it has exited. */
export function stopOnInterrupt(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** Installs the signal handlers; the command-line entry points call it once. */
export function installInterruptCleanup(): void {
  if (installed) return;
  installed = true;
  for (const signal of SIGNALS) process.once(signal, () => void interrupted(signal));
}

async function interrupted(signal: NodeJS.Signals): Promise<void> {
  for (const s of SIGNALS) process.removeAllListeners(s);
  // A second Ctrl-C while we clean up ends the process at once, as the user expects.
  for (const s of SIGNALS) process.once(s, () => process.kill(process.pid, s));
  await stopChildren(signal);
  for (const path of paths) {
    try {
      rmSync(path, { recursive: true, force: true });
    } catch {
      // Best effort: the path is under $TMPDIR or holds only our own temporary file.
    }
  }
  paths.clear();
  for (const s of SIGNALS) process.removeAllListeners(s);
  process.kill(process.pid, signal);
}

async function stopChildren(signal: NodeJS.Signals): Promise<void> {
  const running = [...children];
  if (running.length === 0) return;
  const exited = running.map((child) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()))));
  for (const child of running) child.kill(signal === 'SIGINT' ? 'SIGINT' : 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), CHILD_GRACE_MS)));
  if ((await Promise.race([Promise.all(exited), late])) === 'late') {
    for (const child of running) child.kill('SIGKILL');
    await Promise.all(exited);
  }
  clearTimeout(timer);
}
