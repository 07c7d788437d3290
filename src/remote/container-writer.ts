import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { KmscryptError } from '../errors';
import { MAX_OBJECT_SIZE } from '../format/constants';
import { encodePreamble, encodeTrailer, sealEncodedIndex, sha256Hex } from '../format/container';
import { DELTA_TYPE, IndexWriter } from '../format/container-index';
import type { ContainerRef } from '../format/manifest';
import { RecordSealer, recordKeys } from '../format/record';
import { OBJ_OFS_DELTA, OBJ_REF_DELTA, parseEntryHeader } from '../git/pack-format';
import { PackIndexFile } from '../git/pack-index-file';
import type { WrittenPack } from '../git/pack-objects';
import type { DataKey } from '../keys/key-provider';
import { BufferedFileWriter, WindowedFileReader } from './file-io';
import type { Progress } from './progress';

const CHUNK = 1 << 20;

export interface WrittenContainer {
  path: string;
  ref: ContainerRef;
}

export class ObjectTooLargeError extends KmscryptError {
  constructor(readonly oid: string, readonly size: number) {
    super('TOO_LARGE', `object ${oid} is ${size} bytes, over the 2 GiB single-object limit; nothing was uploaded`, { oid, size });
  }
}

/**
 * Turns a pack written by git into a container file: every entry becomes one sealed record
 * holding exactly the bytes git stored (compressed object or delta), so git's deltas are kept
 * and nothing is inflated or re-resolved. Memory stays bounded: entries are streamed in 1 MiB
 * chunks and only the index (a few dozen bytes per object) is kept.
 */
export async function writeContainer(opts: {
  pack: WrittenPack;
  hashLength: number;
  outPath: string;
  dataKey: DataKey;
  repositoryId: string;
  progress?: Progress;
}): Promise<WrittenContainer | undefined> {
  const { pack, hashLength } = opts;
  const idx = new PackIndexFile(await fs.readFile(pack.idxPath), hashLength);
  let n = 0;
  while (n < idx.count && idx.offsets[n] < pack.entriesEnd) n++;
  if (n === 0) return undefined;

  const containerId = randomBytes(16);
  const keys = recordKeys(opts.dataKey.plaintext, opts.repositoryId, containerId);
  const preamble = encodePreamble({ containerId, hashLength, keyId: opts.dataKey.keyId, wrappedKey: opts.dataKey.wrapped });
  const reader = await WindowedFileReader.open(pack.packPath);
  const out = await BufferedFileWriter.create(opts.outPath);
  const index = new IndexWriter(hashLength, preamble.length);
  try {
    await out.write(preamble);
    const packEnd = reader.size - hashLength;
    for (let k = 0; k < n; k++) {
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
      const sealer = new RecordSealer(keys, k, { oid, type, size: head.size, base: base === undefined ? Buffer.alloc(0) : typeof base === 'number' ? idx.oid(base) : base });
      let sealedLength = 0;
      for (let pos = offset + head.headerLength; pos < end; pos += CHUNK) {
        const chunk = sealer.update(await reader.read(pos, Math.min(CHUNK, end - pos)));
        sealedLength += chunk.length;
        await out.write(chunk);
      }
      const tail = sealer.final();
      sealedLength += tail.length;
      await out.write(tail);
      index.add({ oid, type, size: head.size, sealedLength, base });
      opts.progress?.tick(k + 1, n);
    }
    const indexOffset = out.written;
    const sealedIndex = sealEncodedIndex(opts.dataKey.plaintext, opts.repositoryId, containerId, index.finish());
    await out.write(sealedIndex);
    await out.write(encodeTrailer(indexOffset, sealedIndex.length));
    await out.close();
    opts.progress?.done();
    return {
      path: opts.outPath,
      ref: {
        id: containerId.toString('hex'),
        size: out.written,
        indexOffset,
        indexLength: sealedIndex.length,
        objects: n,
        indexHash: sha256Hex(sealedIndex),
        preambleLength: preamble.length,
        preambleHash: sha256Hex(preamble),
        keyId: opts.dataKey.keyId,
        wrappedKey: opts.dataKey.wrapped.toString('base64'),
      },
    };
  } catch (err) {
    await out.close().catch(() => undefined);
    throw err;
  } finally {
    await reader.close();
  }
}
