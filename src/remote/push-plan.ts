import type { ContainerRef, Manifest } from '../format/manifest';

/**
 * What a push decides before and after it packs: which ref updates the remote, as it is now,
 * accepts (git's rules, in git's words), and the refs, HEAD and peeled tags of the manifest the
 * accepted ones make. The facts of the local history come from `LocalHistory`: the git CLI in a
 * push, a made-up history in the unit tests.
 */

/** One update of a push, its source resolved. */
export interface ResolvedUpdate {
  dst: string;
  /** New value, or null to delete. */
  oid: string | null;
  force: boolean;
}

/** What the checks ask of the local repository. */
export interface LocalHistory {
  /** Whether `ancestor` is reachable from `descendant` (false when either is unknown here). */
  isAncestor(ancestor: string, descendant: string): Promise<boolean>;
  /** Whether the local repository has the object. */
  has(oid: string): Promise<boolean>;
}

/** receive-pack's reason, word for word: git prints it as `[remote rejected] <ref> (<reason>)`. */
export const DELETE_CURRENT_BRANCH = 'deletion of the current branch prohibited';

/**
 * Checks each update against the remote as it is now (`manifest`); returns dst → reason for each
 * rejected one (undefined: accepted). `leases`: --force-with-lease's expected values by ref ('' for absent).
 */
export async function evaluateUpdates(
  updates: ResolvedUpdate[],
  manifest: Manifest | null,
  leases: ReadonlyMap<string, string>,
  local: LocalHistory,
): Promise<Map<string, string | undefined>> {
  const verdicts = new Map<string, string | undefined>();
  for (const u of updates) {
    const current = manifest?.refs[u.dst];
    const lease = leases.get(u.dst);
    if (lease !== undefined && (current ?? '') !== lease) {
      verdicts.set(u.dst, 'stale info');
      continue;
    }
    if (u.oid === null) {
      // As receive-pack with receive.denyDeleteCurrent unset (git's default, bare repositories
      // included): a clone would find HEAD pointing at nothing. --force and --mirror do not change it.
      // Deleting a ref that is not there succeeds, as receive-pack lets it (with a warning).
      verdicts.set(u.dst, u.dst === manifest?.head && current !== undefined ? DELETE_CURRENT_BRANCH : undefined);
      continue;
    }
    // A lease that holds allows any update, as git decides for every transport (remote.c,
    // set_ref_status_for_push: "If the ref isn't stale then force the update").
    if (current === undefined || current === u.oid || u.force || lease !== undefined) {
      verdicts.set(u.dst, undefined);
      continue;
    }
    if (u.dst.startsWith('refs/tags/')) {
      verdicts.set(u.dst, 'already exists');
      continue;
    }
    // A fast-forward from the remote's current value, whatever list reported; git's own words otherwise.
    if (await local.isAncestor(current, u.oid)) {
      verdicts.set(u.dst, undefined);
    } else {
      verdicts.set(u.dst, (await local.has(current)) ? 'non-fast-forward' : 'fetch first');
    }
  }
  return verdicts;
}

/**
 * The refs, HEAD, peeled tags and containers of the manifest that publishes `winners` over `base`.
 * `localBranch`: the local current branch, which becomes HEAD of a remote without one when it is pushed.
 */
export function plannedContent(
  base: Manifest | null,
  winners: ResolvedUpdate[],
  container: ContainerRef | undefined,
  localBranch: string | undefined,
  peeledTags: ReadonlyMap<string, string>,
): Pick<Manifest, 'head' | 'refs' | 'peeled' | 'containers'> {
  const refs: Record<string, string> = { ...(base?.refs ?? {}) };
  for (const u of winners) {
    if (u.oid === null) delete refs[u.dst];
    else refs[u.dst] = u.oid;
  }
  let head = base?.head ?? null;
  const branches = winners.filter((u) => u.oid !== null && u.dst.startsWith('refs/heads/')).map((u) => u.dst);
  if (!headExists(base) && !(head && branches.includes(head)) && branches.length > 0) {
    // The first branch pushed becomes HEAD, the local current branch if it is among them: a
    // remote's HEAD never names a missing branch once it has one. A HEAD recorded before any
    // branch existed (git kmscrypt init, set-head) stays when its branch is the one pushed.
    head = localBranch && branches.includes(localBranch) ? localBranch : branches[0];
  }
  const containers = base?.containers ?? [];
  // A tag's target is fixed by its ID: the base's entry for that ID, else what this clone peeled.
  const knownTargets = new Map(peeledTags);
  for (const [name, target] of Object.entries(base?.peeled ?? {})) if (base?.refs[name]) knownTargets.set(base.refs[name], target);
  const peeled: Record<string, string> = {};
  for (const [name, oid] of Object.entries(sortRefs(refs))) {
    const target = knownTargets.get(oid);
    if (target) peeled[name] = target;
  }
  return {
    head,
    refs: sortRefs(refs),
    peeled,
    containers: container && !containers.some((c) => c.id === container.id) ? [...containers, container] : containers,
  };
}

function sortRefs(refs: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(refs).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Whether HEAD names a branch the remote has (false for a new or empty repository). */
export function headExists(manifest: Manifest | null): boolean {
  return !!manifest?.head && manifest.refs[manifest.head] !== undefined;
}

/** Whether publishing `updates` would change any ref (deleting a missing ref changes nothing). */
export function changesAnything(updates: ResolvedUpdate[], manifest: Manifest | null): boolean {
  return updates.some((u) => (manifest?.refs[u.dst] ?? null) !== u.oid);
}
