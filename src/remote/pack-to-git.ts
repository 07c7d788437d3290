import { promises as fs } from 'node:fs';
import { KmscryptError } from '../errors';
import { startIndexPack } from '../git/index-pack';
import { packHeader } from '../git/pack-format';
import { PackIndexFile } from '../git/pack-index-file';
import { PackStream } from '../git/pack-stream';
import type { StoredPack } from '../git/pack-subset';

export interface PackToGitOptions {
  objectFormat: 'sha1' | 'sha256';
  /** git's own "Receiving objects" progress (clones). */
  progress: boolean;
  /** A clone's complete pack: index-pack checks every link (see startIndexPack). */
  selfContained?: boolean;
  /** Marks the pack as a promisor pack, with this content for its .promisor file. */
  promisor?: string;
}

/**
 * Hands git a pack of `count` entries that `writeEntries` writes (decrypted payloads behind pack
 * entry headers), for `index-pack` to verify and store; then checks that every object the store
 * claimed is in the pack under that ID. Returns the pack's index and its .keep file, which git
 * removes once its refs are updated.
 */
export async function packToGit(
  options: PackToGitOptions,
  count: number,
  claimed: () => Iterable<Buffer>,
  writeEntries: (write: (bytes: Buffer) => Promise<void>) => Promise<void>,
): Promise<StoredPack> {
  const indexer = startIndexPack({ progress: options.progress, selfContained: options.selfContained, promisor: options.promisor });
  const pack = new PackStream(indexer.input, options.objectFormat);
  try {
    await pack.write(packHeader(count));
    await writeEntries((bytes) => pack.write(bytes));
    await pack.end();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | undefined)?.code;
    if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED') {
      // index-pack stopped reading: it has exited, and git's own words say why.
      throw await indexer.done.then(
        () => err,
        (gitFailure: unknown) => gitFailure,
      );
    }
    indexer.abort();
    await indexer.done.catch(() => undefined);
    throw err;
  }
  const result = await indexer.done;
  const idx = new PackIndexFile(await fs.readFile(result.idxFile), options.objectFormat === 'sha1' ? 20 : 32);
  for (const oid of claimed()) {
    if (!idx.has(oid)) {
      throw new KmscryptError(
        'TAMPERED',
        `object ${oid.toString('hex')} decrypted to content with another ID; the repository was written by a faulty or hostile client`,
      );
    }
  }
  return { keepFile: result.keepFile, idxFile: result.idxFile };
}
