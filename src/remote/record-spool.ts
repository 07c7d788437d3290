import { promises as fs } from 'node:fs';
import { KmscryptError } from '../errors';
import { DELTA_TYPE } from '../format/container-index';
import { encodeEntryHeader } from '../git/pack-format';
import type { PackStream } from '../git/pack-stream';
import { type OpenedContainer, packTypeOf } from './container-reader';

/** A decrypted record written to the spool: a pack entry (header and payload) at [start, end). */
export interface SpoolEntry {
  container: string;
  oid: string;
  base?: string;
  start: number;
  end: number;
}

const CHUNK = 1 << 20;

/**
 * Decrypted records as pack entries in a file of verify's private work directory (mode 0600), so
 * that every record of a repository can be handed to git in one pack without holding it in memory.
 */
export class RecordSpool {
  readonly entries: SpoolEntry[] = [];
  private length = 0;

  private constructor(private readonly file: fs.FileHandle) {}

  static async create(path: string): Promise<RecordSpool> {
    return new RecordSpool(await fs.open(path, 'w+', 0o600));
  }

  /** Appends record `i` of `c` as a pack entry; when its payload fails, nothing of it stays. */
  async add(c: OpenedContainer, i: number, payload: AsyncIterable<Buffer> | Buffer[]): Promise<void> {
    const { index } = c;
    const delta = index.types[i] === DELTA_TYPE;
    const start = this.length;
    try {
      await this.append(encodeEntryHeader(packTypeOf(index, i), index.sizes[i], index.base(i)));
      for await (const chunk of payload) await this.append(chunk);
    } catch (err) {
      await this.file.truncate(start);
      this.length = start;
      throw err;
    }
    this.entries.push({ container: c.ref.id, oid: index.oidHex(i), base: delta ? index.base(i).toString('hex') : undefined, start, end: this.length });
  }

  /** Writes `entries` (of this spool) to a pack, in reads of at most 1 MiB. */
  async copyTo(pack: PackStream, entries: SpoolEntry[]): Promise<void> {
    for (const e of entries) {
      for (let pos = e.start; pos < e.end;) {
        const chunk = Buffer.allocUnsafe(Math.min(CHUNK, e.end - pos));
        const { bytesRead } = await this.file.read(chunk, 0, chunk.length, pos);
        if (bytesRead === 0) throw new KmscryptError('INTERNAL', `verify: the record spool ended early at ${pos}`);
        pos += bytesRead;
        await pack.write(chunk.subarray(0, bytesRead));
      }
    }
  }

  close(): Promise<void> {
    return this.file.close();
  }

  private async append(bytes: Buffer): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.file.write(bytes, done, bytes.length - done, this.length + done);
      done += bytesWritten;
    }
    this.length += bytes.length;
  }
}
