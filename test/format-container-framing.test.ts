/** Container preamble and trailer parsing (docs/FORMAT.md §6.1, §6.5): every structural lie is CORRUPT. */
import t from 'tap';
import { decodePreamble, decodeTrailer, encodePreamble, encodeTrailer, TRAILER_LENGTH } from '../src/format/container';

const containerId = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
const commitment = Buffer.alloc(32, 0xc3);
const preamble = encodePreamble({ containerId, hashLength: 32, commitment, keyId: 'arn:aws:kms:r:1:key/k', wrappedKey: Buffer.alloc(50, 7) });
const v2 = encodePreamble({ version: 2, containerId, hashLength: 32, commitment: null, keyId: 'arn:aws:kms:r:1:key/k', wrappedKey: Buffer.alloc(50, 7) });

t.test('preamble layout, version 3', async (t) => {
  t.equal(preamble.length, 61 + 21 + 50);
  t.equal(preamble.toString('latin1', 0, 4), 'KMSC');
  t.equal(preamble[4], 3, 'version');
  t.equal(preamble[5], 1, 'kind: container');
  t.equal(preamble.readUInt16BE(6), 0, 'flags');
  t.same(preamble.subarray(8, 24), containerId);
  t.equal(preamble[24], 32, 'hash length');
  t.same(preamble.subarray(25, 57), commitment, 'key commitment');
  t.equal(preamble.readUInt16BE(57), 21);
  t.equal(preamble.readUInt16BE(59 + 21), 50);
  const { preamble: p, length } = decodePreamble(Buffer.concat([preamble, Buffer.alloc(100)]), 'c');
  t.equal(length, preamble.length);
  t.same(p, { version: 3, containerId, hashLength: 32, commitment, keyId: 'arn:aws:kms:r:1:key/k', wrappedKey: Buffer.alloc(50, 7) });
  t.throws(() => encodePreamble({ containerId, hashLength: 32, commitment: null, keyId: 'k', wrappedKey: Buffer.alloc(1) }), RangeError, 'a version 3 preamble needs its commitment');
});

t.test('preamble layout, version 2 (still read)', async (t) => {
  t.equal(v2.length, 29 + 21 + 50);
  t.equal(v2[4], 2, 'version');
  t.equal(v2.readUInt16BE(25), 21);
  t.equal(v2.readUInt16BE(27 + 21), 50);
  t.same(decodePreamble(v2, 'c').preamble, { version: 2, containerId, hashLength: 32, commitment: null, keyId: 'arn:aws:kms:r:1:key/k', wrappedKey: Buffer.alloc(50, 7) });
});

t.test('preamble refusals', async (t) => {
  const bad = (from: Buffer, mutate: (b: Buffer) => Buffer, why: RegExp, name: string) =>
    t.throws(() => decodePreamble(mutate(Buffer.from(from)), 'container c'), { code: 'CORRUPT', message: why }, name);
  bad(preamble, (b) => b.subarray(0, 26), /not a kmscrypt container \(too short\)/, 'shorter than the fixed part');
  bad(preamble, (b) => ((b[0] = 0x6b), b), /bad magic/, 'magic');
  bad(preamble, (b) => ((b[5] = 2), b), /not a container/, 'a manifest preamble');
  bad(preamble, (b) => b.subarray(0, 40), /truncated commitment/, 'commitment cut');
  bad(preamble, (b) => b.subarray(0, 59 + 10), /truncated key ID/, 'key ID cut');
  bad(preamble, (b) => (b.writeUInt16BE(0xffff, 57), b), /truncated key ID/, 'key ID length beyond the bytes');
  bad(preamble, (b) => b.subarray(0, b.length - 1), /truncated wrapped key/, 'wrapped key cut');
  bad(preamble, (b) => (b.writeUInt16BE(51, 59 + 21), b), /truncated wrapped key/, 'wrapped key length beyond the bytes');
  bad(v2, (b) => b.subarray(0, 27 + 10), /truncated key ID/, 'version 2: key ID cut');
  bad(v2, (b) => (b.writeUInt16BE(51, 27 + 21), b), /truncated wrapped key/, 'version 2: wrapped key length beyond the bytes');
});

t.test('trailer layout and refusals', async (t) => {
  const trailer = encodeTrailer(1000, 76);
  t.equal(trailer.length, TRAILER_LENGTH);
  t.equal(trailer.length, 24);
  t.equal(Number(trailer.readBigUInt64BE(0)), 1000);
  t.equal(Number(trailer.readBigUInt64BE(8)), 76);
  t.equal(trailer.toString('latin1', 16), 'KMSCEND1');
  t.same(decodeTrailer(trailer, 1100, 'c'), { indexOffset: 1000, indexLength: 76 });
  t.throws(() => decodeTrailer(trailer, 1101, 'c'), { code: 'CORRUPT', message: /does not match its size/ }, 'container longer');
  t.throws(() => decodeTrailer(trailer, 1099, 'c'), { code: 'CORRUPT', message: /does not match its size/ }, 'container shorter');
  t.throws(() => decodeTrailer(trailer.subarray(1), 1100, 'c'), { code: 'CORRUPT', message: /trailer is missing/ }, 'short trailer');
  const noMagic = Buffer.from(trailer);
  noMagic[23] ^= 1;
  t.throws(() => decodeTrailer(noMagic, 1100, 'c'), { code: 'CORRUPT', message: /trailer is missing/ }, 'bad magic');
});
