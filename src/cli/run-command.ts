import { errorMessage, KmscryptError } from '../errors';
import { isInterrupted } from '../interrupt-cleanup';

/**
 * Exit status as git's own: 129 for a command line that cannot be parsed (git's usage_with_options),
 * 128 for every fatal error (git's die). Commands that report findings (verify, doctor) return 1
 * themselves when they found a problem; git prints its own line after a helper dies.
 */
export function exitCodeFor(err: unknown): number {
  return err instanceof KmscryptError && err.code === 'USAGE' ? 129 : 128;
}

/** One line on stderr: "fatal: <cause and fix>". Internal errors keep their stack only with KMSCRYPT_DEBUG. */
export function reportFatal(err: unknown): void {
  // Interrupted: the failure is the cleanup's doing, and the process dies of the signal.
  if (isInterrupted()) return;
  const msg = errorMessage(err).split('\n')[0];
  process.stderr.write(`fatal: kmscrypt: ${msg}\n`);
  if (process.env.KMSCRYPT_DEBUG && err instanceof Error && err.stack) process.stderr.write(err.stack + '\n');
}

export function runCommand(body: () => Promise<number>): void {
  body().then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      reportFatal(err);
      process.exitCode = exitCodeFor(err);
    },
  );
}
