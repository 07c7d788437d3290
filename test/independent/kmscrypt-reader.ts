/**
 * A second, independent implementation of the stored format (docs/FORMAT.md, versions 1, 2 and
 * 3), written from the specification with node:crypto and node:zlib alone. It imports nothing from
 * src/: where it agrees with src/format on every byte, the specification is what both implement.
 * Used by test/format-independent.test.ts on the known-answer vectors and on stores the helper
 * writes. Read-only (but for gcmSeal, which the vectors need), local keyring only. Section
 * numbers (§) are docs/FORMAT.md's.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { inflateRawSync } from 'node:zlib';

const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff]);
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
};
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};
export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const ZERO_HASH = Buffer.alloc(32);
/** §1: every fixed-width integer is big-endian and lengths are stated before what they measure; nothing may run past the end. */
class Cursor {
  constructor(
    private readonly b: Buffer,
    public pos: number,
    readonly what: string,
  ) {}
  bytes(n: number): Buffer {
    if (this.pos + n > this.b.length) throw new Error(`${this.what}: truncated`);
    this.pos += n;
    return this.b.subarray(this.pos - n, this.pos);
  }
  u8 = () => this.bytes(1)[0];
  u16 = () => this.bytes(2).readUInt16BE(0);
  u64(): number {
    const n = this.bytes(8).readBigUInt64BE(0);
    if (n > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`${this.what}: integer over 2^53 - 1`);
    return Number(n);
  }
  prefixed = () => this.bytes(this.u16());
  text = () => this.prefixed().toString('utf8');
}

/** §1: "KMSC", version, kind; every stored object but the descriptor begins so. */
function header(c: Cursor, kind: number, versions: number[]): number {
  if (c.bytes(4).toString('latin1') !== 'KMSC') throw new Error(`${c.what}: bad magic`);
  const version = c.u8();
  if (!versions.includes(version)) throw new Error(`${c.what}: format version ${version}, not one of ${versions.join(', ')}`);
  if (c.u8() !== kind) throw new Error(`${c.what}: kind is not ${kind}`);
  c.u16(); // flags: written as zero, not refused (§11)
  return version;
}

/** §4.2: the purposes added in version 3 have their own HKDF namespace. */
const VERSION_3_PURPOSES = new Set(['commit', 'descriptor', 'schedule']);

/** §4.2: subkey = HKDF-SHA-256(data key, salt, "kmscrypt/1 " or "kmscrypt/3 " || purpose, 32). */
export function subkey(dataKey: Buffer, purpose: string, salt: Buffer): Buffer {
  const namespace = VERSION_3_PURPOSES.has(purpose) ? 'kmscrypt/3' : 'kmscrypt/1';
  return Buffer.from(hkdfSync('sha256', dataKey, salt, Buffer.from(`${namespace} ${purpose}`), 32));
}

/** §4.3: what a data key commits to for one use (salt: container ID, nonce or repository ID). */
export const keyCommitment = (dataKey: Buffer, salt: Buffer) => subkey(dataKey, 'commit', salt);

/** §4.3: before a version 3 data key opens anything, in constant time. */
export function checkCommitment(dataKey: Buffer, salt: Buffer, expected: Buffer, what: string): void {
  if (expected.length !== 32 || !timingSafeEqual(keyCommitment(dataKey, salt), expected)) throw new Error(`${what}: key commitment mismatch`);
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

export interface LocalKeyring {
  keys: Array<{ keyId: string; material: string }>;
  aliases?: Record<string, string>;
}

/** §4.1: the ARN recorded for a key of the local keyring. */
export const localKeyArn = (keyId: string) => `arn:aws:kms:local:000000000000:key/${keyId}`;

/** The key ID of a local key named by its ID, its ARN (§4.1) or an alias of the keyring; undefined for anything else. */
export function localKeyId(keyring: LocalKeyring, name: string): string | undefined {
  const id = name.startsWith('alias/') ? keyring.aliases?.[name] : name.replace(/^arn:aws:kms:local:000000000000:key\//, '');
  return keyring.keys.some((k) => k.keyId === id) ? id : undefined;
}

/**
 * §4.1, local provider: "KRK1" | master key UUID | IV | tag | AES-256-GCM(master, IV, plaintext),
 * AAD "KRK1" | UUID | encryption context. Like KMS Decrypt given a `KeyId`, it refuses a blob of
 * any other key.
 */
export function decryptLocal(keyring: LocalKeyring, blob: Buffer, repositoryId: string, keyId: string): Buffer {
  if (blob.length < 48 || blob.subarray(0, 4).toString('latin1') !== 'KRK1') throw new Error('not a local keyring blob');
  const uuid = blob
    .subarray(4, 20)
    .toString('hex')
    .replace(/^(.{8})(.{4})(.{4})(.{4})(.{12})$/, '$1-$2-$3-$4-$5');
  const wanted = localKeyId(keyring, keyId);
  if (wanted === undefined) throw new Error(`key ${keyId} is not in the keyring`);
  if (uuid !== wanted) throw new Error(`the blob was made by key ${uuid}, not by ${keyId}`);
  const key = keyring.keys.find((k) => k.keyId === uuid)!;
  const decipher = createDecipheriv('aes-256-gcm', Buffer.from(key.material, 'base64'), blob.subarray(20, 32));
  decipher.setAAD(Buffer.concat([blob.subarray(0, 20), encryptionContextBytes({ 'kmscrypt:repository-id': repositoryId })]));
  decipher.setAuthTag(blob.subarray(32, 48));
  return Buffer.concat([decipher.update(blob.subarray(48)), decipher.final()]);
}

/** A wrapped data key (32 bytes) unwrapped with Decrypt(KeyId = keyId). */
export function unwrapLocal(keyring: LocalKeyring, wrapped: Buffer, repositoryId: string, keyId: string): Buffer {
  const dataKey = decryptLocal(keyring, wrapped, repositoryId, keyId);
  if (dataKey.length !== 32) throw new Error('a data key is 32 bytes');
  return dataKey;
}

function gcmOpen(key: Buffer, nonce: Buffer, aad: Buffer, sealed: Buffer, what: string): Buffer {
  if (sealed.length < 16) throw new Error(`${what}: truncated`);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - 16));
  try {
    return Buffer.concat([decipher.update(sealed.subarray(0, sealed.length - 16)), decipher.final()]);
  } catch {
    throw new Error(`${what}: failed authentication`);
  }
}

export function gcmSeal(key: Buffer, nonce: Buffer, aad: Buffer, plain: Buffer): Buffer {
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  cipher.setAAD(aad);
  return Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
}

/** §3: the descriptor, kmscrypt.json. */
export interface Descriptor {
  format: string;
  version: number;
  repositoryId: string;
  objectFormat: 'sha1' | 'sha256';
  keyId: string;
  keyProvider: 'local' | 'aws';
  createdAt: string;
  location?: string;
  proof?: { wrappedKey: string; commitment: string; mac: string };
}

/** §3: the reader's checks of a descriptor's fields. */
export function parseDescriptor(bytes: Buffer): Descriptor {
  const d = JSON.parse(bytes.toString('utf8')) as Descriptor;
  const bad = (why: string) => new Error(`descriptor: ${why}`);
  if (d.format !== 'kmscrypt') throw bad('not a kmscrypt repository');
  if (d.version !== 1 && d.version !== 2) throw bad(`version ${d.version}`);
  if (!/^[0-9a-f-]{36}$/.test(d.repositoryId)) throw bad('repository ID');
  if (d.objectFormat !== 'sha1' && d.objectFormat !== 'sha256') throw bad('object format');
  if (typeof d.keyId !== 'string' || d.keyId === '') throw bad('key ID');
  if (d.keyProvider !== 'local' && d.keyProvider !== 'aws') throw bad('key provider');
  if (d.version === 2) {
    if (typeof d.createdAt !== 'string') throw bad('creation time');
    if (typeof d.location !== 'string' || !/^(s3:\/\/[^/]|file:\/\/\/)/.test(d.location)) throw bad('location');
    const p = d.proof;
    if (!p || !/^[A-Za-z0-9+/]+={0,2}$/.test(p.wrappedKey) || !/^[0-9a-f]{64}$/.test(p.commitment) || !/^[0-9a-f]{64}$/.test(p.mac)) throw bad('proof');
  }
  return d;
}

/** §3: "kmscrypt/3 descriptor", then each covered field as u32 length || UTF-8. */
export function proofInput(d: Descriptor): Buffer {
  const fields = [
    d.format,
    String(d.version),
    d.repositoryId,
    d.objectFormat,
    d.keyId,
    d.keyProvider,
    d.createdAt,
    d.location,
    d.proof?.wrappedKey,
    d.proof?.commitment,
  ];
  const parts = [Buffer.from('kmscrypt/3 descriptor', 'latin1')];
  for (const f of fields) {
    const b = Buffer.from(f ?? '', 'utf8');
    parts.push(u32(b.length), b);
  }
  return Buffer.concat(parts);
}

/** §3: the proof's data key (unwrapped under the descriptor's keyId) commits, then MACs the proof input. */
export function checkDescriptorProof(d: Descriptor, dataKey: Buffer): void {
  const salt = Buffer.from(d.repositoryId, 'utf8');
  checkCommitment(dataKey, salt, Buffer.from(d.proof!.commitment, 'hex'), 'descriptor proof');
  const mac = createHmac('sha256', subkey(dataKey, 'descriptor', salt))
    .update(proofInput(d))
    .digest();
  if (!timingSafeEqual(mac, Buffer.from(d.proof!.mac, 'hex'))) throw new Error('descriptor proof: MAC mismatch');
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
  const mac = createHmac('sha256', subkey(dataKey, 'record-cbc-mac', containerId))
    .update(recordAad(repositoryId, containerId, h))
    .update(iv)
    .update(ct)
    .digest();
  if (!timingSafeEqual(mac, sealed.subarray(sealed.length - 32))) throw new Error(`record ${h.seq}: MAC mismatch`);
  const decipher = createDecipheriv('aes-256-cbc', subkey(dataKey, 'record-cbc-enc', containerId), iv);
  return Buffer.concat([decipher.update(ct), decipher.final()]);
}

/** §5.6: a segment's AAD (the label is the same in versions 2 and 3). */
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

/** §7.2. */
export interface ContainerRef {
  id: string;
  version?: number;
  commitment?: string;
  size: number;
  indexOffset: number;
  indexLength: number;
  objects: number;
  indexHash: string;
  preambleLength: number;
  preambleHash: string;
  keyId: string;
  wrappedKey: string;
}

export interface ContainerPreamble {
  version: number;
  containerId: Buffer;
  hashLength: number;
  /** Version 3; null before. */
  commitment: Buffer | null;
  keyId: string;
  wrappedKey: Buffer;
  length: number;
}

/** §6.1: the plaintext preamble at the start of a container. */
export function parseContainerPreamble(bytes: Buffer): ContainerPreamble {
  const c = new Cursor(bytes, 0, 'container preamble');
  const version = header(c, 1, [1, 2, 3]);
  const containerId = c.bytes(16);
  const hashLength = c.u8();
  const commitment = version >= 3 ? c.bytes(32) : null;
  const keyId = c.text();
  const wrappedKey = c.prefixed();
  return { version, containerId, hashLength, commitment, keyId, wrappedKey, length: c.pos };
}

/** One record's payload (git's stored bytes for the pack entry) with its header. */
export interface OpenedRecord extends IndexEntry {
  payload: Buffer;
}

/**
 * §6, §9 step 3 and 4: every record of a container, authenticated, in order. `dataKey` is what
 * the ContainerRef's wrapped key unwrapped to; from version 3 on it must match the ContainerRef's
 * commitment before it opens the index.
 */
export function openContainer(bytes: Buffer, ref: ContainerRef, repositoryId: string, dataKey: Buffer): OpenedRecord[] {
  const version = ref.version ?? 1;
  const containerId = Buffer.from(ref.id, 'hex');
  const what = `container ${ref.id}`;
  if (bytes.length !== ref.size) throw new Error(`${what}: size differs from the manifest`);
  if (sha256(bytes.subarray(0, ref.preambleLength)) !== ref.preambleHash) throw new Error(`${what}: preamble differs from the manifest`);
  // The preamble is only identification (readers take everything from the ContainerRef), but its layout is the format's.
  const preamble = parseContainerPreamble(bytes.subarray(0, ref.preambleLength));
  if (preamble.length !== ref.preambleLength || preamble.version !== version || !preamble.containerId.equals(containerId))
    throw new Error(`${what}: preamble layout`);
  if (version >= 3 && preamble.commitment!.toString('hex') !== ref.commitment)
    throw new Error(`${what}: the preamble and the manifest commit to different data keys`);
  const trailer = bytes.subarray(bytes.length - 24);
  if (trailer.subarray(16).toString('latin1') !== 'KMSCEND1') throw new Error(`${what}: no trailer`);
  if (Number(trailer.readBigUInt64BE(0)) !== ref.indexOffset || Number(trailer.readBigUInt64BE(8)) !== ref.indexLength)
    throw new Error(`${what}: trailer differs from the manifest`);
  const sealedIndex = bytes.subarray(ref.indexOffset, ref.indexOffset + ref.indexLength);
  if (sha256(sealedIndex) !== ref.indexHash) throw new Error(`${what}: index hash differs from the manifest`);
  if (version >= 3) {
    if (!/^[0-9a-f]{64}$/.test(ref.commitment ?? '')) throw new Error(`${what}: a version 3 container without a commitment`);
    checkCommitment(dataKey, containerId, Buffer.from(ref.commitment!, 'hex'), what);
  }
  const indexKey = subkey(dataKey, 'index', containerId);
  const index = parseIndex(gcmOpen(indexKey, Buffer.alloc(12), indexAad(version, repositoryId, containerId), sealedIndex, `${what}: index`));
  if (index.entries.length !== ref.objects || index.recordsStart !== ref.preambleLength) throw new Error(`${what}: index differs from the manifest`);
  const out: OpenedRecord[] = [];
  const recordHeader = (e: IndexEntry, seq: number): RecordHeader => ({ seq, type: e.type, size: e.size, oid: e.oid, base: e.base });
  let segment: number[] = [];
  index.entries.forEach((e, seq) => {
    const sealed = bytes.subarray(e.offset, e.offset + e.length);
    if (e.size >= CBC_FROM) {
      out.push({ ...e, payload: openCbc(dataKey, repositoryId, containerId, recordHeader(e, seq), sealed) });
    } else if (version === 1) {
      const aad = recordAad(repositoryId, containerId, recordHeader(e, seq));
      out.push({ ...e, payload: gcmOpen(subkey(dataKey, 'record-gcm', containerId), recordNonce(seq), aad, sealed, `${what}: record ${seq}`) });
    } else {
      // Versions 2 and 3: segments (§5.6).
      segment.push(seq);
      if (!e.segmentEnd) return;
      const first = index.entries[segment[0]];
      const key = subkey(dataKey, 'segment', containerId);
      const plain = gcmOpen(
        key,
        recordNonce(segment[0]),
        segmentAad(repositoryId, containerId, segment[0]),
        bytes.subarray(first.offset, e.offset + e.length),
        `${what}: segment ${segment[0]}`,
      );
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
  if (segment.length) throw new Error(`${what}: the last segment is not closed`);
  return out;
}

/** §7.3: a rotation's endorsement, in a version 3 manifest's preamble. */
export interface Endorsement {
  from: string;
  to: string;
  ciphertext: Buffer;
}

/** §8.2: a manifest's reference to the newest history object. */
export interface HistoryRef {
  generation: number;
  hash: string;
}

export interface ManifestEnvelope {
  version: number;
  generation: number;
  nonce: Buffer;
  /** Version 3: the ARN of the key that wrapped the data key. Versions 1 and 2: the key as configured, unbound. */
  keyId: string;
  wrappedKey: Buffer;
  /** Version 3; null before. */
  commitment: Buffer | null;
  /** Version 3: the previous manifest's hash (null for generation 1); undefined before (it is in the body). */
  previous: string | null | undefined;
  history: HistoryRef | null;
  endorsements: Endorsement[];
  preamble: Buffer;
  sealed: Buffer;
}

/** §7.1: the preamble of a manifest of any version, and where its ciphertext starts. */
export function parseManifest(bytes: Buffer): ManifestEnvelope {
  const c = new Cursor(bytes, 0, 'manifest');
  const version = header(c, 2, [1, 2, 3]);
  const generation = c.u64();
  const nonce = c.bytes(12);
  let commitment: Buffer | null = null;
  let previous: string | null | undefined;
  let history: HistoryRef | null = null;
  const endorsements: Endorsement[] = [];
  if (version >= 3) {
    commitment = c.bytes(32);
    const prev = c.bytes(32);
    previous = prev.equals(ZERO_HASH) ? null : prev.toString('hex');
    const historyGeneration = c.u64();
    const historyHash = c.bytes(32).toString('hex');
    history = historyGeneration === 0 ? null : { generation: historyGeneration, hash: historyHash };
  }
  const keyId = c.text();
  const wrappedKey = c.prefixed();
  if (version >= 3) {
    for (let n = c.u16(); n > 0; n--) endorsements.push({ from: c.text(), to: c.text(), ciphertext: c.prefixed() });
    if (c.pos > 1 << 20) throw new Error('manifest: preamble over 1 MiB');
  }
  if (bytes.length < c.pos + 16) throw new Error('manifest: no room for the tag');
  return {
    version,
    generation,
    nonce,
    keyId,
    wrappedKey,
    commitment,
    previous,
    history,
    endorsements,
    preamble: bytes.subarray(0, c.pos),
    sealed: bytes.subarray(c.pos),
  };
}

export interface Manifest {
  repositoryId: string;
  objectFormat: 'sha1' | 'sha256';
  generation: number;
  previous: string | null;
  createdAt: string;
  descriptorHash: string;
  keyId: string;
  head: string | null;
  refs: Record<string, string>;
  containers: ContainerRef[];
}

/**
 * §7.1, §7.2: AAD = "kmscrypt/1 manifest" || u16 R || repository ID || preamble; body =
 * deflate-raw(JSON). In version 3 the data key must first match the preamble's commitment, and
 * the body's `previous` must be the preamble's.
 */
export function openManifest(env: ManifestEnvelope, dataKey: Buffer, repositoryId: string): Manifest {
  const what = `manifest ${env.generation}`;
  if (env.commitment) checkCommitment(dataKey, env.nonce, env.commitment, what);
  const repo = Buffer.from(repositoryId, 'utf8');
  const aad = Buffer.concat([Buffer.from('kmscrypt/1 manifest', 'latin1'), u16(repo.length), repo, env.preamble]);
  const m = JSON.parse(inflateRawSync(gcmOpen(subkey(dataKey, 'manifest', env.nonce), env.nonce, aad, env.sealed, what)).toString('utf8')) as Manifest;
  if (m.repositoryId !== repositoryId) throw new Error(`${what}: of another repository`);
  if (m.generation !== env.generation) throw new Error(`${what}: generation differs from the preamble`);
  if (env.previous !== undefined && m.previous !== env.previous) throw new Error(`${what}: its body and its preamble name different previous manifests`);
  return m;
}

/** §7.3: SHA-256("kmscrypt/3 endorsement" || repository ID || ARN of the endorsed key). */
export function endorsementPlaintext(repositoryId: string, toArn: string): Buffer {
  return createHash('sha256').update('kmscrypt/3 endorsement').update(repositoryId, 'utf8').update(toArn, 'utf8').digest();
}

/**
 * §7.3: the shortest chain of endorsements from a key this reader accepts to `target`, found in
 * the preamble before anything is asked of a key; each link is then checked in order by
 * `decrypt(from, ciphertext)` (a key accepted by then). Returns the keys accepted on the way.
 */
export function followEndorsements(
  target: string,
  accepted: ReadonlySet<string>,
  endorsements: Endorsement[],
  decrypt: (keyId: string, ciphertext: Buffer) => Buffer,
  repositoryId: string,
): string[] {
  if (accepted.has(target)) return [];
  const via = new Map<string, Endorsement>();
  const queue = [...accepted];
  for (let i = 0; i < queue.length && !via.has(target); i++) {
    for (const e of endorsements) {
      if (e.from === queue[i] && !accepted.has(e.to) && !via.has(e.to)) {
        via.set(e.to, e);
        queue.push(e.to);
      }
    }
  }
  if (!via.has(target)) throw new Error(`key ${target} is neither trusted nor endorsed by a trusted key`);
  const chain: Endorsement[] = [];
  for (let k = target; via.has(k); k = via.get(k)!.from) chain.unshift(via.get(k)!);
  for (const e of chain) {
    const forged = new Error(`the endorsement of ${e.to} by ${e.from} does not verify`);
    let plaintext: Buffer;
    try {
      plaintext = decrypt(e.from, e.ciphertext);
    } catch {
      throw forged;
    }
    if (plaintext.length !== 32 || !timingSafeEqual(plaintext, endorsementPlaintext(repositoryId, e.to))) throw forged;
  }
  return chain.map((e) => e.to);
}

export interface History {
  first: number;
  end: number;
  previous: string | null;
  hashes: string[];
}

/** §8.2: a history object, whose SHA-256 must be the one the reference names. */
export function parseHistory(bytes: Buffer, ref: HistoryRef): History {
  if (sha256(bytes) !== ref.hash) throw new Error(`history object of manifest ${ref.generation}: hash mismatch`);
  const c = new Cursor(bytes, 0, 'history object');
  header(c, 4, [3]);
  const first = c.u64();
  const end = c.u64();
  const prev = c.bytes(32);
  if (end !== ref.generation || first < 1 || first >= end || bytes.length !== 56 + 32 * (end - first)) throw new Error('history object: bad range or length');
  const hashes: string[] = [];
  for (let g = first; g < end; g++) hashes.push(c.bytes(32).toString('hex'));
  return { first, end, previous: prev.equals(ZERO_HASH) ? null : prev.toString('hex'), hashes };
}

/** What the continuity proof reads (§9.1): stored manifests, history objects, and the `previous` of a version 1 or 2 manifest (in its body). */
export interface ChainStore {
  manifest(generation: number): Buffer | undefined;
  history(hash: string): Buffer | undefined;
  previousInBody(env: ManifestEnvelope): string | null;
}

/**
 * §9.1: proves that the newest manifest (authenticated) descends from the manifest `seen`, by
 * the hashes over stored bytes: from the newest down, each stored manifest's SHA-256 is the
 * `previous` its successor names; where gc removed manifests, history objects (bound by the
 * lowest manifest read) attest the hash the walk expects and the one seen.
 */
export function proveDescent(seen: HistoryRef, newest: ManifestEnvelope, previous: string | null, store: ChainStore): void {
  const fork = (g: number) => new Error(`manifest ${newest.generation} does not descend from manifest ${seen.generation}: forked at ${g}`);
  let expected = previous;
  let lowest = newest;
  let g = newest.generation - 1;
  while (g > seen.generation) {
    const bytes = store.manifest(g);
    if (!bytes) break;
    if (expected === null || sha256(bytes) !== expected) throw fork(g);
    lowest = parseManifest(bytes);
    // Version 3 names its predecessor in the preamble its hash just vouched for; versions 1 and 2 only in the body.
    expected = lowest.version >= 3 ? lowest.previous! : store.previousInBody(lowest);
    g--;
  }
  if (g === seen.generation) {
    if (expected !== seen.hash) throw fork(g);
    return;
  }
  // Manifest g is gone: the history object the lowest manifest read names must attest it, and the one seen.
  const historyAt = (ref: HistoryRef) => {
    const bytes = store.history(ref.hash);
    if (!bytes) throw new Error(`history object ${ref.hash} is missing`);
    return parseHistory(bytes, ref);
  };
  const ref = lowest.history;
  if (!ref || ref.generation <= g || expected === null) throw new Error(`manifest ${g} is gone and no history object attests it`);
  let history = historyAt(ref);
  for (const [generation, hash] of [[g, expected] as const, [seen.generation, seen.hash] as const]) {
    while (generation < history.first) {
      if (!history.previous) throw new Error(`manifest ${generation} is not attested by any history object`);
      history = historyAt({ generation: history.first, hash: history.previous });
    }
    if (history.hashes[generation - history.first] !== hash) throw fork(generation);
  }
}

export interface ScheduleEnvelope {
  nonce: Buffer;
  commitment: Buffer;
  keyId: string;
  wrappedKey: Buffer;
  preamble: Buffer;
  sealed: Buffer;
}

/** §8.3: a gc schedule's preamble. */
export function parseSchedule(bytes: Buffer): ScheduleEnvelope {
  const c = new Cursor(bytes, 0, 'gc schedule');
  header(c, 3, [3]);
  const nonce = c.bytes(12);
  const commitment = c.bytes(32);
  const keyId = c.text();
  const wrappedKey = c.prefixed();
  if (bytes.length < c.pos + 16) throw new Error('gc schedule: no room for the tag');
  return { nonce, commitment, keyId, wrappedKey, preamble: bytes.subarray(0, c.pos), sealed: bytes.subarray(c.pos) };
}

/** §8.3: the commitment, then AES-256-GCM under subkey "schedule"; the body is JSON, not deflated. */
export function openSchedule(env: ScheduleEnvelope, dataKey: Buffer, repositoryId: string): { createdAt: string; containers: string[]; generation: number } {
  checkCommitment(dataKey, env.nonce, env.commitment, 'gc schedule');
  const repo = Buffer.from(repositoryId, 'utf8');
  const aad = Buffer.concat([Buffer.from('kmscrypt/3 schedule', 'latin1'), u16(repo.length), repo, env.preamble]);
  return JSON.parse(gcmOpen(subkey(dataKey, 'schedule', env.nonce), env.nonce, aad, env.sealed, 'gc schedule').toString('utf8')) as {
    createdAt: string;
    containers: string[];
    generation: number;
  };
}

/** A store's objects by key (§2), relative to its root. */
export interface StoreFiles {
  get(key: string): Buffer | undefined;
  /** The keys directly under `prefix` (e.g. "manifests/"), sorted. */
  list(prefix: string): string[];
}

export interface ReadOptions {
  /** The keys this reader trusts as is (§7.3, case 1), as ARNs. */
  trusted: string[];
  /** The manifest this reader saw last, to prove continuity from (§9.1). */
  seen?: HistoryRef;
}

export interface RepositoryRead {
  descriptor: Descriptor;
  descriptorHash: string;
  /** A version 2 descriptor's proof verified (§3). */
  proofVerified: boolean;
  /** Null for a repository without manifests, adopted by its descriptor's proof alone (§3.1). */
  newest: { env: ManifestEnvelope; manifest: Manifest; hash: string } | null;
  /** Keys accepted by endorsement (§7.3), in the order they were accepted. */
  endorsed: string[];
  /** The continuity from `seen` was proved (§9.1). */
  descended: boolean;
  containers: ContainerPreamble[];
  records: OpenedRecord[];
  schedules: Array<ReturnType<typeof openSchedule> & { key: string; keyId: string }>;
}

const LIMITS = { descriptor: 64 << 10, manifest: 64 << 20 };

/**
 * §9 (and §3.1, §7.3, §8.3, §9.1): what a reader of a local-keyring store checks, in order,
 * before it uses anything: the descriptor and its proof, the newest manifest's key (trusted or
 * endorsed) before any Decrypt under it, the key commitments, the manifest, the continuity from
 * the manifest seen, every container, and gc's schedules.
 */
export function readRepository(files: StoreFiles, keyring: LocalKeyring, options: ReadOptions): RepositoryRead {
  const descriptorBytes = files.get('kmscrypt.json');
  if (!descriptorBytes) throw new Error('no descriptor');
  if (descriptorBytes.length > LIMITS.descriptor) throw new Error('descriptor over its read limit');
  const descriptor = parseDescriptor(descriptorBytes);
  const repositoryId = descriptor.repositoryId;
  const accepted = new Set(options.trusted);
  const decrypt = (keyId: string, blob: Buffer) => decryptLocal(keyring, blob, repositoryId, keyId);
  if (descriptor.version === 2)
    checkDescriptorProof(descriptor, unwrapLocal(keyring, Buffer.from(descriptor.proof!.wrappedKey, 'base64'), repositoryId, descriptor.keyId));
  const result: RepositoryRead = {
    descriptor,
    descriptorHash: sha256(descriptorBytes),
    proofVerified: descriptor.version === 2,
    newest: null,
    endorsed: [],
    descended: false,
    containers: [],
    records: [],
    schedules: [],
  };

  const generations = files
    .list('manifests/')
    .filter((k) => /^manifests\/\d{20}$/.test(k) && Number.isSafeInteger(Number(k.slice(10))))
    .map((k) => Number(k.slice(10)));
  const manifestBytes = (g: number) => files.get(`manifests/${String(g).padStart(20, '0')}`);
  if (generations.length === 0) {
    if (descriptor.version !== 2 || !accepted.has(descriptor.keyId))
      throw new Error('a descriptor without manifests is adopted only on a proof made with a trusted key');
    return result;
  }
  const generation = Math.max(...generations);
  const bytes = manifestBytes(generation)!;
  if (bytes.length > LIMITS.manifest) throw new Error('manifest over its read limit');
  const env = parseManifest(bytes);
  if (env.generation !== generation) throw new Error(`manifest ${generation} says it is generation ${env.generation}`);
  // Versions 1 and 2 name their key unbound: Decrypt is given it if accepted, else the key accepted last (§7.3).
  const unboundKey = (e: ManifestEnvelope) => {
    const named = localKeyId(keyring, e.keyId);
    return named !== undefined && accepted.has(localKeyArn(named)) ? localKeyArn(named) : [...accepted].pop()!;
  };
  if (env.version >= 3) {
    result.endorsed = followEndorsements(env.keyId, accepted, env.endorsements, decrypt, repositoryId);
    for (const k of result.endorsed) accepted.add(k);
  }
  const manifestKey = env.version >= 3 ? env.keyId : unboundKey(env);
  const manifest = openManifest(env, unwrapLocal(keyring, env.wrappedKey, repositoryId, manifestKey), repositoryId);
  if (manifest.descriptorHash !== result.descriptorHash) throw new Error('the manifest binds another descriptor');
  if (manifest.objectFormat !== descriptor.objectFormat) throw new Error('the manifest has another object format');
  result.newest = { env, manifest, hash: sha256(bytes) };

  const seen = options.seen;
  if (seen && seen.generation > generation) throw new Error('rollback: the newest manifest is older than the one seen');
  if (seen && seen.generation === generation && seen.hash !== result.newest.hash) throw new Error('the manifest seen was replaced');
  if (seen && seen.generation < generation) {
    proveDescent(seen, env, manifest.previous, {
      manifest: manifestBytes,
      history: (hash) => files.get(`history/${hash}`),
      previousInBody: (e) => openManifest(e, unwrapLocal(keyring, e.wrappedKey, repositoryId, unboundKey(e)), repositoryId).previous,
    });
    result.descended = true;
  }

  for (const ref of manifest.containers) {
    const container = files.get(`containers/${ref.id}`);
    if (!container) throw new Error(`container ${ref.id} is missing`);
    result.containers.push(parseContainerPreamble(container.subarray(0, ref.preambleLength)));
    result.records.push(...openContainer(container, ref, repositoryId, unwrapLocal(keyring, Buffer.from(ref.wrappedKey, 'base64'), repositoryId, ref.keyId)));
  }

  for (const key of files.list('gc/')) {
    const schedule = parseSchedule(files.get(key)!);
    followEndorsements(schedule.keyId, accepted, env.endorsements, decrypt, repositoryId);
    result.schedules.push({
      key,
      keyId: schedule.keyId,
      ...openSchedule(schedule, unwrapLocal(keyring, schedule.wrappedKey, repositoryId, schedule.keyId), repositoryId),
    });
  }
  return result;
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
