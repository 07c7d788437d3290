import { promises as fs } from 'node:fs';
import { startIndexPack } from '../git/index-pack';
import { packHeader } from '../git/pack-format';
import { PackIndexFile } from '../git/pack-index-file';
import { PackStream } from '../git/pack-stream';
import type { StoredPack } from '../git/pack-subset';
import { trace } from '../trace';
import { checkClaimedIds, type ClaimedIds, sortClaimedIds } from './claimed-ids';

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
 * entry headers, PackStream.entry), for `index-pack` to verify and store; then checks that every
 * object the store claimed is in the pack under that ID (claimed-ids.ts). Returns the pack's
 * index and its .keep file, which git removes once its refs are updated.
 */
export async function packToGit(
  options: PackToGitOptions,
  count: number,
  claimed: readonly ClaimedIds[],
  writeEntries: (pack: PackStream) => Promise<void>,
): Promise<StoredPack> {
  const indexer = startIndexPack({ progress: options.progress, selfContained: options.selfContained, promisor: options.promisor });
  trace(`git index-pack started for a pack of ${count} objects`);
  const pack = new PackStream(indexer.input, options.objectFormat);
  const h = options.objectFormat === 'sha1' ? 20 : 32;
  let sorted: Buffer;
  try {
    await pack.write(packHeader(count));
    await writeEntries(pack);
    await pack.end();
    trace(`pack of ${count} objects sent to git index-pack`);
    sorted = sortClaimedIds(claimed, h);
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
  trace(`git index-pack stored pack ${result.packHash}`);
  const idx = new PackIndexFile(await fs.readFile(result.idxFile), h);
  checkClaimedIds(idx, claimed, sorted);
  trace(`every object ID the store claimed is in pack ${result.packHash}`);
  return { keepFile: result.keepFile, idxFile: result.idxFile };
}
