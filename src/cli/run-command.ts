import { errorMessage, KmscryptError } from '../errors';

/** Exit status for each error family; git prints its own line after a helper dies. */
export function exitCodeFor(err: unknown): number {
  if (err instanceof KmscryptError) {
    switch (err.code) {
      case 'BAD_URL':
      case 'BAD_CONFIG':
        return 2;
      case 'TAMPERED':
      case 'CORRUPT':
      case 'ROLLBACK':
        return 3;
      default:
        return 1;
    }
  }
  return 1;
}

/** One line on stderr: "fatal: <cause and fix>". Internal errors keep their stack only with KMSCRYPT_DEBUG. */
export function reportFatal(err: unknown): void {
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
