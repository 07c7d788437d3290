/**
 * Every failure a user can meet is a KmscryptError with a stable `code`.
 * The message is one line that names the cause and, where there is one, the fix, as
 * "<cause>; <fix>" (doctor shows the two on separate lines, so the cause itself holds no "; ");
 * the CLI prints it after "fatal: " and exits non-zero.
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
  [fact: string]: unknown;
}

export class KmscryptError extends Error {
  readonly code: ErrorCode;
  readonly data: ErrorData;

  constructor(code: ErrorCode, message: string, data: ErrorData = {}) {
    super(message);
    this.name = 'KmscryptError';
    this.code = code;
    this.data = data;
  }
}

export function isKmscryptError(err: unknown, code?: ErrorCode): err is KmscryptError {
  return err instanceof KmscryptError && (code === undefined || err.code === code);
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
