import { KmscryptError } from '../errors';

/**
 * Reads a plaintext structure field by field (docs/FORMAT.md §1: big-endian integers, u16
 * length prefixes). Every length is checked against the bytes present before it is used: a
 * truncated or inflated field is CORRUPT, never a read past the end.
 */
export class ByteCursor {
  private at: number;

  constructor(
    private readonly buf: Buffer,
    private readonly bad: (why: string) => KmscryptError,
    start = 0,
  ) {
    this.at = start;
  }

  get offset(): number {
    return this.at;
  }

  u8(): number {
    this.need(1);
    return this.buf.readUInt8(this.at++);
  }

  u16(): number {
    this.need(2);
    const v = this.buf.readUInt16BE(this.at);
    this.at += 2;
    return v;
  }

  /** A u64 that must be a safe integer (at most 2^53 − 1). */
  u64(): number {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.at);
    this.at += 8;
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw this.bad('integer out of range');
    return Number(v);
  }

  /** A copy of the next n bytes. */
  bytes(n: number): Buffer {
    this.need(n);
    const out = Buffer.from(this.buf.subarray(this.at, this.at + n));
    this.at += n;
    return out;
  }

  /** u16 length, then that many bytes. */
  prefixed(): Buffer {
    return this.bytes(this.u16());
  }

  /** u16 length, then that many bytes of UTF-8. */
  prefixedString(): string {
    return this.prefixed().toString('utf8');
  }

  private need(n: number): void {
    if (this.at + n > this.buf.length) throw this.bad('truncated');
  }
}

/** u16 length prefix and the bytes; refuses what does not fit in a u16 (a writer's bug). */
export function prefixed(bytes: Buffer | string): Buffer {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes;
  if (b.length > 0xffff) throw new RangeError('field longer than 65535 bytes');
  const len = Buffer.alloc(2);
  len.writeUInt16BE(b.length);
  return Buffer.concat([len, b]);
}

export function u64(value: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(value));
  return b;
}
