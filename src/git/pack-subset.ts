import { promises as fs } from 'node:fs';
import { spawnGit } from './git-child';
import { startIndexPack } from './index-pack';
import { gitFailure } from './run-git';

export interface StoredPack {
  keepFile: string;
  idxFile: string;
}

/**
 * Stores a new kept pack of exactly the objects `objects` yields (lines as `rev-list --objects`
 * prints them: an object ID, perhaps a path), read from the local repository: `git pack-objects
 * --stdout | git index-pack --stdin --keep`, as a fetch's own pack is stored.
 */
export async function storePackOf(objects: AsyncIterable<string>, opts: { selfContained: boolean }): Promise<StoredPack> {
  const indexer = startIndexPack({ progress: false, selfContained: opts.selfContained });
  const packer = spawnGit(['pack-objects', '--stdout', '--delta-base-offset', '-q'], ['pipe', 'pipe', 'pipe']);
  let err = '';
  packer.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const packed = new Promise<void>((resolve, reject) => {
    packer.on('error', reject);
    packer.on('close', (code) => (code === 0 ? resolve() : reject(gitFailure(['pack-objects'], code, err))));
  });
  packer.stdout!.pipe(indexer.input);
  packer.stdin!.on('error', () => undefined);
  try {
    for await (const line of objects) {
      if (!packer.stdin!.write(line + '\n')) await new Promise((r) => packer.stdin!.once('drain', r));
    }
    packer.stdin!.end();
    await packed;
  } catch (e) {
    packer.kill();
    indexer.abort();
    await indexer.done.catch(() => undefined);
    throw e;
  }
  const { keepFile, idxFile } = await indexer.done;
  return { keepFile, idxFile };
}

/** Removes a pack git has not yet used: its index first, so that nothing finds a pack without one. */
export async function removePack(idxFile: string): Promise<void> {
  const base = idxFile.replace(/\.idx$/, '');
  for (const ext of ['.idx', '.pack', '.rev', '.promisor', '.keep']) await fs.rm(base + ext, { force: true });
}
