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

/** Where a record's payload comes from: `read(offset, length)` within it, in order. */
type PayloadReader = (offset: number, length: number) => Promise<Buffer>;

/** What a container is sealed for: its ID, the object ID length, the data key and the repository. */
interface ContainerSealing {
  containerId: Buffer;
  hashLength: number;
  dataKey: DataKey;
  repositoryId: string;
}

/**
 * Writes one container: the preamble, then records one after the other (records of objects under
 * 6 MiB sealed in segments of about 64 KiB, larger ones with CBC-HMAC one by one, streamed in 1 MiB
 * chunks), then the sealed index and the trailer. Only the index (a few dozen bytes per object) is
 * kept in memory.
 */
class ContainerBuilder {
  private readonly index: IndexWriter;
  private readonly segment: SegmentBuilder;
  private count = 0;

  private constructor(
    private readonly out: BufferedFileWriter,
    private readonly opts: ContainerSealing,
    private readonly keys: RecordKeys,
    private readonly commitment: Buffer,
    private readonly preamble: Buffer,
  ) {
    this.index = new IndexWriter(opts.hashLength, preamble.length);
    this.segment = new SegmentBuilder(keys, out, this.index);
  }

  static async start(out: BufferedFileWriter, opts: ContainerSealing): Promise<ContainerBuilder> {
    const keys = recordKeys(opts.dataKey.plaintext, opts.repositoryId, opts.containerId);
    const commitment = keyCommitment(opts.dataKey.plaintext, opts.containerId);
    const preamble = encodePreamble({
      containerId: opts.containerId,
      hashLength: opts.hashLength,
      commitment,
      keyId: opts.dataKey.keyId,
      wrappedKey: opts.dataKey.wrapped,
    });
    await out.write(preamble);
    return new ContainerBuilder(out, opts, keys, commitment, preamble);
  }

  /**
   * Adds the next record (its sequence number is its position). `baseOid`: a delta's base ID,
   * which a CBC record's authenticated header names whether the base is local or not.
   */
  async add(entry: IndexEntry, length: number, read: PayloadReader, baseOid: Buffer | undefined): Promise<void> {
    const seq = this.count++;
    if (suiteForSize(entry.size) === Suite.Gcm) {
      await this.segment.makeRoom(length);
      if (SegmentBuilder.gathers(length)) {
        this.segment.add(seq, entry, await read(0, length));
        return;
      }
      const cipher = segmentCipher(this.keys, seq);
      for (let pos = 0; pos < length; pos += CHUNK) await this.out.write(cipher.update(await read(pos, Math.min(CHUNK, length - pos))));
      cipher.final();
      await this.out.write(cipher.getAuthTag());
      entry.sealedLength = length + SEGMENT_TAG;
      entry.endsSegment = true;
      this.index.add(entry);
      return;
    }
    await this.segment.seal();
    const sealer = new RecordSealer(this.keys, seq, { oid: entry.oid, type: entry.type, size: entry.size, base: baseOid ?? Buffer.alloc(0) });
    for (let pos = 0; pos < length; pos += CHUNK) {
      const chunk = sealer.update(await read(pos, Math.min(CHUNK, length - pos)));
      entry.sealedLength += chunk.length;
      await this.out.write(chunk);
    }
    const tail = sealer.final();
    entry.sealedLength += tail.length;
    await this.out.write(tail);
    this.index.add(entry);
  }

  /** Seals the index, writes the trailer and closes the file: what the manifest will say of it. */
  async finish(): Promise<ContainerRef> {
    await this.segment.seal();
    const { out, opts } = this;
    const indexOffset = out.written;
    const sealedIndex = sealEncodedIndex(opts.dataKey.plaintext, opts.repositoryId, opts.containerId, this.index.finish());
    await out.write(sealedIndex);
    await out.write(encodeTrailer(indexOffset, sealedIndex.length));
    await out.close();
    return {
      id: opts.containerId.toString('hex'),
      version: FORMAT_VERSION,
      size: out.written,
      indexOffset,
      indexLength: sealedIndex.length,
      objects: this.count,
      indexHash: sha256Hex(sealedIndex),
      preambleLength: this.preamble.length,
      preambleHash: sha256Hex(this.preamble),
      keyId: opts.dataKey.keyId,
      wrappedKey: opts.dataKey.wrapped.toString('base64'),
      commitment: this.commitment.toString('hex'),
    };
  }
}

/** What writes a container's bytes into `out` (see storeContainerFrom); undefined when there is nothing to store. */
type ContainerContent = (out: BufferedFileWriter, containerId: Buffer, signal: AbortSignal) => Promise<ContainerRef | undefined>;

/**
 * Turns a pack written by git into a container: every entry becomes one record holding exactly
 * the bytes git stored (compressed object or delta), so git's deltas are kept and nothing is
 * inflated or re-resolved.
 */
function packContent(opts: { pack: WrittenPack; hashLength: number; dataKey: DataKey; repositoryId: string; progress?: Progress }): ContainerContent {
  return async (out, containerId, signal) => {
    const { pack, hashLength } = opts;
    const idx = new PackIndexFile(await fs.readFile(pack.idxPath), hashLength);
    let n = 0;
    while (n < idx.count && idx.offsets[n] < pack.entriesEnd) n++;
    if (n === 0) {
      await out.abort(new KmscryptError('INTERNAL', 'the pack holds no object to store'));
      return undefined;
    }
    const reader = await WindowedFileReader.open(pack.packPath);
    try {
      const builder = await ContainerBuilder.start(out, { containerId, hashLength, dataKey: opts.dataKey, repositoryId: opts.repositoryId });
      const packEnd = reader.size - hashLength;
      for (let k = 0; k < n; k++) {
        signal.throwIfAborted();
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
        const payloadStart = offset + head.headerLength;
        const entry: IndexEntry = { oid, type, size: head.size, sealedLength: 0, base };
        const baseOid = base === undefined ? undefined : typeof base === 'number' ? idx.oid(base) : base;
        await builder.add(entry, end - payloadStart, (at, length) => reader.read(payloadStart + at, length), baseOid);
        opts.progress?.tick(k + 1, n);
        if (k === n >> 1) killPoint('push-sealing');
      }
      const ref = await builder.finish();
      opts.progress?.done();
      return ref;
    } finally {
      await reader.close();
    }
  };
}

/** One record to copy into a container, its payload decrypted (see mergedContent). */
export interface CopiedRecord {
  entry: IndexEntry;
  payload: Buffer;
  baseOid: Buffer | undefined;
}

/**
 * A container of records read from other containers, copied as they were stored (compressed
 * object or delta), re-sealed under a new data key: tail-merge.ts's merged container. Each
 * record's `entry.base` is a position among these records or a raw ID.
 */
function copiedContent(opts: { records: AsyncIterable<CopiedRecord>; hashLength: number; dataKey: DataKey; repositoryId: string }): ContainerContent {
  return async (out, containerId, signal) => {
    const builder = await ContainerBuilder.start(out, { containerId, hashLength: opts.hashLength, dataKey: opts.dataKey, repositoryId: opts.repositoryId });
    for await (const { entry, payload, baseOid } of opts.records) {
      signal.throwIfAborted();
      await builder.add(entry, payload.length, async (at, length) => payload.subarray(at, at + length), baseOid);
    }
    return builder.finish();
  };
}

/**
 * Seals a pack written by git into a container (see packContent) and stores it as
 * containers/<id>. Returns undefined when the pack holds no object to store.
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
  const packSize = (await fs.stat(opts.pack.packPath)).size;
  const progress = new Progress('Encrypting objects', opts.progress);
  return storeContainerFrom(storage, opts.outPath, packSize, opts.progress, packContent({ ...opts, progress }));
}

/** Copies records into a new container (see copiedContent) and stores it as containers/<id>. */
export async function storeCopiedContainer(
  storage: Storage,
  opts: { records: AsyncIterable<CopiedRecord>; hashLength: number; outPath: string; sizeHint: number; dataKey: DataKey; repositoryId: string },
): Promise<ContainerRef> {
  const ref = await storeContainerFrom(storage, opts.outPath, opts.sizeHint, false, copiedContent(opts));
  if (!ref) throw new KmscryptError('INTERNAL', 'a copied container came out empty');
  return ref;
}

/**
 * Writes a container with `content` and stores it as containers/<id>. The upload runs while the
 * container is written where the storage can take a file as it grows (S3, in parts); a failure
 * of either stops both and stores nothing.
 */
async function storeContainerFrom(
  storage: Storage,
  outPath: string,
  sizeHint: number,
  progress: boolean,
  content: ContainerContent,
): Promise<ContainerRef | undefined> {
  const containerId = randomBytes(16);
  const out = await BufferedFileWriter.create(outPath, sizeHint);
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
    ref = await content(out, containerId, stop.signal);
  } catch (err) {
    // The file will not grow any more: the upload stops with the writer's error.
    await out.abort(err);
    throw err;
  } finally {
    if (!ref) await uploading.catch(() => undefined);
  }
  if (!ref) return undefined;
  // Shown once the encryption progress is done, so that the two lines do not interleave.
  shown = new TransferProgress('Uploading', progress);
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
