import { promises as fs } from 'node:fs';
import type { GrowingFile } from '../storage/storage';

const WINDOW = 8 << 20;

/** Positional reads over a file that is mostly read front to back, through one large window. */
export class WindowedFileReader {
  private constructor(
    private readonly handle: fs.FileHandle,
    readonly size: number,
  ) {}

  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;
  /** Reused for every window: a fresh 8 MiB allocation per window costs more than the read. */
  private buffer?: Buffer;

  static async open(path: string): Promise<WindowedFileReader> {
    const handle = await fs.open(path, 'r');
    return new WindowedFileReader(handle, (await handle.stat()).size);
  }

  /** Bytes [pos, pos+len); the result may share memory with the window until the next call. */
  async read(pos: number, len: number): Promise<Buffer> {
    if (pos + len > this.size) throw new RangeError(`read beyond end of file (${pos}+${len} > ${this.size})`);
    if (pos >= this.windowStart && pos + len <= this.windowStart + this.window.length) {
      return this.window.subarray(pos - this.windowStart, pos - this.windowStart + len);
    }
    if (len > WINDOW) return this.readExact(pos, len);
    const want = Math.min(WINDOW, this.size - pos);
    this.buffer ??= Buffer.allocUnsafeSlow(Math.min(WINDOW, this.size));
    this.window = await this.readExact(pos, want, this.buffer);
    this.windowStart = pos;
    return this.window.subarray(0, len);
  }

  private async readExact(pos: number, len: number, into?: Buffer): Promise<Buffer> {
    const buf = into ? into.subarray(0, len) : Buffer.allocUnsafe(len);
    let done = 0;
    while (done < len) {
      const { bytesRead } = await this.handle.read(buf, done, len - done, pos + done);
      if (bytesRead === 0) throw new RangeError('unexpected end of file');
      done += bytesRead;
    }
    return buf;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

const WRITE_BUFFER = 4 << 20;

/**
 * Appends to a new file through one reused buffer, so many small writes cost few system calls.
 * While it is written, it can be uploaded as a growing file: `reach` reports bytes as they land
 * on disk; `close` completes it, `abort` fails it so that nothing partial is stored.
 */
export class BufferedFileWriter implements GrowingFile {
  private readonly buffer = Buffer.allocUnsafeSlow(WRITE_BUFFER);
  private buffered = 0;
  written = 0;
  /** Bytes handed to the file system (final). */
  private onDisk = 0;
  private waiters: Array<{ bytes: number; resolve: (have: number) => void; reject: (err: unknown) => void }> = [];
  private settled?: { length: number } | { error: unknown };
  readonly complete: Promise<number>;
  private completeResolve!: (length: number) => void;
  private completeReject!: (err: unknown) => void;

  private constructor(
    private readonly handle: fs.FileHandle,
    readonly file: string,
    readonly sizeHint: number,
  ) {
    this.complete = new Promise<number>((resolve, reject) => {
      this.completeResolve = resolve;
      this.completeReject = reject;
    });
    this.complete.catch(() => undefined); // a writer nobody uploads must not be an unhandled rejection
  }

  static async create(path: string, sizeHint = 0): Promise<BufferedFileWriter> {
    return new BufferedFileWriter(await fs.open(path, 'wx', 0o600), path, sizeHint);
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.written += chunk.length;
    if (this.buffered + chunk.length > WRITE_BUFFER) await this.flush();
    if (chunk.length >= WRITE_BUFFER) {
      await this.writeAll(chunk);
      return;
    }
    chunk.copy(this.buffer, this.buffered);
    this.buffered += chunk.length;
  }

  async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const data = this.buffer.subarray(0, this.buffered);
    this.buffered = 0;
    await this.writeAll(data);
  }

  /** Writes what is buffered and completes the file. */
  async close(): Promise<void> {
    try {
      await this.flush();
      await this.handle.close();
    } catch (err) {
      this.settle({ error: err });
      throw err;
    }
    this.settle({ length: this.onDisk });
  }

  /** Gives up on the file: an upload of it fails with `error` and stores nothing. */
  async abort(error: unknown): Promise<void> {
    this.settle({ error });
    await this.handle.close().catch(() => undefined);
  }

  reach(bytes: number): Promise<number> {
    if (this.settled) return 'error' in this.settled ? Promise.reject(this.settled.error) : Promise.resolve(this.settled.length);
    if (this.onDisk >= bytes) return Promise.resolve(this.onDisk);
    return new Promise((resolve, reject) => this.waiters.push({ bytes, resolve, reject }));
  }

  private settle(outcome: { length: number } | { error: unknown }): void {
    if (this.settled) return;
    this.settled = outcome;
    for (const w of this.waiters) {
      if ('error' in outcome) w.reject(outcome.error);
      else w.resolve(outcome.length);
    }
    this.waiters = [];
    if ('error' in outcome) this.completeReject(outcome.error);
    else this.completeResolve(outcome.length);
  }

  private async writeAll(data: Buffer): Promise<void> {
    let done = 0;
    while (done < data.length) done += (await this.handle.write(data, done, data.length - done)).bytesWritten;
    this.onDisk += data.length;
    if (this.waiters.length === 0) return;
    const ready = this.waiters.filter((w) => w.bytes <= this.onDisk);
    this.waiters = this.waiters.filter((w) => w.bytes > this.onDisk);
    for (const w of ready) w.resolve(this.onDisk);
  }
}
