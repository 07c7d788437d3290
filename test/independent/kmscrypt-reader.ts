/**
 * A second, independent implementation of the stored format (docs/FORMAT.md, versions 1 and 2),
 * written from the specification with node:crypto and node:zlib alone. It imports nothing from
 * src/: where it agrees with src/format on every byte, the specification is what both implement.
 * Used by test/format-independent.test.ts on the known-answer vectors and on stores the helper
 * writes. Read-only, local keyring only.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** §4.2: subkey = HKDF-SHA-256(data key, salt, "kmscrypt/1 " || purpose, 32). */
export function subkey(dataKey: Buffer, purpose: string, salt: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', dataKey, salt, Buffer.from(`kmscrypt/1 ${purpose}`), 32));
}

/** §4.1: u16 count, then per key in sorted order u16 len | key | u16 len | value. */
export function encryptionContextBytes(context: Record<string, string>): Buffer {
  const keys = Object.keys(context).sort();
  const parts = [u16(keys.length)];
  for (const k of keys) {
    const kb = Buffer.from(k, 'utf8');
    const vb = Buffer.from(context[k], 'utf8');
    parts.push(u16(kb.length), kb, u16(vb.length), vb);
  }
  return Buffer.concat(parts);
}

/** §4.1, local provider: "KRK1" | master key UUID | IV | tag | AES-256-GCM(master, IV, data key). */
export function unwrapLocal(keyring: { keys: Array<{ keyId: string; material: string }> }, wrapped: Buffer, repositoryId: string): Buffer {
  if (wrapped.subarray(0, 4).toString('latin1') !== 'KRK1' || wrapped.length !== 4 + 16 + 12 + 16 + 32) throw new Error('not a local keyring blob');
  const uuid = wrapped.subarray(4, 20).toString('hex').replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
  const key = keyring.keys.find((k) => k.keyId === uuid);
  if (!key) throw new Error(`master key ${uuid} is not in the keyring`);
  const decipher = createDecipheriv('aes-256-gcm', Buffer.from(key.material, 'base64'), wrapped.subarray(20, 32));
  decipher.setAAD(Buffer.concat([wrapped.subarray(0, 20), encryptionContextBytes({ 'kmscrypt:repository-id': repositoryId })]));
  decipher.setAuthTag(wrapped.subarray(32, 48));
  return Buffer.concat([decipher.update(wrapped.subarray(48)), decipher.final()]);
}

function gcmOpen(key: Buffer, nonce: Buffer, aad: Buffer, sealed: Buffer): Buffer {
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
}

export function gcmSeal(key: Buffer, nonce: Buffer, aad: Buffer, plain: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

/** §5.4: 00 00 00 00 || u64(seq). */
export const recordNonce = (seq: number) => Buffer.concat([Buffer.alloc(4), u64(seq)]);

export interface RecordHeader {
  seq: number;
  type: number;
  size: number;
  oid: Buffer;
  base: Buffer;
}

export const CBC_FROM = 6 * 2 ** 20;

/** §5.3. */
export function recordAad(repositoryId: string, containerId: Buffer, h: RecordHeader): Buffer {
  const repo = Buffer.from(repositoryId, 'utf8');
  const fixed = Buffer.alloc(39);
  fixed.write('kmscrypt/1 record', 0, 'latin1');
  fixed[17] = h.size >= CBC_FROM ? 1 : 0;
  fixed.writeUInt16BE(repo.length, 18);
  fixed.writeBigUInt64BE(BigInt(h.seq), 20);
  fixed[28] = h.type;
  fixed.writeBigUInt64BE(BigInt(h.size), 29);
  fixed[37] = h.oid.length;
  fixed[38] = h.base.length;
  return Buffer.concat([fixed, repo, containerId, h.oid, h.base]);
}

/** §5.5: MAC over AAD || IV || C, compared before decrypting. */
export function openCbc(dataKey: Buffer, repositoryId: string, containerId: Buffer, h: RecordHeader, sealed: Buffer): Buffer {
  const iv = sealed.subarray(0, 16);
  const ct = sealed.subarray(16, sealed.length - 32);
  const mac = createHmac('sha256', subkey(dataKey, 'record-cbc-mac', containerId)).update(recordAad(repositoryId, containerId, h)).update(iv).update(ct).digest();
  if (!timingSafeEqual(mac, sealed.subarray(sealed.length - 32))) throw new Error(`record ${h.seq}: MAC mismatch`);
  const decipher = createDecipheriv('aes-256-cbc', subkey(dataKey, 'record-cbc-enc', containerId), iv);
  return Buffer.concat([decipher.update(ct), decipher.final()]);
}

/** §5.6: a segment's AAD. */
export function segmentAad(repositoryId: string, containerId: Buffer, firstSeq: number): Buffer {
  const repo = Buffer.from(repositoryId, 'utf8');
  return Buffer.concat([Buffer.from('kmscrypt/2 segment', 'latin1'), u16(repo.length), repo, containerId, u64(firstSeq)]);
}

/** §6.3: the index's AAD for container version v. */
export function indexAad(version: number, repositoryId: string, containerId: Buffer): Buffer {
  const repo = Buffer.from(repositoryId, 'utf8');
  return Buffer.concat([Buffer.from(`kmscrypt/${version} index`, 'latin1'), u16(repo.length), repo, containerId]);
}

function readVarint(b: Buffer, at: { pos: number }): number {
  let value = 0;
  let scale = 1;
  for (;;) {
    const byte = b[at.pos++];
    value += (byte & 0x7f) * scale;
    scale *= 128;
    if (!(byte & 0x80)) return value;
  }
}

export interface IndexEntry {
  oid: Buffer;
  type: number;
  size: number;
  length: number;
  offset: number;
  segmentEnd: boolean;
  /** Raw base ID for a delta (a local base resolved to its entry's oid). */
  base: Buffer;
}

/** §6.4. */
export function parseIndex(plain: Buffer): { hashLength: number; recordsStart: number; entries: IndexEntry[] } {
  const h = plain[0];
  const n = plain.readUInt32BE(1);
  const recordsStart = plain.readUInt32BE(5);
  const at = { pos: 9 };
  const raw: Array<IndexEntry & { localBase?: number }> = [];
  let offset = recordsStart;
  for (let i = 0; i < n; i++) {
    const oid = plain.subarray(at.pos, at.pos + h);
    at.pos += h;
    const flags = plain[at.pos++];
    const size = readVarint(plain, at);
    const length = readVarint(plain, at);
    const type = flags & 7;
    let base: Buffer = Buffer.alloc(0);
    let localBase: number | undefined;
    if (type === 7 && flags & 0x10) localBase = readVarint(plain, at);
    else if (type === 7) {
      base = plain.subarray(at.pos, at.pos + h);
      at.pos += h;
    }
    raw.push({ oid, type, size, length, offset, segmentEnd: Boolean(flags & 0x20), base, localBase });
    offset += length;
  }
  if (at.pos !== plain.length) throw new Error('trailing bytes after the index entries');
  const entries = raw.map(({ localBase, ...e }) => ({ ...e, base: localBase === undefined ? e.base : raw[localBase].oid }));
  return { hashLength: h, recordsStart, entries };
}

export interface ContainerRef {
  id: string;
  version?: number;
  size: number;
  indexOffset: number;
  indexLength: number;
  objects: number;
  indexHash: string;
  preambleLength: number;
  preambleHash: string;
  wrappedKey: string;
}

/** One record's payload (git's stored bytes for the pack entry) with its header. */
export interface OpenedRecord extends IndexEntry {
  payload: Buffer;
}

/** §6: every record of a container, authenticated, in order. */
export function openContainer(bytes: Buffer, ref: ContainerRef, repositoryId: string, dataKey: Buffer): OpenedRecord[] {
  const version = ref.version ?? 1;
  const containerId = Buffer.from(ref.id, 'hex');
  if (bytes.length !== ref.size) throw new Error('container size differs from the manifest');
  if (sha256(bytes.subarray(0, ref.preambleLength)) !== ref.preambleHash) throw new Error('container preamble differs from the manifest');
  const trailer = bytes.subarray(bytes.length - 24);
  if (trailer.subarray(16).toString('latin1') !== 'KMSCEND1') throw new Error('no trailer');
  if (Number(trailer.readBigUInt64BE(0)) !== ref.indexOffset || Number(trailer.readBigUInt64BE(8)) !== ref.indexLength) throw new Error('trailer differs from the manifest');
  const sealedIndex = bytes.subarray(ref.indexOffset, ref.indexOffset + ref.indexLength);
  if (sha256(sealedIndex) !== ref.indexHash) throw new Error('index hash differs from the manifest');
  const index = parseIndex(gcmOpen(subkey(dataKey, 'index', containerId), Buffer.alloc(12), indexAad(version, repositoryId, containerId), sealedIndex));
  if (index.entries.length !== ref.objects || index.recordsStart !== ref.preambleLength) throw new Error('index differs from the manifest');
  const out: OpenedRecord[] = [];
  const header = (e: IndexEntry, seq: number): RecordHeader => ({ seq, type: e.type, size: e.size, oid: e.oid, base: e.base });
  let segment: number[] = [];
  index.entries.forEach((e, seq) => {
    const sealed = bytes.subarray(e.offset, e.offset + e.length);
    if (e.size >= CBC_FROM) {
      out.push({ ...e, payload: openCbc(dataKey, repositoryId, containerId, header(e, seq), sealed) });
    } else if (version === 1) {
      const aad = recordAad(repositoryId, containerId, header(e, seq));
      out.push({ ...e, payload: gcmOpen(subkey(dataKey, 'record-gcm', containerId), recordNonce(seq), aad, sealed) });
    } else {
      segment.push(seq);
      if (!e.segmentEnd) return;
      const first = index.entries[segment[0]];
      const plain = gcmOpen(subkey(dataKey, 'segment', containerId), recordNonce(segment[0]), segmentAad(repositoryId, containerId, segment[0]), bytes.subarray(first.offset, e.offset + e.length));
      let pos = 0;
      for (const k of segment) {
        const entry = index.entries[k];
        const length = entry.length - (k === seq ? 16 : 0);
        out.push({ ...entry, payload: plain.subarray(pos, pos + length) });
        pos += length;
      }
      segment = [];
    }
  });
  if (segment.length) throw new Error('the last segment is not closed');
  return out;
}

export interface ManifestEnvelope {
  version: number;
  generation: number;
  nonce: Buffer;
  keyId: string;
  wrappedKey: Buffer;
  preamble: Buffer;
  sealed: Buffer;
}

/** §7.1. */
export function parseManifest(bytes: Buffer): ManifestEnvelope {
  if (bytes.subarray(0, 4).toString('latin1') !== 'KMSC' || bytes[5] !== 2) throw new Error('not a manifest');
  const k = bytes.readUInt16BE(28);
  const w = bytes.readUInt16BE(30 + k);
  const end = 32 + k + w;
  return {
    version: bytes[4],
    generation: Number(bytes.readBigUInt64BE(8)),
    nonce: bytes.subarray(16, 28),
    keyId: bytes.subarray(30, 30 + k).toString('utf8'),
    wrappedKey: bytes.subarray(32 + k, end),
    preamble: bytes.subarray(0, end),
    sealed: bytes.subarray(end),
  };
}

/** §7.1: AAD = "kmscrypt/1 manifest" || u16 R || repository ID || preamble; body = deflate-raw(JSON). */
export function openManifest(env: ManifestEnvelope, dataKey: Buffer, repositoryId: string): Record<string, unknown> {
  const repo = Buffer.from(repositoryId, 'utf8');
  const aad = Buffer.concat([Buffer.from('kmscrypt/1 manifest', 'latin1'), u16(repo.length), repo, env.preamble]);
  return JSON.parse(inflateRawSync(gcmOpen(subkey(dataKey, 'manifest', env.nonce), env.nonce, aad, env.sealed)).toString('utf8')) as Record<string, unknown>;
}

/**
 * git's pack format (Documentation/gitformat-pack.txt): the records as pack entries, deltas as
 * REF_DELTA against their raw base ID, duplicates dropped; the trailer hashed with the
 * repository's hash function. `git index-pack` then checks every object's ID.
 */
export function packOf(records: OpenedRecord[], hash: 'sha1' | 'sha256'): Buffer {
  const seen = new Set<string>();
  const entries: Buffer[] = [];
  for (const r of records) {
    const id = r.oid.toString('hex');
    if (seen.has(id)) continue;
    seen.add(id);
    const head: number[] = [];
    let size = r.size;
    let byte = (r.type << 4) | (size & 0x0f);
    size = Math.floor(size / 16);
    while (size > 0) {
      head.push(byte | 0x80);
      byte = size & 0x7f;
      size = Math.floor(size / 128);
    }
    head.push(byte);
    entries.push(Buffer.from(head), r.type === 7 ? r.base : Buffer.alloc(0), r.payload);
  }
  const header = Buffer.alloc(12);
  header.write('PACK', 0, 'latin1');
  header.writeUInt32BE(2, 4);
  header.writeUInt32BE(seen.size, 8);
  const body = Buffer.concat([header, ...entries]);
  return Buffer.concat([body, createHash(hash).update(body).digest()]);
}
