import { errorMessage, isKmscryptError, KmscryptError } from '../../errors';

/** A row of git kmscrypt doctor's report, and how a failure becomes one. */

export type CheckStatus = 'PASS' | 'WARN' | 'FAIL' | 'SKIP';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

/** Adds a row to the report. */
export type Add = (name: string, status: CheckStatus, detail: string, fix?: string) => void;

/** A failure's cause and, when it was made with one, its fix (data.fix); a raw error has no fix of its own. */
function causeAndFix(err: unknown): { cause: string; fix?: string } {
  if (!(err instanceof KmscryptError) || err.data.fix === undefined) return { cause: errorMessage(err) };
  const { unchanged } = err.data;
  return { cause: unchanged ? `${err.summary}; ${unchanged}` : err.summary, fix: err.data.fix };
}

/**
 * A failed check, its fix matching its failure: the row shows the cause and, as its fix, the
 * message's own. Only a failure without one gets `otherwise`. Stored data found altered or rolled
 * back gets the check's own advice: its message says what was found and that nothing changed, not
 * how to repair the store.
 */
export function addFailure(add: Add, name: string, err: unknown, otherwise: string): void {
  const { cause, fix } = causeAndFix(err);
  const aboutStoredData = isKmscryptError(err, 'TAMPERED') || isKmscryptError(err, 'ROLLBACK') || isKmscryptError(err, 'CORRUPT');
  if (fix && !aboutStoredData) add(name, 'FAIL', cause, fix);
  else add(name, 'FAIL', errorMessage(err), otherwise);
}

export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
