import type { Readable } from 'node:stream';
import { traced } from '../trace';
import { type ByteRange, type GrowingFile, isGrowingFile, type PutBody, type ReadLimit, type Storage, type StoredObjectInfo } from './storage';

/**
 * Storage that traces each request (src/trace.ts): the operation, the object, its size or the
 * number listed, the outcome and the time taken. Without tracing it only forwards.
 */
export class TracedStorage implements Storage {
  constructor(readonly inner: Storage) {}

  get location(): string {
    return this.inner.location;
  }

  get requests(): { readonly total: number } {
    return this.inner.requests;
  }

  get bytesRead(): number {
    return this.inner.bytesRead;
  }

  get(key: string, limit: ReadLimit): Promise<Buffer | undefined> {
    return traced(`storage get ${this.at(key)}`, () => this.inner.get(key, limit), (b) => (b ? bytes(b.length) : 'not found'));
  }

  getRange(key: string, range: ByteRange): Promise<Buffer> {
    return traced(
      `storage get ${this.at(key)} ${span(range)}`,
      () => this.inner.getRange(key, range),
      (b) => bytes(b.length),
    );
  }

  getStream(key: string, range?: ByteRange): Promise<Readable> {
    return traced(
      `storage stream ${this.at(key)}${range ? ` ${span(range)}` : ''}`,
      () => this.inner.getStream(key, range),
      () => 'opened',
    );
  }

  head(key: string): Promise<StoredObjectInfo | undefined> {
    return traced(
      `storage head ${this.at(key)}`,
      () => this.inner.head(key),
      (info) => (info ? bytes(info.size) : 'not found'),
    );
  }

  put(key: string, body: PutBody | GrowingFile, onProgress?: (bytesStored: number) => void): Promise<void> {
    return traced(
      `storage put ${this.at(key)}`,
      () => this.inner.put(key, body, onProgress),
      () => (isGrowingFile(body) ? 'stored as it was written' : bytes(body.length)),
    );
  }

  putIfAbsent(key: string, body: PutBody): Promise<boolean> {
    return traced(
      `storage put-if-absent ${this.at(key)}`,
      () => this.inner.putIfAbsent(key, body),
      (created) => `${bytes(body.length)}, ${created ? 'created' : 'already exists: not written'}`,
    );
  }

  putIfMatch(key: string, body: Buffer, etag: string): Promise<boolean> {
    return traced(
      `storage put-if-match ${this.at(key)} etag ${etag}`,
      () => this.inner.putIfMatch(key, body, etag),
      (replaced) => `${bytes(body.length)}, ${replaced ? 'replaced' : 'etag no longer matches: not written'}`,
    );
  }

  list(prefix: string, startAfter?: string): Promise<StoredObjectInfo[]> {
    return traced(
      `storage list ${this.at(prefix)}${startAfter ? ` after ${startAfter}` : ''}`,
      () => this.inner.list(prefix, startAfter),
      (found) => `${found.length} object${found.length === 1 ? '' : 's'}`,
    );
  }

  delete(key: string): Promise<void> {
    return traced(
      `storage delete ${this.at(key)}`,
      () => this.inner.delete(key),
      () => 'deleted',
    );
  }

  private at(key: string): string {
    return `${this.inner.location}/${key}`;
  }
}

/** The storage under any tracing: for checks that depend on the backend (doctor). */
export function untracedStorage(storage: Storage): Storage {
  return storage instanceof TracedStorage ? storage.inner : storage;
}

function bytes(n: number): string {
  return `${n} byte${n === 1 ? '' : 's'}`;
}

function span(range: ByteRange): string {
  return `bytes ${range.start}-${range.end - 1}`;
}
