/**
 * Git's pack entry header: type and inflated size, then for OFS_DELTA a relative base offset
 * and for REF_DELTA a base object ID. Pure functions over bytes.
 */
export const OBJ_COMMIT = 1;
export const OBJ_TREE = 2;
export const OBJ_BLOB = 3;
export const OBJ_TAG = 4;
export const OBJ_OFS_DELTA = 6;
export const OBJ_REF_DELTA = 7;

export interface PackEntryHeader {
  type: number;
  size: number;
  /** Length of the header bytes, base reference included. */
  headerLength: number;
  /** For OFS_DELTA: absolute offset of the base entry. */
  baseOffset?: number;
  /** For REF_DELTA: raw base object ID. */
  baseOid?: Buffer;
}

/** Parses the header of the entry at `offset`; `buf` holds bytes starting at `offset`. */
export function parseEntryHeader(buf: Buffer, offset: number, hashLength: number): PackEntryHeader {
  let pos = 0;
  const need = (n: number) => {
    if (pos + n > buf.length) throw new RangeError('truncated pack entry header');
  };
  need(1);
  let byte = buf[pos++];
  const type = (byte >> 4) & 7;
  let size = byte & 0x0f;
  let shift = 16;
  while (byte & 0x80) {
    need(1);
    byte = buf[pos++];
    size += (byte & 0x7f) * shift;
    shift *= 128;
  }
  if (type === OBJ_OFS_DELTA) {
    need(1);
    byte = buf[pos++];
    let rel = byte & 0x7f;
    while (byte & 0x80) {
      need(1);
      byte = buf[pos++];
      rel = (rel + 1) * 128 + (byte & 0x7f);
    }
    if (rel <= 0 || rel > offset) throw new RangeError('OFS_DELTA base outside the pack');
    return { type, size, headerLength: pos, baseOffset: offset - rel };
  }
  if (type === OBJ_REF_DELTA) {
    need(hashLength);
    const baseOid = Buffer.from(buf.subarray(pos, pos + hashLength));
    return { type, size, headerLength: pos + hashLength, baseOid };
  }
  if (type < OBJ_COMMIT || type > OBJ_TAG) throw new RangeError(`invalid pack object type ${type}`);
  return { type, size, headerLength: pos };
}

/** Encodes an entry header: type 1-4 for whole objects, 7 (REF_DELTA) with a base ID. */
export function encodeEntryHeader(type: number, size: number, baseOid?: Buffer): Buffer {
  const out = Buffer.allocUnsafe(MAX_ENTRY_HEADER);
  return out.subarray(0, writeEntryHeader(out, 0, type, size, baseOid));
}

/** The longest entry header: 10 bytes of type and size (a size below 2^64), then a SHA-256 base ID. */
export const MAX_ENTRY_HEADER = 10 + 32;

/** Writes an entry header at `at` in `out` (room for MAX_ENTRY_HEADER bytes); returns where it ends. */
export function writeEntryHeader(out: Buffer, at: number, type: number, size: number, baseOid?: Buffer): number {
  let byte = (type << 4) | (size & 0x0f);
  let rest = Math.floor(size / 16);
  while (rest > 0) {
    out[at++] = byte | 0x80;
    byte = rest & 0x7f;
    rest = Math.floor(rest / 128);
  }
  out[at++] = byte;
  if (type === OBJ_REF_DELTA && baseOid) at += baseOid.copy(out, at);
  return at;
}

export function packHeader(count: number): Buffer {
  const h = Buffer.alloc(12);
  h.write('PACK', 0, 'latin1');
  h.writeUInt32BE(2, 4);
  h.writeUInt32BE(count, 8);
  return h;
}
