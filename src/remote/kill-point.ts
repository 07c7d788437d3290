/**
 * Crash testing (test/support/crash-scenarios.ts): with KMSCRYPT_TEST_KILL_POINT=<name>, the
 * process says so on stderr and SIGKILLs itself when it reaches the kill point of that name,
 * exactly as if it were killed there from outside, so that the tests can place a kill in every
 * phase of a push and a fetch, publication included. Unset, a kill point is one comparison.
 */
export type KillPoint =
  | 'create-descriptor'
  | 'push-start'
  | 'push-packed'
  | 'push-sealing'
  | 'push-uploaded'
  | 'push-published'
  | 'push-recorded'
  | 'fetch-start'
  | 'fetch-indexes'
  | 'fetch-streaming'
  | 'fetch-large-verified'
  | 'fetch-indexed'
  | 'fetch-recorded';

export function killPoint(name: KillPoint): void {
  if (process.env.KMSCRYPT_TEST_KILL_POINT !== name) return;
  process.stderr.write(`kmscrypt: test kill point ${name}\n`);
  process.kill(process.pid, 'SIGKILL');
}
