import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { KmscryptError } from '../errors';
import { containerKey, FORMAT_VERSION, MAX_OBJECT_SIZE, SEGMENT_TARGET, Suite, suiteForSize } from '../format/constants';
import { encodePreamble, encodeTrailer, sealEncodedIndex, sha256Hex } from '../format/container';
import { DELTA_TYPE, IndexEntry, IndexWriter } from '../format/container-index';
import { keyCommitment } from '../format/key-commitment';
import type { ContainerRef } from '../format/manifest';
import { RecordKeys, RecordSealer, recordKeys } from '../format/record';
import { SEGMENT_TAG, segmentCipher } from '../format/segment';
import { OBJ_OFS_DELTA, OBJ_REF_DELTA, parseEntryHeader } from '../git/pack-format';
import { PackIndexFile } from '../git/pack-index-file';
import type { WrittenPack } from '../git/pack-objects';
import type { DataKey } from '../keys/key-provider';
import type { Storage } from '../storage/storage';
import { BufferedFileWriter, WindowedFileReader } from './file-io';
import { killPoint } from './kill-point';
import { Progress, TransferProgress } from './progress';

const CHUNK = 1 << 20;

export class ObjectTooLargeError extends KmscryptError {
  constructor(
    readonly oid: string,
    readonly size: number,
  ) {
    super('TOO_LARGE', `object ${oid} is ${size} bytes, over the 2 GiB single-object limit`, { oid, size, unchanged: 'nothing was stored' });
  }
}

/**
 * Gathers consecutive small GCM records into one segment (docs/FORMAT.md §5.6) and seals it with
 * one AES-GCM operation when it is full; their index entries are added then, the last one
 * carrying the segment's tag.
 */
class SegmentBuilder {
  private readonly buffer = Buffer.allocUnsafe(SEGMENT_TARGET);
  private used = 0;
  private first = -1;
  private readonly entries: IndexEntry[] = [];

  constructor(
    private readonly keys: RecordKeys,
    private readonly out: BufferedFileWriter,
    private readonly index: IndexWriter,
  ) {}

  /** Whether a payload of `length` bytes is gathered in memory (otherwise it is a segment of its own, streamed). */
  static gathers(length: number): boolean {
    return length <= SEGMENT_TARGET;
  }

  /** Room for `length` more bytes; seals what is gathered when there is not. */
  async makeRoom(length: number): Promise<void> {
    if (this.entries.length > 0 && this.used + length > SEGMENT_TARGET) await this.seal();
  }

  /** Adds a record whose payload fits (see gathers); `payload` may be overwritten once this returns. */
  add(seq: number, entry: IndexEntry, payload: Buffer): void {
    if (this.entries.length === 0) this.first = seq;
    payload.copy(this.buffer, this.used);
    this.used += payload.length;
    entry.sealedLength = payload.length;
    this.entries.push(entry);
  }

  async seal(): Promise<void> {
    if (this.entries.length === 0) return;
    const cipher = segmentCipher(this.keys, this.first);
    await this.out.write(cipher.update(this.buffer.subarray(0, this.used)));
    cipher.final();
    await this.out.write(cipher.getAuthTag());
    const last = this.entries[this.entries.length - 1];
    last.sealedLength += SEGMENT_TAG;
    last.endsSegment = true;
    for (const e of this.entries) this.index.add(e);
    this.entries.length = 0;
    this.used = 0;
  }
}

/**
 * Turns a pack written by git into a container file: every entry becomes one record holding
 * exactly the bytes git stored (compressed object or delta), so git's deltas are kept and
 * nothing is inflated or re-resolved. Records of objects under 6 MiB are sealed in segments of
 * about 64 KiB, larger ones with CBC-HMAC one by one. Memory stays bounded: entries are streamed
 * in 1 MiB chunks and only the index (a few dozen bytes per object) is kept.
 */
async function writeContainer(opts: {
  pack: WrittenPack;
  hashLength: number;
  containerId: Buffer;
  out: BufferedFileWriter;
  dataKey: DataKey;
  repositoryId: string;
  progress?: Progress;
  /** Aborted when the upload of the container has failed: sealing the rest is pointless. */
  signal: AbortSignal;
}): Promise<ContainerRef | undefined> {
  const { pack, hashLength, containerId, out } = opts;
  const idx = new PackIndexFile(await fs.readFile(pack.idxPath), hashLength);
  let n = 0;
  while (n < idx.count && idx.offsets[n] < pack.entriesEnd) n++;
  if (n === 0) {
    await out.abort(new KmscryptError('INTERNAL', 'the pack holds no object to store'));
    return undefined;
  }

  const keys = recordKeys(opts.dataKey.plaintext, opts.repositoryId, containerId);
  const commitment = keyCommitment(opts.dataKey.plaintext, containerId);
  const preamble = encodePreamble({ containerId, hashLength, commitment, keyId: opts.dataKey.keyId, wrappedKey: opts.dataKey.wrapped });
  const reader = await WindowedFileReader.open(pack.packPath);
  const index = new IndexWriter(hashLength, preamble.length);
  const segment = new SegmentBuilder(keys, out, index);
  try {
    await out.write(preamble);
    const packEnd = reader.size - hashLength;
    for (let k = 0; k < n; k++) {
      opts.signal.throwIfAborted();
      const offset = idx.offsets[k];
      const end = k + 1 < idx.count ? idx.offsets[k + 1] : packEnd;
      const head = parseEntryHeader(await reader.read(offset, Math.min(end - offset, 32 + hashLength)), offset, hashLength);
      const oid = idx.oid(k);
      if (head.size > MAX_OBJECT_SIZE) throw new ObjectTooLargeError(oid.toString('hex'), head.size);
      let base: number | Buffer | undefined;
      let type = head.type;
      if (head.type === OBJ_OFS_DELTA || head.type === OBJ_REF_DELTA) {
        type = DELTA_TYPE;
        const pos = head.baseOffset !== undefined ? idx.positionAtOffset(head.baseOffset) : idx.positionOf(head.baseOid!);
        if (pos >= 0 && pos < n) base = pos;
        else if (head.baseOid) base = head.baseOid;
        else throw new KmscryptError('GIT', `pack entry at ${offset} has a delta base git did not index`);
      }
      const entry: IndexEntry = { oid, type, size: head.size, sealedLength: 0, base };
      const payloadStart = offset + head.headerLength;
      const payloadLength = end - payloadStart;
      if (suiteForSize(head.size) === Suite.Gcm) {
        await segment.makeRoom(payloadLength);
        if (SegmentBuilder.gathers(payloadLength)) {
          segment.add(k, entry, await reader.read(payloadStart, payloadLength));
        } else {
          const cipher = segmentCipher(keys, k);
          for (let pos = payloadStart; pos < end; pos += CHUNK) await out.write(cipher.update(await reader.read(pos, Math.min(CHUNK, end - pos))));
          cipher.final();
          await out.write(cipher.getAuthTag());
          entry.sealedLength = payloadLength + SEGMENT_TAG;
          entry.endsSegment = true;
          index.add(entry);
        }
      } else {
        await segment.seal();
        const sealer = new RecordSealer(keys, k, {
          oid,
          type,
          size: head.size,
          base: base === undefined ? Buffer.alloc(0) : typeof base === 'number' ? idx.oid(base) : base,
        });
        for (let pos = payloadStart; pos < end; pos += CHUNK) {
          const chunk = sealer.update(await reader.read(pos, Math.min(CHUNK, end - pos)));
          entry.sealedLength += chunk.length;
          await out.write(chunk);
        }
        const tail = sealer.final();
        entry.sealedLength += tail.length;
        await out.write(tail);
        index.add(entry);
      }
      opts.progress?.tick(k + 1, n);
      if (k === n >> 1) killPoint('push-sealing');
    }
    await segment.seal();
    const indexOffset = out.written;
    const sealedIndex = sealEncodedIndex(opts.dataKey.plaintext, opts.repositoryId, containerId, index.finish());
    await out.write(sealedIndex);
    await out.write(encodeTrailer(indexOffset, sealedIndex.length));
    await out.close();
    opts.progress?.done();
    return {
      id: containerId.toString('hex'),
      version: FORMAT_VERSION,
      size: out.written,
      indexOffset,
      indexLength: sealedIndex.length,
      objects: n,
      indexHash: sha256Hex(sealedIndex),
      preambleLength: preamble.length,
      preambleHash: sha256Hex(preamble),
      keyId: opts.dataKey.keyId,
      wrappedKey: opts.dataKey.wrapped.toString('base64'),
      commitment: commitment.toString('hex'),
    };
  } catch (err) {
    await out.abort(err);
    throw err;
  } finally {
    await reader.close();
  }
}

/**
 * Seals a pack written by git into a container (see writeContainer) and stores it as
 * containers/<id>. The upload runs while the container is sealed where the storage can take a
 * file as it grows (S3, in parts); a failure of either stops both and stores nothing. Returns
 * undefined when the pack holds no object to store.
 */
export async function storeContainer(
  storage: Storage,
  opts: {
    pack: WrittenPack;
    hashLength: number;
    /** Where the container file is written (in a directory the caller removes). */
    outPath: string;
    dataKey: DataKey;
    repositoryId: string;
    /** Whether git asked for progress. */
    progress: boolean;
  },
): Promise<ContainerRef | undefined> {
  const containerId = randomBytes(16);
  const packSize = (await fs.stat(opts.pack.packPath)).size;
  const out = await BufferedFileWriter.create(opts.outPath, packSize);
  const stop = new AbortController();
  let uploaded = 0;
  let shown: TransferProgress | undefined;
  const uploading = storage.put(containerKey(containerId.toString('hex')), out, (n) => {
    uploaded = n;
    shown?.update(n);
  });
  uploading.catch((err: unknown) => stop.abort(err));
  let ref: ContainerRef | undefined;
  try {
    // When the upload fails first, the writer stops by throwing the upload's error: the cause.
    ref = await writeContainer({ ...opts, containerId, out, signal: stop.signal, progress: new Progress('Encrypting objects', opts.progress) });
  } finally {
    if (!ref) await uploading.catch(() => undefined);
  }
  if (!ref) return undefined;
  // Shown once the encryption progress is done, so that the two lines do not interleave.
  shown = new TransferProgress('Uploading', opts.progress);
  shown.update(uploaded);
  await uploading;
  shown.done();
  return ref;
}

/**
 * Stores a published container again from its local file if it is gone from the store (swept
 * by a gc while a slow push was between its upload and its publication). True when restored.
 */
export async function restoreIfSwept(storage: Storage, ref: ContainerRef, file: string): Promise<boolean> {
  const key = containerKey(ref.id);
  if (await storage.head(key)) return false;
  await storage.put(key, { file, length: (await fs.stat(file)).size });
  return true;
}
