/**
 * Every failure a user can meet is a KmscryptError with a stable `code`.
 * The message is one line that names the cause, what the failure left unchanged where that is worth
 * saying, and the fix where there is one: "<cause>; <unchanged>; <fix>". Each part is given
 * separately where the error is made (data.unchanged, data.fix), so that doctor can show the fix on
 * a line of its own and verify can leave out what a push or fetch did not do, without reading the
 * message. The CLI prints it after "fatal: " and exits non-zero.
 */
export type ErrorCode =
  /** A command line git kmscrypt cannot parse: unknown option, missing or extra argument (exit 129, as git). */
  | 'USAGE'
  | 'BAD_URL'
  | 'BAD_CONFIG'
  | 'BAD_PROTOCOL'
  | 'NO_REPOSITORY'
  | 'CORRUPT'
  | 'TAMPERED'
  | 'ROLLBACK'
  | 'KEY_ERROR'
  | 'KEYRING'
  | 'STORAGE'
  | 'GIT'
  | 'TOO_LARGE'
  | 'CONFLICT'
  | 'UNSAFE_SERVER'
  | 'INTERNAL';

/**
 * The facts of an error that code may decide on (never the message's wording).
 * `kmsError` is the KMS error name (AWS KMS's, or the local keyring's equivalent); `scope` says which
 * authenticated unit failed (one record, a segment of records, a container's index, a manifest, the descriptor, a key commitment).
 */
export interface ErrorData {
  kmsError?: string;
  action?: string;
  keyId?: string;
  scope?: 'record' | 'segment' | 'index' | 'manifest' | 'descriptor' | 'commitment';
  /** The container (32 hex digits) concerned, when there is one. */
  container?: string;
  /** A local keyring that should hold the key does not exist at all (restoring it is the fix, not choosing a key). */
  keyringMissing?: boolean;
  /** What the user can do about it; the message ends with it. */
  fix?: string;
  /** What the failure left as it was ("no ref was changed", "nothing was handed to git"), said after the cause. */
  unchanged?: string;
  [fact: string]: unknown;
}

export class KmscryptError extends Error {
  readonly code: ErrorCode;
  readonly data: ErrorData;
  /** The cause alone: the message without what was left unchanged and without the fix. */
  readonly summary: string;

  /** `summary`: the cause; the message adds `data.unchanged` and `data.fix` after it. */
  constructor(code: ErrorCode, summary: string, data: ErrorData = {}) {
    super([summary, data.unchanged, data.fix].filter((part) => part).join('; '));
    this.name = 'KmscryptError';
    this.code = code;
    this.data = data;
    this.summary = summary;
  }
}

export function isKmscryptError(err: unknown, code?: ErrorCode): err is KmscryptError {
  return err instanceof KmscryptError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
