/**
 * A parsed .idx (version 2). Entries are numbered in pack order (ascending offset), which is
 * the order a pack is read in; lookups by object ID use the file's own sorted name table.
 */
export class PackIndexFile {
  readonly count: number;
  readonly hashLength: number;
  /** Offsets in pack order, ascending. */
  readonly offsets: Float64Array;
  private readonly names: Buffer;
  /** Name-table position of the entry at each pack-order position. */
  private readonly order: Uint32Array;
  /** Pack-order position of each name-table position. */
  private readonly rank: Uint32Array;

  constructor(buf: Buffer, hashLength: number) {
    if (buf.length < 8 + 1024 || buf.readUInt32BE(0) !== 0xff744f63 || buf.readUInt32BE(4) !== 2) {
      throw new RangeError('not a version 2 pack index');
    }
    this.hashLength = hashLength;
    const count = buf.readUInt32BE(8 + 255 * 4);
    const namesAt = 8 + 1024;
    const offsetsAt = namesAt + count * hashLength + count * 4;
    const largeAt = offsetsAt + count * 4;
    if (buf.length < largeAt + 2 * hashLength) throw new RangeError('truncated pack index');
    this.count = count;
    this.names = buf.subarray(namesAt, namesAt + count * hashLength);
    const byName = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const off = buf.readUInt32BE(offsetsAt + i * 4);
      byName[i] = off & 0x80000000 ? Number(buf.readBigUInt64BE(largeAt + (off & 0x7fffffff) * 8)) : off;
    }
    this.order = new Uint32Array(count);
    for (let i = 0; i < count; i++) this.order[i] = i;
    this.order.sort((a, b) => byName[a] - byName[b]);
    this.rank = new Uint32Array(count);
    this.offsets = new Float64Array(count);
    for (let k = 0; k < count; k++) {
      this.rank[this.order[k]] = k;
      this.offsets[k] = byName[this.order[k]];
    }
  }

  /** Object ID of the entry at pack-order position k. */
  oid(k: number): Buffer {
    const i = this.order[k];
    return this.names.subarray(i * this.hashLength, (i + 1) * this.hashLength);
  }

  /** Pack-order position of an object, or -1. */
  positionOf(oid: Buffer): number {
    let lo = 0;
    let hi = this.count - 1;
    const h = this.hashLength;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const c = this.names.compare(oid, 0, h, mid * h, (mid + 1) * h);
      if (c === 0) return this.rank[mid];
      if (c > 0) hi = mid - 1;
      else lo = mid + 1;
    }
    return -1;
  }

  /** Pack-order position of the entry at exactly `offset`, or -1. */
  positionAtOffset(offset: number): number {
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.offsets[mid] === offset) return mid;
      if (this.offsets[mid] < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }
}
