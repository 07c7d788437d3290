/** Pack indexes (.idx, version 2) built by hand for the tests of their readers. */

/** A version 2 index built by hand: names sorted, with one offset in the 64-bit table. */
export function handIndex(items: Array<{ oid: Buffer; offset: number }>, hashLength: number): Buffer {
  const sorted = [...items].sort((a, b) => Buffer.compare(a.oid, b.oid));
  const fanout = Buffer.alloc(1024);
  for (let b = 0; b < 256; b++) fanout.writeUInt32BE(sorted.filter((i) => i.oid[0] <= b).length, b * 4);
  const small = Buffer.alloc(sorted.length * 4);
  const large: Buffer[] = [];
  sorted.forEach((item, i) => {
    if (item.offset < 0x80000000) small.writeUInt32BE(item.offset, i * 4);
    else {
      small.writeUInt32BE(0x80000000 + large.length, i * 4);
      const l = Buffer.alloc(8);
      l.writeBigUInt64BE(BigInt(item.offset));
      large.push(l);
    }
  });
  return Buffer.concat([
    Buffer.from('ff744f6300000002', 'hex'),
    fanout,
    ...sorted.map((i) => i.oid),
    Buffer.alloc(sorted.length * 4),
    small,
    ...large,
    Buffer.alloc(2 * hashLength),
  ]);
}
