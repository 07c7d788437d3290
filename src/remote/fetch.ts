import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KmscryptError } from '../errors';
import type { Manifest } from '../format/manifest';
import { LocalObjects } from '../git/object-presence';
import { encodeEntryHeader } from '../git/pack-format';
import { localCloneShape } from '../git/clone-shape';
import type { StoredPack } from '../git/pack-subset';
import { hashLength } from '../format/object-format';
import { isConnected } from '../git/repository';
import { OpenedContainer, openContainers, packTypeOf, planRuns, readUnits } from './container-reader';
import { candidatesOf, selectRecords, unfetchedContainers } from './fetch-selection';
import { openLargeRecord } from './large-record';
import { killPoint } from './kill-point';
import { packToGit } from './pack-to-git';
import { Progress } from './progress';
import type { RemoteRepository } from './remote-repository';
import { followFetchedTagsOnly } from './tag-following';
import { trace } from '../trace';
import type { TransferOptions } from './transfer-options';

/**
 * The whole fetch path: open the indexes of the containers this clone has not fetched yet,
 * choose the objects the local repository lacks (plus any delta base it lacks), stream those
 * records, authenticate and decrypt each one, and hand git a pack to verify and store with
 * `index-pack`. Returns the .keep files git must remove once it has updated its refs.
 */
export interface FetchResult {
  /** .keep files git removes once it has updated its refs. */
  locks: string[];
  /** git itself checked that the new pack is self-contained and connected (clones only). */
  connected: boolean;
}

/** One `fetch <oid> <name>` line of git's. */
export interface WantedObject {
  oid: string;
  name: string;
}

export async function fetchObjects(
  repo: RemoteRepository,
  manifest: Manifest,
  requests: readonly WantedObject[],
  options: TransferOptions,
): Promise<FetchResult> {
  killPoint('fetch-start');
  if (await fetchesSelectively(options)) {
    // Loaded on demand, as this module is: most fetches never walk history.
    const { selectiveFetch } = await import('./selective-fetch');
    return selectiveFetch(repo, manifest, requests, options);
  }
  const wants = [...new Set(requests.map((r) => r.oid))];
  const seen = new Set(options.refetch ? [] : (await repo.state.load()).fetched);
  const fresh = unfetchedContainers(manifest, seen);
  const packs: StoredPack[] = [];

  let opened = await openContainers(repo, fresh);
  trace(`opened the indexes of ${opened.length} of ${manifest.containers.length} containers`);
  killPoint('fetch-indexes');
  // A clone has nothing; a fetch asks git once about the wanted tips, every object of the new
  // containers and their delta bases together, rather than in three rounds. `--refetch` fetches
  // as a clone does.
  const local = options.cloning || options.refetch ? null : new LocalObjects();
  if (local) await local.present([...wants, ...candidatesOf(opened)]);
  const missing = local ? wants.filter((o) => !local.knownPresent(o)) : wants;
  if (missing.length === 0) return { locks: [], connected: false };

  const selfContained = options.cloning && options.checkConnectivity && fresh.length === manifest.containers.length;
  packs.push(...(await transfer(repo, manifest, opened, options, local, selfContained)));
  if (!options.cloning && !(await isConnected(missing))) {
    // This clone lacks objects of containers it fetched before (e.g. after a local gc): look everywhere.
    opened = await openContainers(repo, manifest.containers);
    packs.push(...(await transfer(repo, manifest, opened, options, new LocalObjects())));
    if (!(await isConnected(missing))) {
      throw new KmscryptError('CORRUPT', `${repo.config.url} does not hold every object the refs need`, { fix: `run 'git kmscrypt verify' on it` });
    }
  }
  const stored = options.followTags
    ? await followFetchedTagsOnly(manifest, wants, packs, { hashLength: hashLength(repo.descriptor.objectFormat), selfContained })
    : packs;
  await repo.state.update({ fetched: manifest.containers.map((c) => c.id), known: manifest.containers.map((c) => c.id) });
  killPoint('fetch-recorded');
  return { locks: stored.map((p) => p.keepFile), connected: selfContained };
}

/**
 * A fetch that limits history or objects, or one into a clone that is shallow or partial, chooses
 * objects by walking history rather than taking whole containers: a shallow or partial clone
 * lacks, on purpose, most objects of the containers it fetched from.
 */
async function fetchesSelectively(options: TransferOptions): Promise<boolean> {
  if (options.depth > 0 || options.deepenSince !== undefined || options.deepenNot.length > 0) return true;
  if (options.filter !== undefined || options.fromPromisor || options.noDependents) return true;
  if (options.cloning) return false;
  const shape = await localCloneShape();
  return shape.shallow || shape.partial;
}

async function transfer(
  repo: RemoteRepository,
  manifest: Manifest,
  opened: OpenedContainer[],
  options: TransferOptions,
  local: LocalObjects | null,
  selfContained = false,
): Promise<StoredPack[]> {
  const selections = await selectRecords(repo, manifest, opened, local);
  const total = selections.reduce((n, s) => n + s.records.length, 0);
  if (total === 0) return [];
  const tmpDir = repo.config.stateDir ? join(repo.config.stateDir, 'tmp') : tmpdir();
  // A clone shows git's own progress (receiving, resolving deltas); a fetch shows ours.
  const progress = new Progress('Decrypting objects', options.progress && !options.cloning);
  const claimed = selections.map((s) => ({ ids: s.container.index.oids, records: s.records.length === s.container.index.count ? undefined : s.records }));
  const stored = await packToGit(
    { objectFormat: repo.descriptor.objectFormat === 'sha1' ? 'sha1' : 'sha256', progress: options.progress && options.cloning, selfContained },
    total,
    claimed,
    async (pack) => {
      let sent = 0;
      const sentOne = () => {
        progress.tick(++sent, total);
        if (sent === total >> 1) killPoint('fetch-streaming');
      };
      for (const s of selections) {
        const all = s.records.length === s.container.index.count;
        const wanted = all ? undefined : new Set(s.records);
        const { index } = s.container;
        for (const run of planRuns(index, s.records)) {
          if (run.large) {
            // Verified completely before its first byte is written to git.
            const chunks = await openLargeRecord(repo, s.container, run.first, tmpDir);
            killPoint('fetch-large-verified');
            await pack.write(encodeEntryHeader(packTypeOf(index, run.first), index.sizes[run.first], index.base(run.first)));
            for await (const chunk of chunks) await pack.write(chunk);
            sentOne();
            continue;
          }
          // By unit, not by record: a clone of express writes 33,522 entries from segments of up to 64 KiB.
          for await (const unit of readUnits(repo, s.container, run, (k) => wanted === undefined || wanted.has(k))) {
            for (let k = unit.first; k <= unit.last; k++) {
              if (wanted !== undefined && !wanted.has(k)) continue;
              await pack.entry(packTypeOf(index, k), index.sizes[k], index.base(k), unit.payload(k));
              sentOne();
            }
          }
        }
      }
      progress.done();
    },
  );
  killPoint('fetch-indexed');
  return [stored];
}
