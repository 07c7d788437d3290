import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KmscryptError } from '../errors';
import { DELTA_TYPE } from '../format/container-index';
import type { Manifest } from '../format/manifest';
import { LocalObjects } from '../git/object-presence';
import { encodeEntryHeader, OBJ_REF_DELTA } from '../git/pack-format';
import { localCloneShape } from '../git/clone-shape';
import type { StoredPack } from '../git/pack-subset';
import { hashLength } from '../format/object-format';
import { isConnected } from '../git/repository';
import { OpenedContainer, openContainers, planRuns, readRun } from './container-reader';
import { openLargeRecord } from './large-record';
import { killPoint } from './kill-point';
import { packToGit } from './pack-to-git';
import { Progress } from './progress';
import type { RemoteRepository } from './remote-repository';
import { followFetchedTagsOnly } from './tag-following';
import type { TransferOptions } from './transfer-options';

/** A record chosen for download: container and record number. */
interface Selection {
  container: OpenedContainer;
  records: number[];
}

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
  // A container made by gc from containers this clone already fetched holds nothing new for it.
  const fresh = manifest.containers.filter((c) => !seen.has(c.id) && !(c.consolidates?.length && c.consolidates.every((id) => seen.has(id))));
  const packs: StoredPack[] = [];

  let opened = await openContainers(repo, fresh);
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

/** Every object of the containers, and every delta base they name. */
function* candidatesOf(opened: OpenedContainer[]): Generator<string> {
  for (const c of opened) {
    for (let i = 0; i < c.index.count; i++) {
      yield c.index.oidHex(i);
      if (c.index.types[i] === DELTA_TYPE) yield c.index.base(i).toString('hex');
    }
  }
}

async function transfer(
  repo: RemoteRepository,
  manifest: Manifest,
  opened: OpenedContainer[],
  options: TransferOptions,
  local: LocalObjects | null,
  selfContained = false,
): Promise<StoredPack[]> {
  const selections = await select(repo, manifest, opened, local);
  const total = selections.reduce((n, s) => n + s.records.length, 0);
  if (total === 0) return [];
  const tmpDir = repo.config.stateDir ? join(repo.config.stateDir, 'tmp') : tmpdir();
  // A clone shows git's own progress (receiving, resolving deltas); a fetch shows ours.
  const progress = new Progress('Decrypting objects', options.progress && !options.cloning);
  const claimed = function* () {
    for (const s of selections) for (const i of s.records) yield s.container.index.oid(i);
  };
  const stored = await packToGit(
    { objectFormat: repo.descriptor.objectFormat === 'sha1' ? 'sha1' : 'sha256', progress: options.progress && options.cloning, selfContained },
    total,
    claimed,
    async (write) => {
      let sent = 0;
      for (const s of selections) {
        const all = s.records.length === s.container.index.count;
        const wanted = all ? undefined : new Set(s.records);
        const { index } = s.container;
        const writeHeader = (i: number) => {
          const delta = index.types[i] === DELTA_TYPE;
          return write(encodeEntryHeader(delta ? OBJ_REF_DELTA : index.types[i], index.sizes[i], delta ? index.base(i) : undefined));
        };
        for (const run of planRuns(index, s.records)) {
          if (run.large) {
            // Verified completely before its first byte is written to git.
            const chunks = await openLargeRecord(repo, s.container, run.first, tmpDir);
            killPoint('fetch-large-verified');
            await writeHeader(run.first);
            for await (const chunk of chunks) await write(chunk);
            progress.tick(++sent, total);
            if (sent === total >> 1) killPoint('fetch-streaming');
            continue;
          }
          for await (const { i, payload } of readRun(repo, s.container, run, (k) => wanted === undefined || wanted.has(k))) {
            await writeHeader(i);
            await write(payload);
            progress.tick(++sent, total);
            if (sent === total >> 1) killPoint('fetch-streaming');
          }
        }
      }
      progress.done();
    },
  );
  killPoint('fetch-indexed');
  return [stored];
}

/**
 * Chooses records: every object of the given containers that the local repository lacks, then
 * the delta bases those need that are neither chosen nor local, from any container. Without
 * `local` (a clone) nothing is local.
 */
async function select(repo: RemoteRepository, manifest: Manifest, opened: OpenedContainer[], local: LocalObjects | null): Promise<Selection[]> {
  if (!local && opened.length === manifest.containers.length) {
    // Everything, as for a clone: every delta base is in the pack, which index-pack verifies. An
    // object two pushes both stored (the same file committed on two branches by two clones, a tag
    // of a tree pushed before) goes once: index-pack refuses a pack that holds an object twice.
    const taken = opened.length > 1 ? new Set<string>() : undefined;
    const firstCopy = (c: OpenedContainer, i: number): boolean => {
      if (!taken) return true;
      const oid = c.index.oidHex(i);
      return !taken.has(oid) && taken.add(oid) !== undefined;
    };
    return opened
      .map((container) => ({ container, records: Array.from({ length: container.index.count }, (_, i) => i).filter((i) => firstCopy(container, i)) }))
      .filter((s) => s.records.length > 0);
  }
  const present = local ? await local.present(candidatesOf(opened)) : new Set<string>();
  const chosen = new Map<OpenedContainer, Set<number>>();
  const chosenOids = new Set<string>();
  for (const c of opened) {
    const set = new Set<number>();
    for (let i = 0; i < c.index.count; i++) {
      const oid = c.index.oidHex(i);
      if (!present.has(oid) && !chosenOids.has(oid)) {
        set.add(i);
        chosenOids.add(oid);
      }
    }
    chosen.set(c, set);
  }

  let all: OpenedContainer[] | undefined;
  for (;;) {
    const needed = new Set<string>();
    for (const [c, set] of chosen) {
      for (const i of set) {
        if (c.index.types[i] !== DELTA_TYPE) continue;
        const base = c.index.base(i).toString('hex');
        if (!chosenOids.has(base) && !present.has(base)) needed.add(base);
      }
    }
    if (needed.size === 0) break;
    for (const oid of local ? await local.present(needed) : []) {
      present.add(oid);
      needed.delete(oid);
    }
    if (needed.size === 0) break;
    all ??= [
      ...opened,
      ...(await openContainers(
        repo,
        manifest.containers.filter((r) => !opened.some((o) => o.ref.id === r.id)),
      )),
    ];
    for (const oid of needed) {
      const holder = all.find((c) => c.index.find(oid) !== undefined);
      if (!holder)
        throw new KmscryptError('CORRUPT', `${repo.config.url}: object ${oid}, a delta base, is in no container`, { fix: `run 'git kmscrypt verify'` });
      if (!chosen.has(holder)) chosen.set(holder, new Set());
      chosen.get(holder)!.add(holder.index.find(oid)!);
      chosenOids.add(oid);
    }
  }
  return [...chosen].filter(([, set]) => set.size > 0).map(([container, set]) => ({ container, records: [...set].sort((a, b) => a - b) }));
}
