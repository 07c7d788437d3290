import { isKmscryptError } from '../../src/errors';

/** The error code `fn` fails with, or 'opened' when it succeeds: for tables of tamper cases. */
export function outcome(fn: () => unknown): string {
  try {
    fn();
    return 'opened';
  } catch (err) {
    return isKmscryptError(err) ? err.code : `not a KmscryptError: ${String(err)}`;
  }
}
