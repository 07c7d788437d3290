/**
 * git's delta format (the data of an OFS_DELTA or REF_DELTA pack entry, inflated): the base's
 * size and the result's size as little-endian base-128 varints, then copy instructions (high
 * bit set: offset and length bytes chosen by the low seven bits) and insert instructions (1-127
 * literal bytes). Pure functions over bytes; every length stated inside is checked first.
 */

/** The two sizes at the start of a delta, and where the instructions begin. */
export interface DeltaHeader {
  baseSize: number;
  resultSize: number;
  instructionsAt: number;
}

export function parseDeltaHeader(delta: Buffer): DeltaHeader {
  let pos = 0;
  const size = () => {
    let value = 0;
    let scale = 1;
    for (;;) {
      if (pos >= delta.length) throw new RangeError('truncated delta header');
      const byte = delta[pos++];
      value += (byte & 0x7f) * scale;
      if (!Number.isSafeInteger(value)) throw new RangeError('delta size overflow');
      if ((byte & 0x80) === 0) return value;
      scale *= 128;
    }
  };
  const baseSize = size();
  const resultSize = size();
  return { baseSize, resultSize, instructionsAt: pos };
}

/** The object a delta produces from `base`; RangeError when the delta does not fit the base. */
export function applyDelta(base: Buffer, delta: Buffer): Buffer {
  const { baseSize, resultSize, instructionsAt } = parseDeltaHeader(delta);
  if (baseSize !== base.length) throw new RangeError(`delta expects a base of ${baseSize} bytes, the base has ${base.length}`);
  const out = Buffer.allocUnsafe(resultSize);
  let written = 0;
  let pos = instructionsAt;
  while (pos < delta.length) {
    const op = delta[pos++];
    if (op & 0x80) {
      let offset = 0;
      let length = 0;
      for (let bit = 0; bit < 4; bit++) {
        if (op & (1 << bit)) {
          if (pos >= delta.length) throw new RangeError('truncated delta copy instruction');
          offset += delta[pos++] * 2 ** (8 * bit);
        }
      }
      for (let bit = 0; bit < 3; bit++) {
        if (op & (0x10 << bit)) {
          if (pos >= delta.length) throw new RangeError('truncated delta copy instruction');
          length |= delta[pos++] << (8 * bit);
        }
      }
      if (length === 0) length = 0x10000;
      if (offset + length > base.length || written + length > resultSize) throw new RangeError('delta copies outside its base or result');
      base.copy(out, written, offset, offset + length);
      written += length;
    } else if (op !== 0) {
      if (pos + op > delta.length || written + op > resultSize) throw new RangeError('delta inserts past its end');
      delta.copy(out, written, pos, pos + op);
      pos += op;
      written += op;
    } else {
      throw new RangeError('delta has the reserved instruction 0');
    }
  }
  if (written !== resultSize) throw new RangeError(`delta produced ${written} bytes, its header says ${resultSize}`);
  return out;
}
