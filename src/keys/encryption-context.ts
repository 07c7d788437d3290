import type { EncryptionContext } from './key-provider';

/**
 * Canonical bytes of an encryption context: entries sorted by key, each key and value
 * UTF-8 and length-prefixed (u16 big-endian), preceded by the entry count. Stable, so it can
 * serve as additional authenticated data.
 */
export function serializeEncryptionContext(context: EncryptionContext): Buffer {
  const keys = Object.keys(context).sort();
  const parts: Buffer[] = [u16(keys.length)];
  for (const key of keys) {
    const k = Buffer.from(key, 'utf8');
    const v = Buffer.from(context[key], 'utf8');
    parts.push(u16(k.length), k, u16(v.length), v);
  }
  return Buffer.concat(parts);
}

export function sameEncryptionContext(a: EncryptionContext, b: EncryptionContext): boolean {
  return serializeEncryptionContext(a).equals(serializeEncryptionContext(b));
}

function u16(n: number): Buffer {
  if (n > 0xffff) throw new RangeError('encryption context entry too long');
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}
