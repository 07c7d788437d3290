import { type ChildProcess, spawn, type StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { stopOnInterrupt } from '../interrupt-cleanup';

/**
 * Starts a long-running git command (pack-objects, index-pack) that must not outlive the helper:
 * it is stopped when the helper is interrupted (src/interrupt-cleanup.ts), and on Linux it runs
 * through util-linux's `setpriv --pdeathsig KILL`, so it dies even when the helper is killed
 * outright. Otherwise a helper killed during a clone leaves index-pack running; it goes on
 * writing into .git/objects/pack while git removes the failed clone's directory, and recreates
 * part of it: the user is left with a directory that is not a repository and that the next
 * `git clone` refuses (seen in test/crash-local.test.ts).
 */
export function spawnGit(args: string[], stdio: StdioOptions): ChildProcess {
  const [command, ...rest] = diesWithHelper(['git', ...args]);
  const child = spawn(command, rest, { stdio });
  stopOnInterrupt(child);
  return child;
}

let setpriv: string | null | undefined;

function diesWithHelper(argv: string[]): string[] {
  if (setpriv === undefined) {
    setpriv =
      process.platform === 'linux'
        ? ((process.env.PATH ?? '')
            .split(delimiter)
            .map((d) => join(d, 'setpriv'))
            .find((p) => p.startsWith('/') && existsSync(p)) ?? null)
        : null;
  }
  return setpriv ? [setpriv, '--pdeathsig', 'KILL', '--', ...argv] : argv;
}
