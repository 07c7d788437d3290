import { randomBytes } from 'node:crypto';
import { createReadStream, promises as fs } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { Readable } from 'node:stream';
import { KmscryptError } from '../errors';
import { removeOnInterrupt } from '../interrupt-cleanup';
import { type ByteRange, type GrowingFile, isGrowingFile, objectTooLarge, type PutBody, type ReadLimit, type Storage, type StoredObjectInfo } from './storage';

const STALE_LOCK_MS = 60_000;

/**
 * A directory as storage. Create-only writes are an atomic link(2) of a finished temporary
 * file (EEXIST = someone else won), never a check-then-write; replacements are rename(2),
 * so a reader sees the old or the new object, never half of one.
 */
export class LocalStorage implements Storage {
  readonly root: string;
  readonly location: string;
  readonly requests = { get: 0, head: 0, put: 0, list: 0, delete: 0, total: 0 };
  bytesRead = 0;

  constructor(root: string) {
    this.root = root;
    this.location = `file://${root}`;
  }

  async get(key: string, limit: ReadLimit): Promise<Buffer | undefined> {
    this.count('get');
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.path(key), 'r');
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.failure('read', key, err);
    }
    try {
      const { size } = await handle.stat();
      if (size > limit.maxBytes) throw objectTooLarge(this.location, key, size, limit);
      // One byte more than stat said tells a file written to in place while it is read.
      const buf = Buffer.allocUnsafe(size + 1);
      let done = 0;
      for (let n = 1; n > 0 && done < buf.length; done += n) n = (await handle.read(buf, done, buf.length - done, done)).bytesRead;
      this.bytesRead += done;
      if (done > size) throw new KmscryptError('STORAGE', `${this.location}/${key} changed while it was being read`, { fix: 'try again' });
      return buf.subarray(0, done);
    } catch (err) {
      throw this.failure('read', key, err);
    } finally {
      await handle.close();
    }
  }

  async getRange(key: string, range: ByteRange): Promise<Buffer> {
    this.count('get');
    let handle: fs.FileHandle;
    try {
      handle = await fs.open(this.path(key), 'r');
    } catch (err) {
      throw this.failure('read', key, err);
    }
    try {
      const length = range.end - range.start;
      if (length === 0) {
        // An empty range is only valid inside the object, as it is over S3.
        const { size } = await handle.stat();
        if (range.start > size) {
          throw new KmscryptError(
            'STORAGE',
            `${this.location}/${key} is shorter than expected (${size} bytes, wanted up to ${range.end}): the stored object was truncated`,
          );
        }
      }
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buf, done, length - done, range.start + done);
        if (bytesRead === 0) {
          throw new KmscryptError(
            'STORAGE',
            `${this.location}/${key} is shorter than expected (wanted bytes ${range.start}-${range.end}, it ends at ${range.start + done}): the stored object was truncated`,
          );
        }
        done += bytesRead;
      }
      this.bytesRead += length;
      return buf;
    } finally {
      await handle.close();
    }
  }

  async getStream(key: string, range?: ByteRange): Promise<Readable> {
    this.count('get');
    const path = this.path(key);
    let size: number;
    try {
      const st = await fs.stat(path);
      size = st.size;
      if (range && st.size < range.end) {
        throw new KmscryptError(
          'STORAGE',
          `${this.location}/${key} is shorter than expected (${st.size} bytes, wanted up to ${range.end}): the stored object was truncated`,
        );
      }
    } catch (err) {
      if (err instanceof KmscryptError) throw err;
      throw this.failure('read', key, err);
    }
    if (range && range.end === range.start) return Readable.from([]);
    this.bytesRead += range ? range.end - range.start : size;
    return createReadStream(path, range ? { start: range.start, end: range.end - 1, highWaterMark: 1 << 20 } : { highWaterMark: 1 << 20 });
  }

  async head(key: string): Promise<StoredObjectInfo | undefined> {
    this.count('head');
    try {
      const st = await fs.stat(this.path(key), { bigint: true });
      return { key, size: Number(st.size), etag: etagOf(st), lastModified: new Date(Number(st.mtimeMs)) };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw this.failure('stat', key, err);
    }
  }

  async put(key: string, growing: PutBody | GrowingFile, onProgress?: (bytesStored: number) => void): Promise<void> {
    // A local copy is not worth overlapping with the writing: it waits for the whole file.
    const body = isGrowingFile(growing) ? { file: growing.file, length: await growing.complete } : growing;
    this.count('put');
    const tmp = await this.writeTemp(key, body);
    try {
      await fs.rename(tmp.path, this.path(key));
    } catch (err) {
      throw this.failure('write', key, err);
    } finally {
      await tmp.discard();
    }
    onProgress?.(body.length);
  }

  async putIfAbsent(key: string, body: PutBody): Promise<boolean> {
    this.count('put');
    const tmp = await this.writeTemp(key, body);
    try {
      await fs.link(tmp.path, this.path(key));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw this.failure('write', key, err);
    } finally {
      await tmp.discard();
    }
  }

  async putIfMatch(key: string, body: Buffer, etag: string): Promise<boolean> {
    const lock = `${this.path(key)}.lock`;
    await this.acquireLock(lock, key);
    const held = removeOnInterrupt(lock);
    try {
      const current = await this.head(key);
      if (!current || current.etag !== etag) return false;
      await this.put(key, body);
      return true;
    } finally {
      await fs.rm(lock, { force: true });
      held();
    }
  }

  async list(prefix: string, startAfter?: string): Promise<StoredObjectInfo[]> {
    this.count('list');
    const base = prefix.includes('/') ? prefix.slice(0, prefix.lastIndexOf('/')) : '';
    const out: StoredObjectInfo[] = [];
    // Chosen by name before any stat: a store of many pushes holds thousands of manifests, and
    // the helper lists only those after the one this clone saw.
    await this.walk(base ? this.path(base) : this.root, out, (key) => key.startsWith(prefix) && (startAfter === undefined || key > startAfter));
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async delete(key: string): Promise<void> {
    this.count('delete');
    try {
      await fs.unlink(this.path(key));
    } catch (err) {
      if (!isMissing(err)) throw this.failure('delete', key, err);
    }
  }

  private async walk(dir: string, out: StoredObjectInfo[], wanted: (key: string) => boolean): Promise<void> {
    let entries;
    try {
      entries = await fs.readdir(dir, { withFileTypes: true });
    } catch (err) {
      if (isMissing(err)) return;
      throw this.failure('list', relative(this.root, dir), err);
    }
    for (const entry of entries) {
      if (entry.name.startsWith('.') || entry.name.endsWith('.lock')) continue;
      const full = join(dir, entry.name);
      if (entry.isDirectory()) {
        await this.walk(full, out, wanted);
      } else if (entry.isFile()) {
        const key = relative(this.root, full).split(sep).join('/');
        if (!wanted(key)) continue;
        const st = await fs.stat(full, { bigint: true }).catch(() => undefined);
        if (st)
          out.push({
            key,
            size: Number(st.size),
            etag: etagOf(st),
            lastModified: new Date(Number(st.mtimeMs)),
          });
      }
    }
  }

  private count(kind: 'get' | 'head' | 'put' | 'list' | 'delete'): void {
    this.requests[kind]++;
    this.requests.total++;
  }

  private path(key: string): string {
    if (key === '' || key.startsWith('/') || key.split('/').some((part) => part === '..' || part === '.' || part === '')) {
      throw new KmscryptError('INTERNAL', `invalid storage key ${JSON.stringify(key)}`);
    }
    return join(this.root, ...key.split('/'));
  }

  /** A finished temporary file beside the object, removed by `discard` (and if the process is interrupted). */
  private async writeTemp(key: string, body: PutBody): Promise<{ path: string; discard: () => Promise<void> }> {
    const final = this.path(key);
    const dir = dirname(final);
    const tmp = join(dir, `.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
    const kept = removeOnInterrupt(tmp);
    const discard = async () => {
      await removeQuietly(tmp);
      kept();
    };
    try {
      await fs.mkdir(dir, { recursive: true });
      if (Buffer.isBuffer(body)) {
        await fs.writeFile(tmp, body, { flag: 'wx' });
      } else {
        // copyFile lets the kernel copy (copy_file_range), several times faster than a stream.
        // It also copies the source's mode (0600 for a container being built), so the file is
        // created first and its mode (as the umask makes it, like every other stored file) put back.
        await fs.writeFile(tmp, '', { flag: 'wx' });
        const { mode } = await fs.stat(tmp);
        await fs.copyFile(body.file, tmp);
        await fs.chmod(tmp, mode & 0o777);
      }
      return { path: tmp, discard };
    } catch (err) {
      await discard();
      throw this.failure('write', key, err);
    }
  }

  private async acquireLock(lock: string, key: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await fs.mkdir(dirname(lock), { recursive: true });
        await fs.writeFile(lock, String(process.pid), { flag: 'wx' });
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw this.failure('lock', key, err);
        const st = await fs.stat(lock).catch(() => undefined);
        if (st && Date.now() - st.mtimeMs > STALE_LOCK_MS) {
          // A crashed writer left it; the rename it guarded either happened or did not.
          await fs.rm(lock, { force: true });
          continue;
        }
        if (Date.now() > deadline) throw new KmscryptError('STORAGE', `${this.location}/${key} is locked by another writer for more than 30 s (${lock})`);
        await new Promise((r) => setTimeout(r, 10 + Math.random() * 20));
      }
    }
  }

  private failure(action: string, key: string, err: unknown): KmscryptError {
    if (err instanceof KmscryptError) return err;
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    if (code === 'ENOENT' && action === 'read') {
      return new KmscryptError('STORAGE', `${this.location}/${key} does not exist: it was deleted from the store`, { fix: `run 'git kmscrypt verify'` });
    }
    const cause = `cannot ${action} ${this.location}/${key}: ${code}`;
    if (code === 'EACCES' || code === 'EPERM') return new KmscryptError('STORAGE', cause, { fix: 'check the directory permissions' });
    if (code === 'ENOSPC') return new KmscryptError('STORAGE', cause, { fix: 'free some disk space' });
    // Not a fix but what the code means: the cause, said plainly.
    if (code === 'ENOTDIR') return new KmscryptError('STORAGE', `${cause}; a file stands where ${this.root} needs a directory`);
    return new KmscryptError('STORAGE', cause);
  }
}

/** Removes a temporary file after a failure; the failure, not this, is what the caller reports. */
async function removeQuietly(path: string): Promise<void> {
  await fs.rm(path, { force: true }).catch(() => undefined);
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ENOENT' || code === 'ENOTDIR';
}

function etagOf(st: { ino: bigint; size: bigint; mtimeNs: bigint }): string {
  return `${st.ino.toString(16)}-${st.size.toString(16)}-${st.mtimeNs.toString(16)}`;
}
