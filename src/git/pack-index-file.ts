/**
 * A parsed .idx (version 2). Entries are numbered in pack order (ascending offset), which is
 * the order a pack is read in; lookups by object ID use the file's own sorted name table.
 */
export class PackIndexFile {
  readonly count: number;
  readonly hashLength: number;
  private readonly buf: Buffer;
  private readonly names: Buffer;
  private readonly fanout = new Uint32Array(256);
  /** First four bytes of each name, so that most comparisons of a lookup stay in JavaScript (made at the first lookup). */
  private prefixTable?: Uint32Array;
  private packOrder?: { offsets: Float64Array; order: Uint32Array; rank: Uint32Array };

  constructor(buf: Buffer, hashLength: number) {
    if (buf.length < 8 + 1024 || buf.readUInt32BE(0) !== 0xff744f63 || buf.readUInt32BE(4) !== 2) {
      throw new RangeError('not a version 2 pack index');
    }
    this.buf = buf;
    this.hashLength = hashLength;
    for (let b = 0; b < 256; b++) this.fanout[b] = buf.readUInt32BE(8 + b * 4);
    const count = this.fanout[255];
    const namesAt = 8 + 1024;
    const largeAt = namesAt + count * hashLength + count * 8;
    if (buf.length < largeAt + 2 * hashLength) throw new RangeError('truncated pack index');
    this.count = count;
    this.names = buf.subarray(namesAt, namesAt + count * hashLength);
  }

  private get prefixes(): Uint32Array {
    if (!this.prefixTable) {
      this.prefixTable = new Uint32Array(this.count);
      for (let i = 0; i < this.count; i++) this.prefixTable[i] = this.names.readUInt32BE(i * this.hashLength);
    }
    return this.prefixTable;
  }

  /** Offsets in pack order, ascending. */
  get offsets(): Float64Array {
    return this.inPackOrder().offsets;
  }

  /** Object ID of the entry at pack-order position k. */
  oid(k: number): Buffer {
    const i = this.inPackOrder().order[k];
    return this.names.subarray(i * this.hashLength, (i + 1) * this.hashLength);
  }

  /** Whether the pack holds the object. */
  has(oid: Buffer): boolean {
    return this.nameIndex(oid) >= 0;
  }

  /** Whether the pack holds the object whose ID is at `ids[at, at + hashLength)` (no copy made). */
  hasAt(ids: Buffer, at: number): boolean {
    return this.nameIndex(ids, at) >= 0;
  }

  /** Whether the pack holds exactly these objects: `sortedIds` is their IDs, sorted, back to back (the name table's form). */
  hasExactly(sortedIds: Buffer): boolean {
    return this.names.equals(sortedIds);
  }

  /** Pack-order position of an object, or -1. */
  positionOf(oid: Buffer): number {
    const i = this.nameIndex(oid);
    return i < 0 ? -1 : this.inPackOrder().rank[i];
  }

  /** Pack-order position of the entry at exactly `offset`, or -1. */
  positionAtOffset(offset: number): number {
    const { offsets } = this.inPackOrder();
    let lo = 0;
    let hi = this.count - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (offsets[mid] === offset) return mid;
      if (offsets[mid] < offset) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Position in the sorted name table, or -1: the fanout narrows the search to one first byte. */
  private nameIndex(oid: Buffer, at = 0): number {
    const h = this.hashLength;
    const first = oid[at];
    let lo = first === 0 ? 0 : this.fanout[first - 1];
    let hi = this.fanout[first] - 1;
    const prefix = oid.readUInt32BE(at);
    const prefixes = this.prefixes;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const p = prefixes[mid];
      const c = p !== prefix ? (p < prefix ? -1 : 1) : this.names.compare(oid, at, at + h, mid * h, (mid + 1) * h);
      if (c === 0) return mid;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  /** Pack order costs a sort: worked out only for callers that walk the pack. */
  private inPackOrder(): { offsets: Float64Array; order: Uint32Array; rank: Uint32Array } {
    if (this.packOrder) return this.packOrder;
    const { count, buf, hashLength } = this;
    const offsetsAt = 8 + 1024 + count * hashLength + count * 4;
    const largeAt = offsetsAt + count * 4;
    const byName = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const off = buf.readUInt32BE(offsetsAt + i * 4);
      byName[i] = off & 0x80000000 ? Number(buf.readBigUInt64BE(largeAt + (off & 0x7fffffff) * 8)) : off;
    }
    const order = new Uint32Array(count);
    for (let i = 0; i < count; i++) order[i] = i;
    order.sort((a, b) => byName[a] - byName[b]);
    const rank = new Uint32Array(count);
    const offsets = new Float64Array(count);
    for (let k = 0; k < count; k++) {
      rank[order[k]] = k;
      offsets[k] = byName[order[k]];
    }
    this.packOrder = { offsets, order, rank };
    return this.packOrder;
  }
}
