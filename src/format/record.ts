import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { KmscryptError } from '../errors';
import { Suite, suiteForSize } from './constants';
import { deriveKey } from './key-derivation';

/** What a record is: one git object, or one delta against a base object, as git's pack stores it. */
export interface RecordHeader {
  /** Raw object ID (20 or 32 bytes). */
  oid: Buffer;
  /** Pack object type: 1 commit, 2 tree, 3 blob, 4 tag, 7 delta against `base`. */
  type: number;
  /** Inflated size: of the object, or of the delta for type 7. Chooses the suite. */
  size: number;
  /** Raw base object ID for deltas, empty otherwise. */
  base: Buffer;
}

/** The subkeys of one container, derived from its data key and its ID. */
export interface RecordKeys {
  /** The repository ID as UTF-8, for every record's AAD. */
  repositoryIdBytes: Buffer;
  containerId: Buffer;
  gcm: Buffer;
  cbcEnc: Buffer;
  cbcMac: Buffer;
  /** AES-256-GCM key of the container's segments (version 2). */
  segment: Buffer;
}

export const GCM_TAG = 16;
export const CBC_IV = 16;
export const CBC_MAC = 32;
const AAD_LABEL = Buffer.from('kmscrypt/1 record');

export function recordKeys(dataKey: Buffer, repositoryId: string, containerId: Buffer): RecordKeys {
  return {
    repositoryIdBytes: Buffer.from(repositoryId, 'utf8'),
    containerId,
    gcm: deriveKey(dataKey, 'record-gcm', containerId),
    cbcEnc: deriveKey(dataKey, 'record-cbc-enc', containerId),
    cbcMac: deriveKey(dataKey, 'record-cbc-mac', containerId),
    segment: deriveKey(dataKey, 'segment', containerId),
  };
}

/**
 * The additional authenticated data of a record: suite, repository, container, position and
 * the whole header. A record therefore cannot be moved to another object ID, position,
 * container or repository, nor read under another suite.
 */
export function recordAad(keys: RecordKeys, suite: Suite, seq: number, header: RecordHeader): Buffer {
  // Written field by field into one buffer: this runs once per git object on every transfer.
  const repo = keys.repositoryIdBytes;
  const fixedLength = 1 + 2 + 8 + 1 + 8 + 1 + 1;
  const out = Buffer.allocUnsafe(AAD_LABEL.length + fixedLength + repo.length + keys.containerId.length + header.oid.length + header.base.length);
  let p = AAD_LABEL.copy(out, 0);
  p = out.writeUInt8(suite, p);
  p = out.writeUInt16BE(repo.length, p);
  p = writeUint64(out, seq, p);
  p = out.writeUInt8(header.type, p);
  p = writeUint64(out, header.size, p);
  p = out.writeUInt8(header.oid.length, p);
  p = out.writeUInt8(header.base.length, p);
  p += repo.copy(out, p);
  p += keys.containerId.copy(out, p);
  p += header.oid.copy(out, p);
  header.base.copy(out, p);
  return out;
}

/** Big-endian unsigned 64-bit, for integers up to 2^53 (no BigInt per call). */
export function writeUint64(buf: Buffer, value: number, at: number): number {
  buf.writeUInt32BE(Math.floor(value / 0x100000000), at);
  buf.writeUInt32BE(value >>> 0, at + 4);
  return at + 8;
}

export function gcmNonce(seq: number): Buffer {
  const nonce = Buffer.alloc(12);
  writeUint64(nonce, seq, 4);
  return nonce;
}

/** Sealed length of a record whose payload is `length` bytes. */
export function sealedLength(suite: Suite, length: number): number {
  return suite === Suite.Gcm ? length + GCM_TAG : CBC_IV + (Math.floor(length / 16) + 1) * 16 + CBC_MAC;
}

/** Seals a payload held in memory (the streaming form for large objects is RecordSealer). */
export function sealRecord(keys: RecordKeys, seq: number, header: RecordHeader, payload: Buffer): Buffer {
  const sealer = new RecordSealer(keys, seq, header);
  return Buffer.concat([sealer.update(payload), sealer.final()]);
}

/** Incremental sealing, so a 2 GiB object never has to be in memory. */
export class RecordSealer {
  readonly suite: Suite;
  private readonly cipher: ReturnType<typeof createCipheriv>;
  private readonly mac?: ReturnType<typeof createHmac>;
  private pending: Buffer[] = [];

  constructor(keys: RecordKeys, seq: number, header: RecordHeader) {
    this.suite = suiteForSize(header.size);
    const aad = recordAad(keys, this.suite, seq, header);
    if (this.suite === Suite.Gcm) {
      const cipher = createCipheriv('aes-256-gcm', keys.gcm, gcmNonce(seq));
      cipher.setAAD(aad);
      this.cipher = cipher;
    } else {
      const iv = randomBytes(CBC_IV);
      this.cipher = createCipheriv('aes-256-cbc', keys.cbcEnc, iv);
      this.mac = createHmac('sha256', keys.cbcMac).update(aad).update(iv);
      this.pending.push(iv);
    }
  }

  update(chunk: Buffer): Buffer {
    const ct = this.cipher.update(chunk);
    this.mac?.update(ct);
    if (this.pending.length === 0) return ct;
    const out = Buffer.concat([...this.pending, ct]);
    this.pending = [];
    return out;
  }

  final(): Buffer {
    const ct = this.cipher.final();
    if (this.suite === Suite.Gcm) {
      const tag = (this.cipher as ReturnType<typeof createCipheriv> & { getAuthTag(): Buffer }).getAuthTag();
      // GCM's final() adds no bytes: skip the copy, once per git object.
      return ct.length === 0 ? tag : Buffer.concat([ct, tag]);
    }
    this.mac!.update(ct);
    return Buffer.concat([...this.pending, ct, this.mac!.digest()]);
  }
}

/**
 * Authenticates and decrypts a record held in memory. Nothing is returned unless the tag
 * (GCM) or the MAC (CBC, compared in constant time before any decryption) verifies.
 */
export function openRecord(keys: RecordKeys, seq: number, header: RecordHeader, sealed: Buffer, what: string): Buffer {
  const suite = suiteForSize(header.size);
  const aad = recordAad(keys, suite, seq, header);
  if (suite === Suite.Gcm) return openGcm(keys.gcm, gcmNonce(seq), aad, sealed, what);
  if (sealed.length < CBC_IV + 16 + CBC_MAC || (sealed.length - CBC_IV - CBC_MAC) % 16 !== 0) throw tampered(what);
  const iv = sealed.subarray(0, CBC_IV);
  const ct = sealed.subarray(CBC_IV, sealed.length - CBC_MAC);
  const mac = createHmac('sha256', keys.cbcMac).update(aad).update(iv).update(ct).digest();
  if (!timingSafeEqual(mac, sealed.subarray(sealed.length - CBC_MAC))) throw tampered(what);
  const decipher = createDecipheriv('aes-256-cbc', keys.cbcEnc, iv);
  try {
    return Buffer.concat([decipher.update(ct), decipher.final()]);
  } catch {
    throw tampered(what);
  }
}

/** AES-256-GCM of `ciphertext || 16-byte tag`: the plaintext, only once the tag verifies. */
export function openGcm(key: Buffer, nonce: Buffer, aad: Buffer, sealed: Buffer, what: string, scope: 'record' | 'segment' = 'record'): Buffer {
  if (sealed.length < GCM_TAG) throw tampered(what, scope);
  const decipher = createDecipheriv('aes-256-gcm', key, nonce);
  decipher.setAAD(aad);
  decipher.setAuthTag(sealed.subarray(sealed.length - GCM_TAG));
  try {
    const plaintext = decipher.update(sealed.subarray(0, sealed.length - GCM_TAG));
    decipher.final(); // throws unless the tag verifies; GCM's final() adds no bytes
    return plaintext;
  } catch {
    throw tampered(what, scope);
  }
}

/**
 * Streaming verification of a CBC record for objects too large to hold in memory: feed every
 * byte of the sealed record in order, then `verified()` compares the MAC in constant time.
 * Only after that may `decipher(iv)` be used on the same bytes.
 */
export class CbcRecordVerifier {
  private readonly mac: ReturnType<typeof createHmac>;
  private readonly tag = Buffer.alloc(CBC_MAC);
  private position = 0;

  constructor(
    private readonly keys: RecordKeys,
    seq: number,
    header: RecordHeader,
    private readonly sealedLength: number,
  ) {
    if (suiteForSize(header.size) !== Suite.CbcHmac) throw new RangeError('streamed records are CBC records');
    this.mac = createHmac('sha256', keys.cbcMac).update(recordAad(keys, Suite.CbcHmac, seq, header));
  }

  update(chunk: Buffer): void {
    const macEnd = this.sealedLength - CBC_MAC;
    const start = this.position;
    const end = start + chunk.length;
    if (end > this.sealedLength) throw new RangeError('more bytes than the record holds');
    if (start < macEnd) this.mac.update(chunk.subarray(0, Math.min(chunk.length, macEnd - start)));
    if (end > macEnd) {
      const from = Math.max(0, macEnd - start);
      chunk.copy(this.tag, start + from - macEnd, from);
    }
    this.position = end;
  }

  verified(): boolean {
    if (this.position !== this.sealedLength || (this.sealedLength - CBC_IV - CBC_MAC) % 16 !== 0 || this.sealedLength < CBC_IV + 16 + CBC_MAC) return false;
    return timingSafeEqual(this.mac.digest(), this.tag);
  }

  decipher(iv: Buffer): ReturnType<typeof createDecipheriv> {
    return createDecipheriv('aes-256-cbc', this.keys.cbcEnc, iv);
  }
}

/** `scope` (KmscryptError.data) tells a record's failure from a segment's: the units after either can still be read. */
export function tampered(what: string, scope: 'record' | 'segment' = 'record'): KmscryptError {
  return new KmscryptError('TAMPERED', `${what} failed authentication: the stored bytes were altered, truncated or moved`, {
    scope,
    unchanged: 'nothing was handed to git',
  });
}
