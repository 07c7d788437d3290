/** Unsigned LEB128 varints of the container index (docs/FORMAT.md §1). */
import t from 'tap';
import { decodeVarint, encodeVarint } from '../src/format/varint';

const enc = (n: number) => {
  const out: number[] = [];
  encodeVarint(n, out);
  return Buffer.from(out).toString('hex');
};

t.test('known encodings', async (t) => {
  t.equal(enc(0), '00');
  t.equal(enc(1), '01');
  t.equal(enc(127), '7f');
  t.equal(enc(128), '8001');
  t.equal(enc(300), 'ac02');
  t.equal(enc(16383), 'ff7f');
  t.equal(enc(16384), '808001');
  t.equal(enc(6 * 2 ** 20), '80808003');
  t.equal(enc(2 ** 31), '8080808008');
  t.equal(enc(2 ** 53 - 1), 'ffffffffffffff0f');
});

t.test('round trips, at an offset, and the next position', async (t) => {
  const values = [0, 1, 127, 128, 255, 256, 16383, 16384, 2 ** 21 - 1, 2 ** 21, 2 ** 28, 2 ** 31, 2 ** 32 + 5, 2 ** 49, 2 ** 53 - 1];
  const out: number[] = [0xee, 0xee];
  for (const v of values) encodeVarint(v, out);
  out.push(0xee);
  const buf = Buffer.from(out);
  let pos = 2;
  for (const v of values) {
    const [value, next] = decodeVarint(buf, pos);
    t.equal(value, v);
    t.equal(next - pos, enc(v).length / 2, `${v} takes ${enc(v).length / 2} bytes`);
    pos = next;
  }
  t.equal(pos, buf.length - 1, 'stops before the byte after the last varint');
});

t.test('encodeVarint refuses what is not a safe non-negative integer', async (t) => {
  for (const bad of [-1, 0.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY]) {
    t.throws(() => encodeVarint(bad, []), RangeError, String(bad));
  }
});

t.test('decodeVarint refuses truncated, over-long and overflowing input', async (t) => {
  t.throws(() => decodeVarint(Buffer.alloc(0), 0), { name: 'RangeError', message: 'truncated varint' });
  t.throws(() => decodeVarint(Buffer.from([0x80]), 0), { name: 'RangeError', message: 'truncated varint' });
  t.throws(() => decodeVarint(Buffer.from([0x01, 0x80, 0x80]), 1), { name: 'RangeError', message: 'truncated varint' });
  t.throws(() => decodeVarint(Buffer.from([0x01]), 1), { name: 'RangeError', message: 'truncated varint' }, 'position at the end');
  t.throws(() => decodeVarint(Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), 0), { name: 'RangeError', message: 'varint too long' });
  t.throws(() => decodeVarint(Buffer.from('ffffffffffffff10', 'hex'), 0), { name: 'RangeError', message: 'varint overflow' }, '2^53');
  t.same(decodeVarint(Buffer.from('ffffffffffffff0f', 'hex'), 0), [2 ** 53 - 1, 8], '2^53 - 1 is the largest');
});

t.test('non-shortest forms are read (documented: the index is authenticated, so they are harmless)', async (t) => {
  t.same(decodeVarint(Buffer.from([0x80, 0x00]), 0), [0, 2]);
  t.same(decodeVarint(Buffer.from([0x81, 0x80, 0x00]), 0), [1, 3]);
});
