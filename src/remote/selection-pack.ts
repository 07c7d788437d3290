import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { DELTA_TYPE } from '../format/container-index';
import { encodeEntryHeader } from '../git/pack-format';
import { packTypeOf, planRuns, readRun } from './container-reader';
import { openLargeRecord } from './large-record';
import { packToGit, PackToGitOptions } from './pack-to-git';
import { Progress } from './progress';
import type { ObjectLocation } from './location-table';
import type { RemoteObjects } from './remote-objects';
import type { RemoteRepository } from './remote-repository';

/** Objects rebuilt and compressed per batch, so that memory stays bounded however many there are. */
const REBUILD_BATCH = 256;
/** …and at most about this many bytes of them (a chain's whole object stands for the size of its deltas' results). */
const REBUILD_BATCH_BYTES = 8 << 20;

/**
 * Sends a chosen set of objects to git as one pack. A stored record goes as it is (a delta as a
 * REF_DELTA) when its delta base is in the pack or in the local repository, which
 * `index-pack --fix-thin` then uses. A delta whose base is neither is rebuilt here and sent whole,
 * so the clone gets exactly the chosen objects; only when it is too large to rebuild in memory do
 * its bases go along instead.
 */
export async function sendSelection(
  repo: RemoteRepository,
  objects: RemoteObjects,
  chosen: ObjectLocation[],
  isLocal: (oid: string) => boolean,
  options: Omit<PackToGitOptions, 'objectFormat'> & { ourProgress: boolean },
): Promise<string | undefined> {
  const sent = new Uint8Array(objects.size);
  for (const loc of chosen) sent[objects.idOf(loc)] = 1;
  const asStored: ObjectLocation[] = [];
  const rebuilt: ObjectLocation[] = [];
  const queue = [...chosen];
  for (let k = 0; k < queue.length; k++) {
    const loc = queue[k];
    if (loc.c.index.types[loc.i] !== DELTA_TYPE) {
      asStored.push(loc);
      continue;
    }
    const base = objects.baseOf(loc);
    if (sent[objects.idOf(base)] || isLocal(base.c.index.oidHex(base.i))) asStored.push(loc);
    else if (objects.canRebuild(loc)) rebuilt.push(loc);
    else {
      asStored.push(loc);
      sent[objects.idOf(base)] = 1;
      queue.push(base);
    }
  }
  const total = asStored.length + rebuilt.length;
  if (total === 0) return undefined;

  const progress = new Progress('Decrypting objects', options.ourProgress);
  const tmpDir = repo.config.stateDir ? join(repo.config.stateDir, 'tmp') : tmpdir();
  const claimed = [...asStored, ...rebuilt].map((loc) => ({ ids: loc.c.index.oids, records: [loc.i] }));
  const stored = await packToGit({ ...options, objectFormat: objects.hashName }, total, claimed, async (pack) => {
    let done = 0;
    const writeStored = async (loc: ObjectLocation, payload: Buffer | AsyncIterable<Buffer>) => {
      const { index } = loc.c;
      const type = packTypeOf(index, loc.i);
      if (Buffer.isBuffer(payload)) await pack.entry(type, index.sizes[loc.i], index.base(loc.i), payload);
      else {
        await pack.write(encodeEntryHeader(type, index.sizes[loc.i], index.base(loc.i)));
        for await (const chunk of payload) await pack.write(chunk);
      }
      progress.tick(++done, total);
    };

    for (let k = 0; k < rebuilt.length;) {
      const batch: ObjectLocation[] = [];
      for (let bytes = 0; k < rebuilt.length && batch.length < REBUILD_BATCH && (batch.length === 0 || bytes < REBUILD_BATCH_BYTES); k++) {
        batch.push(rebuilt[k]);
        bytes += objects.chainBaseSize(rebuilt[k]);
      }
      const made = await objects.objects(batch);
      for (const loc of batch) {
        const object = made.get(loc)!;
        await pack.entry(object.type, object.data.length, undefined, deflateSync(object.data));
        progress.tick(++done, total);
      }
    }

    // Records still in memory from the walk first; the others in runs, container by container.
    const byContainer = new Map<ObjectLocation['c'], number[]>();
    for (const loc of asStored) {
      const cached = objects.cachedPayload(loc);
      if (cached) await writeStored(loc, cached);
      else {
        if (!byContainer.has(loc.c)) byContainer.set(loc.c, []);
        byContainer.get(loc.c)!.push(loc.i);
      }
    }
    for (const [c, records] of byContainer) {
      records.sort((a, b) => a - b);
      const wanted = new Set(records);
      for (const run of planRuns(c.index, records)) {
        if (run.large) {
          // Verified completely before its first byte is written to git.
          await writeStored(objects.at(c, run.first), await openLargeRecord(repo, c, run.first, tmpDir));
          continue;
        }
        for await (const { i, payload } of readRun(repo, c, run, (k) => wanted.has(k))) await writeStored(objects.at(c, i), payload);
      }
    }
    progress.done();
  });
  return stored.keepFile;
}
