import { join } from 'node:path';
import type { ContainerRef } from '../format/manifest';
import { hashLength } from '../format/object-format';
import type { IndexEntry } from '../format/container-index';
import { DELTA_TYPE } from '../format/container-index';
import { LARGE_RECORD, OpenedContainer, openContainers, planRuns, readRun } from './container-reader';
import { CopiedRecord, storeCopiedContainer } from './container-writer';
import { killPoint } from './kill-point';
import type { ManifestSnapshot, RemoteRepository } from './remote-repository';

/**
 * Every push adds a container, so a store nobody runs gc on would make each clone open one index
 * and unwrap one data key per push ever made. After a push publishes, when the newest MERGE_FANOUT
 * containers each stand for the same number of pushes, the pusher merges them into one: their
 * records copied as stored (no object is inflated or dropped, unlike gc), re-sealed under a new
 * data key, listed in their place with `consolidates` naming them and `pushes` the pushes it now
 * stands for. Sixteen one-push containers become one of 16 pushes, sixteen of those one of 256:
 * after n pushes a manifest lists at most 15 containers per power of 16 (docs/performance.md).
 *
 * Best effort, like git's auto gc: the merge is published with the same create-only write as a
 * push; when another publication comes first the merge is dropped (its container left unlisted,
 * for gc to sweep) and a later push tries again. Readers of older manifests still find the merged
 * containers: nothing is deleted here.
 */
export const MERGE_FANOUT = 16;
/** A tail whose containers add up to more than this is left alone: merging it would cost a push too much. */
export const MERGE_MAX_BYTES = 64 << 20;

/** How many pushes a container stands for: undefined for gc's (it dropped unreachable objects: never merged). */
export function pushesOf(c: ContainerRef): number | undefined {
  if (c.pushes !== undefined) return c.pushes;
  return c.consolidates === undefined ? 1 : undefined;
}

/** The newest MERGE_FANOUT containers when they are to be merged (see above), else undefined. */
export function tailToMerge(containers: readonly ContainerRef[]): ContainerRef[] | undefined {
  if (containers.length < MERGE_FANOUT) return undefined;
  const tail = containers.slice(-MERGE_FANOUT);
  const weight = pushesOf(tail[0]);
  if (weight === undefined || tail.some((c) => pushesOf(c) !== weight)) return undefined;
  if (tail.reduce((n, c) => n + c.size, 0) > MERGE_MAX_BYTES) return undefined;
  if (new Set(tail.map((c) => c.id)).size < tail.length) return undefined;
  return tail;
}

/**
 * The containers whose every object `containers` hold: each one listed, and those a tail merge
 * merged into one of them (a merge keeps every record; gc's consolidation does not).
 */
export function containersKept(containers: readonly ContainerRef[]): Set<string> {
  const ids = new Set<string>();
  for (const c of containers) {
    ids.add(c.id);
    if (c.pushes !== undefined) for (const id of c.consolidates ?? []) ids.add(id);
  }
  return ids;
}

/** Whether `now` still lists every object `before` listed (containersKept). */
export function keepsObjectsOf(now: { containers: ContainerRef[] } | null, before: { containers: ContainerRef[] } | null): boolean {
  const ids = containersKept(now?.containers ?? []);
  return (before?.containers ?? []).every((c) => ids.has(c.id));
}

/**
 * Merges the tail of the manifest `snapshot` holds while one is due (tailToMerge): the merge that
 * makes the 16th container of 16 pushes makes one of 256 next. Returns how many merges were
 * published. `workDir`: where the merged containers are written.
 */
export async function mergeTail(repo: RemoteRepository, snapshot: ManifestSnapshot, workDir: string): Promise<number> {
  let merges = 0;
  for (let at = snapshot; ; merges++) {
    const next = await mergeOnce(repo, at, join(workDir, `merged-${merges}`));
    if (!next) return merges;
    at = next;
  }
}

/** One merge of the tail of `snapshot`, if due: the snapshot it published, or undefined. */
async function mergeOnce(repo: RemoteRepository, snapshot: ManifestSnapshot, outPath: string): Promise<ManifestSnapshot | undefined> {
  const manifest = snapshot.manifest;
  const parts = manifest ? tailToMerge(manifest.containers) : undefined;
  if (!manifest || !parts) return undefined;
  const opened = await openContainers(repo, parts);
  // A record too large to hold in memory is streamed through a file when fetched; a tail holding one is left as it is.
  if (opened.some((c) => hasLargeRecord(c))) return undefined;
  const dataKey = await repo.generateDataKey(manifest);
  try {
    const merged = await storeCopiedContainer(repo.storage, {
      records: copiedRecords(repo, opened),
      hashLength: hashLength(repo.descriptor.objectFormat),
      outPath,
      sizeHint: parts.reduce((n, c) => n + c.size, 0),
      dataKey,
      repositoryId: repo.repositoryId,
    });
    killPoint('merge-uploaded');
    const containers = [
      ...manifest.containers.slice(0, -parts.length),
      { ...merged, consolidates: parts.map((c) => c.id), pushes: parts.reduce((n, c) => n + (pushesOf(c) ?? 1), 0) },
    ];
    const next = repo.successor(snapshot, { keyId: dataKey.keyId, head: manifest.head, refs: manifest.refs, peeled: manifest.peeled, containers });
    const { published, snapshot: publishedSnapshot } = await repo.publish(next, dataKey, snapshot.chain);
    return published ? publishedSnapshot : undefined;
  } finally {
    dataKey.plaintext.fill(0);
  }
}

function hasLargeRecord(c: OpenedContainer): boolean {
  for (let i = 0; i < c.index.count; i++) if (!c.index.inSegment(i) && c.index.lengths[i] > LARGE_RECORD) return true;
  return false;
}

/**
 * Every record of the containers once (the first copy of an object stored twice), in their order,
 * authenticated and decrypted. A delta's base is its new position when it is among them, else its ID.
 */
async function* copiedRecords(repo: RemoteRepository, opened: OpenedContainer[]): AsyncGenerator<CopiedRecord> {
  const position = new Map<string, number>();
  const chosen = opened.map((c) => {
    const records: number[] = [];
    for (let i = 0; i < c.index.count; i++) {
      const oid = c.index.oidHex(i);
      if (position.has(oid)) continue;
      position.set(oid, position.size);
      records.push(i);
    }
    return records;
  });
  for (const [k, c] of opened.entries()) {
    const wanted = new Set(chosen[k]);
    const { index } = c;
    for (const run of planRuns(index, chosen[k])) {
      for await (const { i, payload } of readRun(repo, c, run, (n) => wanted.has(n))) {
        const delta = index.types[i] === DELTA_TYPE;
        const baseOid = delta ? index.base(i) : undefined;
        const local = baseOid ? position.get(baseOid.toString('hex')) : undefined;
        const entry: IndexEntry = { oid: index.oid(i), type: index.types[i], size: index.sizes[i], sealedLength: 0, base: local ?? baseOid };
        yield { entry, payload, baseOid };
      }
    }
  }
}
