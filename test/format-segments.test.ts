/**
 * Segments, format version 2 (docs/FORMAT.md §5.6, §6.4): small GCM records sealed together.
 * The expected bytes are computed here from the specification with node:crypto alone, not with
 * src/format, so that a silent change of key, nonce, AAD or layout fails.
 */
import t from 'tap';
import { createCipheriv, hkdfSync } from 'node:crypto';
import { isKmscryptError } from '../src/errors';
import { GCM_LIMIT, SEGMENT_TARGET } from '../src/format/constants';
import { decodeIndex, encodeIndex, IndexEntry } from '../src/format/container-index';
import { recordKeys } from '../src/format/record';
import { openSegment, sealSegment, segmentAad } from '../src/format/segment';
import { planRuns } from '../src/remote/container-reader';
import { encodeVarint } from '../src/format/varint';
import { outcome } from './support/outcome';

const dataKey = Buffer.from(Array.from({ length: 32 }, (_, i) => i * 7));
const repositoryId = '5d1c7a2e-8b3f-4c6d-9e0a-1b2c3d4e5f60';
const containerId = Buffer.from('f0e1d2c3b4a5968778695a4b3c2d1e0f', 'hex');
const keys = recordKeys(dataKey, repositoryId, containerId);
const payloads = [Buffer.from('first payload'), Buffer.alloc(0), Buffer.from('third, a little longer than the first')];

/** docs/FORMAT.md §5.6, written out independently. */
function expectedSegment(firstSeq: number, parts: Buffer[]): Buffer {
  const key = Buffer.from(hkdfSync('sha256', dataKey, containerId, 'kmscrypt/1 segment', 32));
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(BigInt(firstSeq), 4);
  const repo = Buffer.from(repositoryId, 'utf8');
  const seq = Buffer.alloc(8);
  seq.writeBigUInt64BE(BigInt(firstSeq));
  const aad = Buffer.concat([Buffer.from('kmscrypt/2 segment'), Buffer.from([0, repo.length]), repo, containerId, seq]);
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  const ct = Buffer.concat([cipher.update(Buffer.concat(parts)), cipher.final()]);
  return Buffer.concat([ct, cipher.getAuthTag()]);
}


t.test('a segment is the specified AES-256-GCM of its payloads, one tag at the end', async (t) => {
  t.equal(SEGMENT_TARGET, 65536);
  const sealed = sealSegment(keys, 7, payloads);
  t.equal(sealed.toString('hex'), expectedSegment(7, payloads).toString('hex'), 'bytes as specified');
  t.equal(sealed.length, payloads.reduce((n, p) => n + p.length, 0) + 16, 'payloads + 16 bytes');
  t.equal(segmentAad(keys, 7).length, 18 + 2 + 36 + 16 + 8);
  t.same(openSegment(keys, 7, sealed, 'segment'), Buffer.concat(payloads), 'opens to the payloads');
  const altered = Buffer.from(sealed);
  altered[0] ^= 1;
  t.throws(() => openSegment(keys, 7, altered, 'segment'), { code: 'TAMPERED', data: { scope: 'segment' } }, 'the failing scope is data');
});

t.test('every flipped bit, truncation or extension of a segment is TAMPERED', async (t) => {
  const sealed = sealSegment(keys, 3, payloads);
  const seen = new Set<string>();
  for (let i = 0; i < sealed.length; i++) {
    for (const bit of [0x01, 0x80]) {
      const copy = Buffer.from(sealed);
      copy[i] ^= bit;
      seen.add(outcome(() => openSegment(keys, 3, copy, 'segment')));
    }
  }
  for (let n = 0; n < sealed.length; n++) seen.add(outcome(() => openSegment(keys, 3, sealed.subarray(0, n), 'segment')));
  seen.add(outcome(() => openSegment(keys, 3, Buffer.concat([sealed, Buffer.alloc(1)]), 'segment')));
  t.same([...seen], ['TAMPERED']);
});

t.test('a segment opened at another position, in another container or repository, or under another key is TAMPERED', async (t) => {
  const sealed = sealSegment(keys, 3, payloads);
  t.equal(outcome(() => openSegment(keys, 4, sealed, 's')), 'TAMPERED', 'another first record');
  const otherContainer = Buffer.from(containerId);
  otherContainer[15] ^= 1;
  t.equal(outcome(() => openSegment(recordKeys(dataKey, repositoryId, otherContainer), 3, sealed, 's')), 'TAMPERED', 'another container');
  t.equal(outcome(() => openSegment(recordKeys(dataKey, '5d1c7a2e-8b3f-4c6d-9e0a-1b2c3d4e5f61', containerId), 3, sealed, 's')), 'TAMPERED', 'another repository');
  t.equal(outcome(() => openSegment(recordKeys(Buffer.alloc(32, 9), repositoryId, containerId), 3, sealed, 's')), 'TAMPERED', 'another data key');
  t.match(String((() => { try { openSegment(keys, 4, sealed, 'segment of 3 objects'); } catch (e) { return (e as Error).message; } return undefined; })()), /^segment of 3 objects failed authentication: .*nothing was handed to git/);
});

const oid = (n: number) => Buffer.alloc(20, n);
const small = (n: number, length: number, endsSegment = false): IndexEntry => ({ oid: oid(n), type: 3, size: length * 2, sealedLength: length + (endsSegment ? 16 : 0), endsSegment });
const cbc = (n: number): IndexEntry => ({ oid: oid(n), type: 3, size: GCM_LIMIT, sealedLength: 16 + (GCM_LIMIT / 16 + 1) * 16 + 32 });

t.test('a version 2 index names segments: units, payload lengths and runs of whole units', async (t) => {
  // Segment 0-2, CBC record 3, segment 4, segment 5-6.
  const entries = [small(1, 100), small(2, 50), small(3, 30, true), cbc(4), small(5, 70000, true), small(6, 10), small(7, 20, true)];
  const recordsStart = 50;
  const recordsEnd = recordsStart + entries.reduce((n, e) => n + e.sealedLength, 0);
  const index = decodeIndex(encodeIndex(20, recordsStart, entries), recordsEnd, 'test', 2);
  t.same([...index.unitFirst], [0, 0, 0, 3, 4, 5, 5]);
  t.same([0, 1, 2, 3, 4, 5, 6].map((i) => index.unitLast(i)), [2, 2, 2, 3, 4, 6, 6]);
  t.same([0, 1, 2, 4, 5, 6].map((i) => index.payloadLength(i)), [100, 50, 30, 70000, 10, 20]);
  t.same([0, 1, 2, 3].map((i) => index.inSegment(i)), [true, true, true, false]);
  t.same(planRuns(index, [1]), [{ first: 0, last: 2, large: false }], 'one record of a segment reads the whole segment');
  t.same(planRuns(index, [5, 6]), [{ first: 5, last: 6, large: false }], 'records of one segment are one read');
  t.same(planRuns(index, [0, 1, 2, 5], 8 << 20), [{ first: 0, last: 6, large: false }], 'nearby units merge into one read');
  t.same(planRuns(index, [6], 0), [{ first: 5, last: 6, large: false }]);
  t.same(planRuns(index, [2, 6], 0).map((r) => [r.first, r.last]), [[0, 2], [5, 6]], 'a gap larger than allowed splits the reads');

  const v1 = decodeIndex(encodeIndex(20, recordsStart, entries), recordsEnd, 'test', 1);
  t.same([0, 1, 2].map((i) => v1.unitLast(i)), [0, 1, 2], 'in version 1 every record is a unit');
  t.equal(v1.payloadLength(2), 46, 'version 1 has no segment tags');
});

t.test('a version 2 index whose segments do not close, or close on a CBC record, is CORRUPT', async (t) => {
  const head = (count: number) => {
    const b = Buffer.alloc(9);
    b.writeUInt8(20, 0);
    b.writeUInt32BE(count, 1);
    b.writeUInt32BE(0, 5);
    return b;
  };
  const raw = (n: number, flags: number, size: number, length: number) => {
    const s: number[] = [];
    encodeVarint(size, s);
    encodeVarint(length, s);
    return Buffer.concat([oid(n), Buffer.from([flags]), Buffer.from(s)]);
  };
  const refusal = (entries: Buffer[], recordsEnd: number) => {
    try {
      decodeIndex(Buffer.concat([head(entries.length), ...entries]), recordsEnd, 'test', 2);
      return 'accepted';
    } catch (err) {
      return isKmscryptError(err, 'CORRUPT') ? err.message : `not CORRUPT: ${String(err)}`;
    }
  };
  const cbcLength = 16 + (GCM_LIMIT / 16 + 1) * 16 + 32;
  t.equal(refusal([raw(1, 0x23, 10, 26)], 26), 'accepted', 'baseline: one closed segment');
  t.match(refusal([raw(1, 0x03, 10, 26)], 26), /the last segment is not closed/);
  t.match(refusal([raw(1, 0x03, 10, 26), raw(2, 0x0b, GCM_LIMIT, cbcLength)], 26 + cbcLength), /the segment before entry 1 is not closed/);
  t.match(refusal([raw(1, 0x2b, GCM_LIMIT, cbcLength)], cbcLength), /entry 0 is a CBC record marked as the end of a segment/);
  t.match(refusal([raw(1, 0x23, 10, 15)], 15), /entry 0 is too short to hold a segment tag/);
});
