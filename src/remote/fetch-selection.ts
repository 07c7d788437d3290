import { KmscryptError } from '../errors';
import { DELTA_TYPE } from '../format/container-index';
import type { ContainerRef, Manifest } from '../format/manifest';
import { OpenedContainer, openContainers } from './container-reader';
import type { RemoteRepository } from './remote-repository';

/*
 * What a whole-container fetch downloads: the containers this clone has not fetched yet, and of
 * their records the objects the local repository lacks plus the delta bases those need.
 */

/** Which objects the local repository has (LocalObjects reads the object directories). */
export interface ObjectPresence {
  /** The subset of `oids` that the local repository has. */
  present(oids: Iterable<string>): Promise<Set<string>>;
}

/** A record chosen for download: container and record number. */
export interface Selection {
  container: OpenedContainer;
  records: number[];
}

/**
 * The containers of `manifest` this clone has not fetched (`seen`). A container made by gc from
 * containers this clone already fetched holds nothing new for it.
 */
export function unfetchedContainers(manifest: Manifest, seen: ReadonlySet<string>): ContainerRef[] {
  return manifest.containers.filter((c) => !seen.has(c.id) && !(c.consolidates?.length && c.consolidates.every((id) => seen.has(id))));
}

/** Every object of the containers, and every delta base they name. */
export function* candidatesOf(opened: OpenedContainer[]): Generator<string> {
  for (const c of opened) {
    for (let i = 0; i < c.index.count; i++) {
      yield c.index.oidHex(i);
      if (c.index.types[i] === DELTA_TYPE) yield c.index.base(i).toString('hex');
    }
  }
}

/**
 * Chooses records: every object of the given containers that the local repository lacks, then
 * the delta bases those need that are neither chosen nor local, from any container. Without
 * `local` (a clone) nothing is local.
 */
export async function selectRecords(repo: RemoteRepository, manifest: Manifest, opened: OpenedContainer[], local: ObjectPresence | null): Promise<Selection[]> {
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
