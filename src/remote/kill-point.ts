import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Crash and race testing. With KMSCRYPT_TEST_KILL_POINT=<name>, the process says so on stderr
 * and SIGKILLs itself when it reaches the kill point of that name, exactly as if it were killed
 * there from outside, so that the tests can place a kill in every phase of a push and a fetch,
 * publication included (test/support/crash-scenarios.ts). With
 * KMSCRYPT_TEST_PAUSE_POINT=<name>:<directory>, it creates <directory>/reached the first time it
 * reaches the pause point of that name and waits there until <directory>/go exists, so that a
 * test can make another process act at exactly that moment (a real race). Unset, a test point is
 * one comparison.
 */
export type KillPoint =
  | 'create-descriptor'
  | 'push-start'
  | 'push-packed'
  | 'push-sealing'
  | 'push-uploaded'
  | 'push-published'
  | 'push-recorded'
  | 'merge-uploaded'
  | 'fetch-start'
  | 'fetch-indexes'
  | 'fetch-streaming'
  | 'fetch-large-verified'
  | 'fetch-indexed'
  | 'fetch-recorded'
  | 'rotate-rewrapped';

export type PausePoint = 'rotate-before-publish' | 'gc-before-publish';

export function killPoint(name: KillPoint): void {
  if (process.env.KMSCRYPT_TEST_KILL_POINT !== name) return;
  process.stderr.write(`kmscrypt: test kill point ${name}\n`);
  process.kill(process.pid, 'SIGKILL');
}

const paused = new Set<PausePoint>();

export async function pausePoint(name: PausePoint): Promise<void> {
  const setting = process.env.KMSCRYPT_TEST_PAUSE_POINT;
  if (!setting?.startsWith(`${name}:`) || paused.has(name)) return;
  paused.add(name);
  const dir = setting.slice(name.length + 1);
  writeFileSync(join(dir, 'reached'), '');
  while (!existsSync(join(dir, 'go'))) await new Promise((r) => setTimeout(r, 20));
}
