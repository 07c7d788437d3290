/** Unsigned LEB128, for non-negative integers up to 2^53: appends the bytes of n to `out`. */
export function encodeVarint(n: number, out: number[]): void {
  const bytes = Buffer.allocUnsafe(8);
  const end = writeVarint(bytes, 0, n);
  for (let i = 0; i < end; i++) out.push(bytes[i]);
}

/**
 * Writes n at `pos` of `buf` (which must have room: at most 8 bytes) and returns the position
 * after it. The in-place form, for writers of many entries; encodeVarint appends to an array.
 */
export function writeVarint(buf: Buffer, pos: number, n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`varint out of range: ${n}`);
  while (n >= 0x80) {
    buf[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  buf[pos++] = n;
  return pos;
}

/** A read position in a buffer, advanced by readVarint. */
export interface Cursor {
  pos: number;
}

/**
 * Reads a varint at `at.pos` and advances it; throws RangeError on truncation or overflow.
 * The cursor (rather than a returned pair) keeps index decoding free of an allocation per field.
 */
export function readVarint(buf: Buffer, at: Cursor): number {
  let pos = at.pos;
  let result = 0;
  let scale = 1;
  for (let i = 0; i < 8; i++) {
    if (pos >= buf.length) throw new RangeError('truncated varint');
    const byte = buf[pos++];
    result += (byte & 0x7f) * scale;
    if (!Number.isSafeInteger(result)) throw new RangeError('varint overflow');
    if ((byte & 0x80) === 0) {
      at.pos = pos;
      return result;
    }
    scale *= 0x80;
  }
  throw new RangeError('varint too long');
}

/** Returns [value, next position]; throws RangeError on truncation or overflow. */
export function decodeVarint(buf: Buffer, pos: number): [number, number] {
  const at = { pos };
  const value = readVarint(buf, at);
  return [value, at.pos];
}
