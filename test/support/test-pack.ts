/**
 * A pack and its version 2 .idx written in this process from objects given as bytes, for the unit
 * tests that store real containers (storeContainer seals a pack as git writes one) without git.
 * Deltas are REF_DELTA entries of insert instructions only: valid deltas, not small ones.
 * The writer's output is read by our own readers; the tests that compare with git itself use real
 * packs (pack-format-vs-git, pack-index-file-vs-git).
 */
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { objectId } from '../../src/git/git-object';
import { encodeEntryHeader, OBJ_BLOB, OBJ_REF_DELTA, packHeader } from '../../src/git/pack-format';
import type { WrittenPack } from '../../src/git/pack-objects';

export interface TestObject {
  /** OBJ_COMMIT … OBJ_TAG; blobs by default. */
  type?: number;
  data: Buffer;
  /** Stored as a delta against this object of the same pack or of another (its ID and bytes). */
  deltaOf?: { oid: string; data: Buffer };
}

export interface TestPack {
  pack: WrittenPack;
  /** Object IDs, in the order given. */
  oids: string[];
}

const HASH = 'sha1';

/** A blob's ID and bytes, for assertions and as a delta base. */
export function blob(text: string): { oid: string; data: Buffer } {
  const data = Buffer.from(text);
  return { oid: objectId(OBJ_BLOB, data, HASH), data };
}

/** Writes `name`.pack and `name`.idx (SHA-1 objects) into `dir`. */
export function writeTestPack(dir: string, name: string, objects: TestObject[]): TestPack {
  const parts: Buffer[] = [packHeader(objects.length)];
  let offset = parts[0].length;
  const entries: Array<{ oid: Buffer; offset: number }> = [];
  const oids: string[] = [];
  for (const o of objects) {
    const type = o.type ?? OBJ_BLOB;
    const oid = objectId(type, o.data, HASH);
    oids.push(oid);
    entries.push({ oid: Buffer.from(oid, 'hex'), offset });
    const payload = o.deltaOf ? insertOnlyDelta(o.deltaOf.data.length, o.data) : o.data;
    const head = o.deltaOf ? encodeEntryHeader(OBJ_REF_DELTA, payload.length, Buffer.from(o.deltaOf.oid, 'hex')) : encodeEntryHeader(type, payload.length);
    const body = deflateSync(payload);
    parts.push(head, body);
    offset += head.length + body.length;
  }
  const content = Buffer.concat(parts);
  const checksum = createHash(HASH).update(content).digest();
  const packPath = join(dir, `${name}.pack`);
  const idxPath = join(dir, `${name}.idx`);
  writeFileSync(packPath, Buffer.concat([content, checksum]));
  writeFileSync(idxPath, indexV2(entries, checksum));
  return { pack: { packPath, idxPath, entriesEnd: content.length }, oids };
}

/** A delta that inserts `result` in chunks of at most 127 bytes (the largest insert instruction). */
function insertOnlyDelta(baseSize: number, result: Buffer): Buffer {
  const ops: Buffer[] = [varint(baseSize), varint(result.length)];
  for (let at = 0; at < result.length; at += 127) {
    const chunk = result.subarray(at, at + 127);
    ops.push(Buffer.from([chunk.length]), chunk);
  }
  return Buffer.concat(ops);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Buffer.from(out);
}

/** A version 2 index: fan-out, sorted names, CRCs (zero: nothing of ours reads them), 32-bit offsets, checksums. */
function indexV2(entries: Array<{ oid: Buffer; offset: number }>, packChecksum: Buffer): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(a.oid, b.oid));
  const fanout = Buffer.alloc(1024);
  for (let b = 0; b < 256; b++) fanout.writeUInt32BE(sorted.filter((e) => e.oid[0] <= b).length, b * 4);
  const offsets = Buffer.alloc(sorted.length * 4);
  sorted.forEach((e, i) => offsets.writeUInt32BE(e.offset, i * 4));
  const body = Buffer.concat([
    Buffer.from('ff744f6300000002', 'hex'),
    fanout,
    ...sorted.map((e) => e.oid),
    Buffer.alloc(sorted.length * 4),
    offsets,
    packChecksum,
  ]);
  return Buffer.concat([body, createHash(HASH).update(body).digest()]);
}
