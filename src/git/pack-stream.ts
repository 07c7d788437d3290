import { createHash, Hash } from 'node:crypto';
import type { Writable } from 'node:stream';
import { MAX_ENTRY_HEADER, writeEntryHeader } from './pack-format';

const BATCH = 1 << 20;
const WRITTEN: Promise<void> = Promise.resolve();

/**
 * Writes a pack to git (index-pack's stdin) and appends its trailer hash. Entries are small, so
 * they are copied into 1 MiB batches rather than sent as two pipe writes per object; the two
 * batch buffers are reused for the whole pack, because a fresh 1 MiB allocation per batch costs
 * more (page faults) than the copying.
 */
export class PackStream {
  private readonly trailer: Hash;
  private readonly buffers = [Buffer.allocUnsafeSlow(BATCH), Buffer.allocUnsafeSlow(BATCH)];
  /** The write still in flight from each buffer: it may not be refilled before that completes. */
  private readonly inFlight: [Promise<void>, Promise<void>] = [Promise.resolve(), Promise.resolve()];
  private current = 0;
  private used = 0;

  constructor(
    private readonly out: Writable,
    hashName: 'sha1' | 'sha256',
  ) {
    this.trailer = createHash(hashName);
  }

  async write(bytes: Buffer): Promise<void> {
    if (bytes.length >= BATCH) {
      // A large piece goes as it is, after what was batched before it.
      await this.flush();
      this.trailer.update(bytes);
      await this.send(bytes);
      return;
    }
    if (this.used + bytes.length > BATCH) await this.flush();
    bytes.copy(this.buffers[this.current], this.used);
    this.used += bytes.length;
  }

  /**
   * Writes one entry: its header (type, inflated size, and for REF_DELTA the base ID) and its
   * payload. A clone writes one per object: when the entry fits in the batch it is encoded in
   * place and nothing waits (the promise is already settled).
   */
  entry(type: number, size: number, baseOid: Buffer | undefined, payload: Buffer): Promise<void> {
    if (this.used + MAX_ENTRY_HEADER + payload.length > BATCH) return this.entryAfterFlush(type, size, baseOid, payload);
    const batch = this.buffers[this.current];
    this.used = writeEntryHeader(batch, this.used, type, size, baseOid);
    this.used += payload.copy(batch, this.used);
    return WRITTEN;
  }

  private async entryAfterFlush(type: number, size: number, baseOid: Buffer | undefined, payload: Buffer): Promise<void> {
    await this.flush();
    const header = Buffer.allocUnsafe(MAX_ENTRY_HEADER);
    await this.write(header.subarray(0, writeEntryHeader(header, 0, type, size, baseOid)));
    await this.write(payload);
  }

  /** Sends what is batched, the trailer, and ends the stream. */
  async end(): Promise<void> {
    await this.flush();
    await Promise.all(this.inFlight);
    this.out.end(this.trailer.digest());
  }

  private async flush(): Promise<void> {
    if (this.used === 0) return;
    const data = this.buffers[this.current].subarray(0, this.used);
    this.trailer.update(data);
    const sent = this.send(data);
    this.inFlight[this.current] = sent;
    this.current ^= 1;
    this.used = 0;
    await this.inFlight[this.current];
    // Backpressure is the other buffer's write: at most two batches are queued at any time.
  }

  private send(data: Buffer): Promise<void> {
    const sent = new Promise<void>((resolve, reject) => {
      this.out.write(data, (err) => (err ? reject(err) : resolve()));
    });
    // Awaited later (before the buffer is reused); a failure must not count as unhandled meanwhile.
    sent.catch(() => undefined);
    return sent;
  }
}
