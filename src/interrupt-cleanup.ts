import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { trace } from './trace';

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
const actions = new Set<() => Promise<unknown>>();
const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];
/** How long children get to end (and remove their own temporary files) before SIGKILL. */
const CHILD_GRACE_MS = 1000;
/** How long undo actions (aborting an S3 multipart upload) may take before the process ends anyway. */
const ACTION_GRACE_MS = 3000;
let installed = false;
let interrupting = false;

/** Removes `path` (file or directory) if the process is interrupted; call the result (release) once it is gone or kept. */
export function removeOnInterrupt(path: string): () => void {
  paths.add(path);
  return () => paths.delete(path);
}

/** Runs `undo` (best effort, bounded in time) if the process is interrupted; call the result once it no longer applies. */
export function undoOnInterrupt(undo: () => Promise<unknown>): () => void {
  actions.add(undo);
  return () => actions.delete(undo);
}

/** Stops `child` if the process is interrupted before it has exited. */
export function stopOnInterrupt(child: ChildProcess): void {
  if (child.exitCode !== null || child.signalCode !== null) return;
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/**
 * True once a signal arrived: what fails from then on fails because of the cleanup (a stopped
 * child, a removed file), and the process is about to die of the signal; nothing is reported.
 */
export function isInterrupted(): boolean {
  return interrupting;
}

/** Installs the signal handlers; the command-line entry points call it once. */
export function installInterruptCleanup(): void {
  if (installed) return;
  installed = true;
  // `on`, not `once`, and the listener stays until the cleanup is done: a signal without a
  // listener gets its default action again, death without cleanup, and more signals do come
  // while we clean up (git, itself interrupted, signals its helper again: run-command's
  // clean_on_exit). They are ignored; the cleanup below is bounded in time.
  for (const signal of SIGNALS) process.on(signal, onSignal);
}

function onSignal(signal: NodeJS.Signals): void {
  if (interrupting) return;
  interrupting = true;
  void interrupted(signal);
}

async function interrupted(signal: NodeJS.Signals): Promise<void> {
  trace(`${signal}: cleaning up (${paths.size} temporary paths, ${children.size} children, ${actions.size} undo actions)`);
  // At once, in case something kills this process before the end; again once children have
  // stopped, in case they wrote more meanwhile.
  removePaths();
  await Promise.all([stopChildren(signal), runUndoActions()]);
  removePaths();
  paths.clear();
  trace(`${signal}: cleaned up; ending of the signal`);
  for (const s of SIGNALS) process.removeAllListeners(s);
  process.kill(process.pid, signal);
}

function removePaths(): void {
  for (const path of paths) {
    try {
      // Retried: a child stopping or the interrupted push may still add a file while it is removed.
      rmSync(path, { recursive: true, force: true, maxRetries: 5, retryDelay: 20 });
    } catch (err) {
      // Best effort: the path is under $TMPDIR or holds only our own temporary file.
      trace(`could not remove ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }
}

async function runUndoActions(): Promise<void> {
  if (actions.size === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), ACTION_GRACE_MS)));
  const outcome = await Promise.race([Promise.allSettled([...actions].map((undo) => undo())), late]);
  clearTimeout(timer);
  if (outcome === 'late') trace(`undo actions still running after ${ACTION_GRACE_MS} ms; ending anyway`);
  else for (const r of outcome) if (r.status === 'rejected') trace(`an undo action failed: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`);
}

async function stopChildren(signal: NodeJS.Signals): Promise<void> {
  const running = [...children];
  if (running.length === 0) return;
  const exited = running.map(
    (child) => new Promise<void>((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', () => resolve()))),
  );
  for (const child of running) child.kill(signal === 'SIGINT' ? 'SIGINT' : 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), CHILD_GRACE_MS)));
  if ((await Promise.race([Promise.all(exited), late])) === 'late') {
    for (const child of running) child.kill('SIGKILL');
    await Promise.all(exited);
  }
  clearTimeout(timer);
}
