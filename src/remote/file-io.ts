import { promises as fs } from 'node:fs';

const WINDOW = 8 << 20;

/** Positional reads over a file that is mostly read front to back, through one large window. */
export class WindowedFileReader {
  private constructor(
    private readonly handle: fs.FileHandle,
    readonly size: number,
  ) {}

  private window: Buffer = Buffer.alloc(0);
  private windowStart = 0;

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
    this.window = await this.readExact(pos, want);
    this.windowStart = pos;
    return this.window.subarray(0, len);
  }

  private async readExact(pos: number, len: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(len);
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

/** Appends to a new file through a buffer, so many small writes cost few system calls. */
export class BufferedFileWriter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  written = 0;

  private constructor(private readonly handle: fs.FileHandle) {}

  static async create(path: string): Promise<BufferedFileWriter> {
    return new BufferedFileWriter(await fs.open(path, 'wx', 0o600));
  }

  async write(chunk: Buffer): Promise<void> {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.written += chunk.length;
    if (this.buffered >= 4 << 20) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.buffered === 0) return;
    const data = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks, this.buffered);
    this.chunks = [];
    this.buffered = 0;
    await this.handle.write(data);
  }

  async close(): Promise<void> {
    await this.flush();
    await this.handle.close();
  }
}
