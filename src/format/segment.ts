import { createCipheriv } from 'node:crypto';
import { gcmNonce, GCM_TAG, openGcm, RecordKeys, writeUint64 } from './record';

/**
 * Version 2 containers seal consecutive GCM records together: one segment is the concatenation
 * of their payloads, encrypted with AES-256-GCM in one operation and followed by one 16-byte tag.
 * Per git object that saves a tag (16 bytes) and a cipher set-up (about 10 µs), which dominate
 * for repositories of many small objects. Which records form a segment, and each record's header,
 * are in the container's authenticated index; the segment binds its place (container, first
 * record) through its key, nonce and AAD. See docs/FORMAT.md §5.6.
 */
export const SEGMENT_TAG = GCM_TAG;
const SEGMENT_LABEL = Buffer.from('kmscrypt/2 segment');

/** "kmscrypt/2 segment" | u16 R | repository ID | container ID | u64 seq of the first record. */
export function segmentAad(keys: RecordKeys, firstSeq: number): Buffer {
  const repo = keys.repositoryIdBytes;
  const out = Buffer.allocUnsafe(SEGMENT_LABEL.length + 2 + repo.length + keys.containerId.length + 8);
  let p = SEGMENT_LABEL.copy(out, 0);
  p = out.writeUInt16BE(repo.length, p);
  p += repo.copy(out, p);
  p += keys.containerId.copy(out, p);
  writeUint64(out, firstSeq, p);
  return out;
}

/** A cipher for the segment that starts with record `firstSeq`; feed its payloads in order. */
export function segmentCipher(keys: RecordKeys, firstSeq: number): ReturnType<typeof createCipheriv> & { getAuthTag(): Buffer } {
  const cipher = createCipheriv('aes-256-gcm', keys.segment, gcmNonce(firstSeq));
  cipher.setAAD(segmentAad(keys, firstSeq));
  return cipher;
}

/** Seals payloads held in memory as one segment: ciphertext || tag. */
export function sealSegment(keys: RecordKeys, firstSeq: number, payloads: Buffer[]): Buffer {
  const cipher = segmentCipher(keys, firstSeq);
  const parts = payloads.map((p) => cipher.update(p));
  cipher.final();
  return Buffer.concat([...parts, cipher.getAuthTag()]);
}

/**
 * Authenticates and decrypts a whole segment; returns the concatenated payloads. Nothing is
 * returned unless the tag verifies.
 */
export function openSegment(keys: RecordKeys, firstSeq: number, sealed: Buffer, what: string): Buffer {
  return openGcm(keys.segment, gcmNonce(firstSeq), segmentAad(keys, firstSeq), sealed, what, 'segment');
}
