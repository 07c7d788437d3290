import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KmscryptError } from '../errors';
import { removeOnInterrupt } from '../interrupt-cleanup';
import { containerIdOfKey, containerKey, generationOfKey, manifestKey, STORE_KEYS } from '../format/constants';
import { DELTA_TYPE } from '../format/container-index';
import { hashLength } from '../format/object-format';
import type { ContainerRef, Manifest } from '../format/manifest';
import type { Schedule } from '../format/schedule';
import type { DataKey } from '../keys/key-provider';
import { PackIndexFile } from '../git/pack-index-file';
import { writePack, WrittenPack } from '../git/pack-objects';
import { runGit } from '../git/run-git';
import { openContainer } from './container-reader';
import { storeContainer } from './container-writer';
import { readSchedules, storeSchedule } from './gc-schedules';
import { storeHistory } from './manifest-history';
import { fetchObjects } from './fetch';
import { pausePoint } from './kill-point';
import { containersKept } from './tail-merge';
import type { ManifestSnapshot, RemoteRepository } from './remote-repository';
import { defaultTransferOptions } from './transfer-options';

export interface GcOptions {
  /** How long a container stays in the store after no manifest needs it (readers under way). */
  graceMs: number;
  progress: boolean;
}

export interface GcReport {
  generation: number;
  containersBefore: number;
  objectsBefore: number;
  objectsAfter: number;
  bytesBefore: number;
  bytesAfter: number;
  scheduled: number;
  deletedContainers: number;
  deletedManifests: number;
}

const MAX_ATTEMPTS = 5;
/**
 * A container no manifest lists is either left by an interrupted push or uploaded by a push
 * that has not published yet; only age tells them apart. gc schedules one only once the store
 * has held it this long, whatever --grace says, so a push under way never loses its container
 * (push.ts restores a container swept from under a push slower than this).
 */
export const UNLISTED_CONTAINER_MIN_AGE_MS = 24 * 3_600_000;

/**
 * `git kmscrypt gc`: imports every object into a scratch repository, lets git repack what the
 * refs reach into one pack, stores it as one container, and publishes a manifest that lists it
 * instead of the old ones (a create-only write, like a push: a push that wins the race first is
 * kept, and gc starts again if it cannot be kept safely). Old containers and manifests are only
 * scheduled for deletion: they are deleted by a later gc once the grace period has passed, so
 * readers and pushers already under way never find their data gone.
 */
export async function collectGarbage(repo: RemoteRepository, options: GcOptions): Promise<GcReport> {
  const work = await fs.mkdtemp(join(tmpdir(), 'kmscrypt-gc-'));
  const releaseWork = removeOnInterrupt(work);
  const savedGitDir = process.env.GIT_DIR;
  // One data key seals gc's container, its manifest and its schedule; asked for only when needed.
  const keys = new GcDataKey(repo);
  let scratch: string | undefined;
  try {
    for (let attempt = 1; ; attempt++) {
      const snapshot = await repo.latest();
      // One container is already consolidated: only sweep (the next gc with more containers drops
      // what became unreachable since).
      if (!snapshot.manifest || snapshot.manifest.containers.length <= 1) {
        const containers = snapshot.manifest?.containers ?? [];
        const objects = containers.reduce((n, c) => n + c.objects, 0);
        const bytes = containers.reduce((n, c) => n + c.size, 0);
        const swept = await sweep(repo, snapshot, new Set(containers.flatMap((c) => c.consolidates ?? [])), keys, options);
        return {
          ...swept,
          generation: snapshot.manifest?.generation ?? 0,
          containersBefore: containers.length,
          objectsBefore: objects,
          objectsAfter: objects,
          bytesBefore: bytes,
          bytesAfter: bytes,
        };
      }
      if (scratch === undefined) {
        // Only consolidation needs git: a scratch repository to import every object into.
        scratch = join(work, 'scratch.git');
        await runGit(['init', '-q', '--bare', `--object-format=${repo.descriptor.objectFormat}`, scratch]);
        process.env.GIT_DIR = scratch;
      }
      const result = await consolidate(repo, snapshot, work, keys, options);
      if (result) {
        const { published, ...report } = result;
        // Superseded: the containers consolidated, and those a tail merge had merged into one of them.
        return { ...report, ...(await sweep(repo, published, containersKept(snapshot.manifest.containers), keys, options)) };
      }
      if (attempt >= MAX_ATTEMPTS) {
        throw new KmscryptError('CONFLICT', `gc gave way to concurrent pushes ${MAX_ATTEMPTS} times`, {
          unchanged: 'nothing was changed',
          fix: 'run it again when the repository is quieter',
        });
      }
    }
  } finally {
    if (savedGitDir === undefined) delete process.env.GIT_DIR;
    else process.env.GIT_DIR = savedGitDir;
    await keys.wipe();
    await fs.rm(work, { recursive: true, force: true });
    releaseWork();
  }
}

/** gc's one data key, generated under the repository's current key the first time it is needed. */
class GcDataKey {
  private key?: Promise<DataKey>;

  constructor(private readonly repo: RemoteRepository) {}

  get(manifest: Manifest | null): Promise<DataKey> {
    this.key ??= this.repo.generateDataKey(manifest);
    return this.key;
  }

  async wipe(): Promise<void> {
    await this.key?.then(
      (k) => k.plaintext.fill(0),
      () => undefined,
    );
  }
}

async function consolidate(
  repo: RemoteRepository,
  snapshot: ManifestSnapshot,
  work: string,
  keys: GcDataKey,
  options: GcOptions,
): Promise<(Omit<GcReport, 'scheduled' | 'deletedContainers' | 'deletedManifests'> & { published: ManifestSnapshot }) | undefined> {
  const base = snapshot.manifest!;
  const tips = [...new Set(Object.values(base.refs))];
  await fetchObjects(
    repo,
    base,
    tips.map((oid) => ({ oid, name: oid })),
    { ...defaultTransferOptions(), cloning: true, progress: options.progress },
  );
  const format = repo.descriptor.objectFormat;
  let pack: WrittenPack | undefined;
  let stored;
  const dataKey = await keys.get(base);
  if (tips.length) {
    const dir = await fs.mkdtemp(join(work, 'pack-'));
    pack = await writePack({ dir, include: tips, exclude: [], thin: false, hashLength: hashLength(format), progress: options.progress });
    stored = await storeContainer(repo.storage, {
      pack,
      hashLength: hashLength(format),
      outPath: join(dir, 'container'),
      dataKey,
      repositoryId: repo.repositoryId,
      progress: options.progress,
    });
  }
  const consolidated: ContainerRef | undefined = stored ? { ...stored, consolidates: base.containers.map((c) => c.id) } : undefined;
  const packIndex = pack ? new PackIndexFile(await fs.readFile(pack.idxPath), hashLength(format)) : undefined;

  let current = snapshot;
  for (;;) {
    const appended = await appendedSafely(repo, base, current.manifest!, packIndex);
    if (!appended) return undefined;
    const { keyId, head, refs } = current.manifest!;
    const next = repo.successor(current, { keyId, head, refs, containers: [...(consolidated ? [consolidated] : []), ...appended] });
    // The manifests this one supersedes will be deleted: their hashes are attested first.
    const chain = { history: await storeHistory(repo, current), endorsements: current.chain.endorsements };
    await pausePoint('gc-before-publish');
    const { published, snapshot: publishedSnapshot } = await repo.publish(next, dataKey, chain);
    if (published) {
      return {
        published: publishedSnapshot,
        generation: next.generation,
        containersBefore: base.containers.length,
        objectsBefore: base.containers.reduce((n, c) => n + c.objects, 0),
        objectsAfter: consolidated?.objects ?? 0,
        bytesBefore: base.containers.reduce((n, c) => n + c.size, 0),
        bytesAfter: consolidated?.size ?? 0,
      };
    }
    current = await repo.latest();
  }
}

/**
 * Containers pushed after gc read `base` are kept if every delta base they name outside
 * themselves is in the consolidated pack or in one of them; otherwise gc must start over.
 */
async function appendedSafely(
  repo: RemoteRepository,
  base: Manifest,
  current: Manifest,
  consolidated: PackIndexFile | undefined,
): Promise<ContainerRef[] | undefined> {
  const before = new Set(base.containers.map((c) => c.id));
  const now = new Set(current.containers.map((c) => c.id));
  if ([...before].some((id) => !now.has(id))) return undefined;
  const appended = current.containers.filter((c) => !before.has(c.id));
  const opened = await Promise.all(appended.map((c) => openContainer(repo, c)));
  const inAppended = (oid: string) => opened.some((o) => o.index.find(oid) !== undefined);
  for (const o of opened) {
    for (let i = 0; i < o.index.count; i++) {
      if (o.index.types[i] !== DELTA_TYPE) continue;
      const b = o.index.base(i);
      if (consolidated && consolidated.positionOf(b) >= 0) continue;
      if (!inAppended(b.toString('hex'))) return undefined;
    }
  }
  return appended;
}

/**
 * Schedules what the newest manifest no longer needs (the containers it supersedes, containers
 * no manifest lists that are older than UNLISTED_CONTAINER_MIN_AGE_MS, the manifests its history
 * object attests), then deletes what was scheduled at least the grace period ago. Schedules are
 * sealed (docs/FORMAT.md §8.3): one that does not authenticate is never acted on. A container a
 * manifest needs again is never deleted, nor a manifest that no history object attests.
 */
async function sweep(
  repo: RemoteRepository,
  newest: ManifestSnapshot,
  /** Containers a published manifest listed before `manifest` replaced them. */
  superseded: Set<string>,
  keys: GcDataKey,
  options: GcOptions,
): Promise<Pick<GcReport, 'scheduled' | 'deletedContainers' | 'deletedManifests'>> {
  const storage = repo.storage;
  const manifest = newest.manifest;
  const needed = new Set(manifest?.containers.map((c) => c.id) ?? []);
  // Manifests below the newest history object's generation are attested there, and only those.
  const attestedBelow = newest.chain.history?.generation ?? 0;
  const now = Date.now();
  const lists = await readSchedules(repo);
  const alreadyPending = new Set(lists.flatMap((l) => l.schedule.containers));
  const unneeded = (await storage.list(STORE_KEYS.containerPrefix))
    .map((o) => ({ id: containerIdOfKey(o.key), age: now - o.lastModified.getTime() }))
    .filter((c): c is { id: string; age: number } => c.id !== undefined)
    .filter(({ id, age }) => !needed.has(id) && !alreadyPending.has(id) && (superseded.has(id) || age >= UNLISTED_CONTAINER_MIN_AGE_MS))
    .map(({ id }) => id);
  const manifests = (await storage.list(STORE_KEYS.manifestPrefix)).map((m) => generationOfKey(m.key)).filter((g): g is number => g !== undefined);
  const oldManifests = manifests.some((g) => g < attestedBelow) && !lists.some((l) => l.schedule.generation >= attestedBelow);
  if (unneeded.length || oldManifests) {
    const schedule: Schedule = { createdAt: new Date(now).toISOString(), containers: unneeded, generation: attestedBelow };
    const key = await storeSchedule(repo, schedule, await keys.get(manifest));
    if (key) lists.push({ key, schedule });
  }
  let deletedContainers = 0;
  const deletedManifests = new Set<number>();
  for (const { key, schedule } of lists) {
    if (now - Date.parse(schedule.createdAt) < options.graceMs) continue;
    for (const id of schedule.containers) {
      if (needed.has(id)) continue;
      await storage.delete(containerKey(id));
      deletedContainers++;
    }
    for (const g of manifests) {
      if (g < schedule.generation && g < attestedBelow && !deletedManifests.has(g)) {
        await storage.delete(manifestKey(g));
        deletedManifests.add(g);
      }
    }
    await storage.delete(key);
  }
  return { scheduled: unneeded.length, deletedContainers, deletedManifests: deletedManifests.size };
}
