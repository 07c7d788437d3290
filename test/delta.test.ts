/**
 * git deltas (src/git/delta.ts): hand-made copy and insert instructions and every refusal. The
 * deltas of a real pack are applied against `git cat-file` in delta-vs-git.test.ts.
 */
import t from 'tap';
import { applyDelta, parseDeltaHeader } from '../src/git/delta';

/** A delta: base size, result size (little-endian base-128), then the instructions. */
function delta(baseSize: number, resultSize: number, ...ops: number[]): Buffer {
  const varint = (n: number) => {
    const out: number[] = [];
    do {
      out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
      n >>>= 7;
    } while (n > 0);
    return out;
  };
  return Buffer.from([...varint(baseSize), ...varint(resultSize), ...ops]);
}

t.test('copy and insert instructions', async (t) => {
  const base = Buffer.from('hello, world');
  // copy 5 bytes at 0, insert "!!", copy 5 bytes at 7
  const d = delta(12, 12, 0x90, 5, 2, 0x21, 0x21, 0x91, 7, 5);
  t.equal(applyDelta(base, d).toString(), 'hello!!world');
  t.same(parseDeltaHeader(d), { baseSize: 12, resultSize: 12, instructionsAt: 2 });
});

t.test('a copy with offset and length bytes selected by the low bits, and length 0 meaning 0x10000', async (t) => {
  const base = Buffer.alloc(0x30000);
  for (let i = 0; i < base.length; i++) base[i] = i % 251;
  // offset 0x010203 (bytes 0,1,2 set: 0x07), no length byte: 0x10000
  const d = delta(base.length, 0x10000, 0x87, 0x03, 0x02, 0x01);
  t.ok(applyDelta(base, d).equals(base.subarray(0x010203, 0x010203 + 0x10000)));
  // offset byte 1 only (0x02) and length byte 2 only (0x40): offset 0x0100, length 0x010000
  t.ok(applyDelta(base, delta(base.length, 0x10000, 0xc2, 0x01, 0x01)).equals(base.subarray(0x100, 0x10100)));
});

t.test('refusals: base size, result size, reserved instruction, truncation, copies out of range', async (t) => {
  const base = Buffer.from('0123456789');
  t.throws(() => applyDelta(base, delta(9, 1, 0x01, 0x41)), { message: /expects a base of 9 bytes/ });
  t.throws(() => applyDelta(base, delta(10, 2, 0x01, 0x41)), { message: /produced 1 bytes, its header says 2/ });
  t.throws(() => applyDelta(base, delta(10, 1, 0x00)), { message: /reserved instruction/ });
  t.throws(() => applyDelta(base, delta(10, 3, 0x03, 0x41)), { message: /inserts past its end/ });
  t.throws(() => applyDelta(base, delta(10, 5, 0x91, 8)), { message: /truncated delta copy/ });
  t.throws(() => applyDelta(base, delta(10, 5, 0x91, 8, 5)), { message: /outside its base/ });
  t.throws(() => applyDelta(base, delta(10, 3, 0x90, 5)), { message: /outside its base or result/ });
  t.throws(() => parseDeltaHeader(Buffer.from([0x80])), { message: /truncated delta header/ });
});
