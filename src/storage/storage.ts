import type { Readable } from 'node:stream';
import { KmscryptError } from '../errors';

/** A byte range, inclusive start and exclusive end, as in Buffer.subarray. */
export interface ByteRange {
  start: number;
  end: number;
}

/** What a put sends: bytes in memory, or a local file streamed with bounded memory. */
export type PutBody = Buffer | { file: string; length: number };

/**
 * A local file still being written, uploaded while it grows (a container as it is sealed).
 * Bytes below what `reach` reports are final. If writing fails, `reach` and `complete` reject
 * and the put stores nothing.
 */
export interface GrowingFile {
  readonly file: string;
  /** About how long the file will be, to size the parts of a multipart upload. */
  readonly sizeHint: number;
  /**
   * Resolves with the number of final bytes once there are at least `bytes` of them, or once
   * the file is complete (then with its whole length, which may be less than `bytes`).
   */
  reach(bytes: number): Promise<number>;
  /** The whole length, once the file is complete. */
  readonly complete: Promise<number>;
}

export function isGrowingFile(body: PutBody | GrowingFile): body is GrowingFile {
  return !Buffer.isBuffer(body) && 'reach' in body;
}

export interface StoredObjectInfo {
  key: string;
  size: number;
  etag: string;
  /** When the store last wrote it, by the store's clock (gc's age rule for unlisted containers). */
  lastModified: Date;
}

/** How much a whole-object read may take, and what the object is, for the refusal. */
export interface ReadLimit {
  maxBytes: number;
  /** "manifest", "repository descriptor", … */
  what: string;
}

/** The refusal of an object over its limit: kmscrypt never writes one, so the store was altered. */
export function objectTooLarge(location: string, key: string, size: number | undefined, limit: ReadLimit): KmscryptError {
  const actual = size === undefined ? `more than ${limit.maxBytes} bytes` : `${size} bytes`;
  return new KmscryptError('TAMPERED', `${location}/${key} is ${actual}, over the ${limit.maxBytes}-byte limit for a ${limit.what}; it was not written by kmscrypt`, {
    key,
    size,
    maxBytes: limit.maxBytes,
  });
}

/**
 * The one storage interface. Keys are relative ("manifests/00000000000000000001");
 * a backend maps them under its own root or prefix. Implementations: LocalStorage
 * (a directory) and S3Storage. The contract tests in test/storage-contract.ts run on both.
 */
export interface Storage {
  /** Human-readable location for messages, e.g. "file:///srv/repo" or "s3://bucket/prefix". */
  readonly location: string;

  /** Requests made so far by kind, with a `total`: exact figures for tests and benchmarks. */
  readonly requests: { readonly total: number };

  /** Bytes of stored objects read so far (bodies received; a local read counts what it asked for). */
  readonly bytesRead: number;

  /**
   * The whole object, or undefined when it does not exist. An object longer than
   * `limit.maxBytes` is refused (objectTooLarge) before more than that is read or allocated:
   * what has not been authenticated yet must not choose how much memory the reader uses.
   */
  get(key: string, limit: ReadLimit): Promise<Buffer | undefined>;

  /** Bytes [start, end) of an object; fails with STORAGE if the object is shorter or missing. */
  getRange(key: string, range: ByteRange): Promise<Buffer>;

  /** A stream of the object (or of a range of it); fails with STORAGE if missing. */
  getStream(key: string, range?: ByteRange): Promise<Readable>;

  /** Size and etag, or undefined when the object does not exist. */
  head(key: string): Promise<StoredObjectInfo | undefined>;

  /**
   * Unconditional write (used only for keys that are never shared: random names). A growing
   * file may be uploaded as it grows (S3, in parts), or once complete (local directory).
   * `onProgress`, when given, is called with the number of bytes stored so far as they land.
   */
  put(key: string, body: PutBody | GrowingFile, onProgress?: (bytesStored: number) => void): Promise<void>;

  /** Create-only write: true when created, false when the key already existed. Never overwrites. */
  putIfAbsent(key: string, body: PutBody): Promise<boolean>;

  /**
   * Compare-and-swap: replaces the object only if its current etag is `etag`.
   * True when replaced, false when the etag no longer matches (or the object is gone).
   */
  putIfMatch(key: string, body: Buffer, etag: string): Promise<boolean>;

  /** Keys under a prefix, in lexicographic order, optionally only those after `startAfter`. */
  list(prefix: string, startAfter?: string): Promise<StoredObjectInfo[]>;

  /** Removes an object; removing a missing object is not an error. */
  delete(key: string): Promise<void>;
}
