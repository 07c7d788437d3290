import { KmscryptError } from '../errors';
import type { CommitFacts } from '../git/git-object';

/** git's "deepen to the full history" (`--unshallow`), INFINITE_DEPTH in shallow.h. */
export const INFINITE_DEPTH = 0x7fffffff;

/** How far back a fetch goes: git's `option depth`, `deepen-relative`, `deepen-since`, `deepen-not`. */
export interface Deepen {
  /** Commits to keep counted from each wanted commit (1 = the commit alone); INFINITE_DEPTH for all. */
  depth?: number;
  /** `--deepen=<n>`: depth counts from the current shallow boundary instead. */
  relative?: boolean;
  /** `--shallow-since`: commits whose committer time is older are left out (seconds). */
  since?: number;
  /** `--shallow-exclude`: commits reachable from these are left out. */
  not?: string[];
}

export interface HistoryRequest {
  /** The commits git asked for (tags already peeled). */
  wants: string[];
  deepen?: Deepen;
  /** The commits of the local `shallow` file. */
  clientShallow: ReadonlySet<string>;
  /** Whether the local repository has a commit (then it has its history, down to its shallow commits). */
  isLocal(oid: string): boolean;
  /** Whether the store has a commit (a shallow commit of this clone may come from another remote). */
  inStore(oid: string): boolean;
  /** Parses commits from the store, many at once. */
  read(oids: string[]): Promise<Map<string, CommitFacts>>;
}

export interface HistoryPlan {
  /** Commits to send, each with its facts: those the local repository lacks. */
  commits: Map<string, CommitFacts>;
  /** The new content of the shallow file when the fetch deepens, else undefined (left as it is). */
  shallow?: Set<string>;
}

/**
 * Chooses the commits of a fetch as upload-pack does for a client with the `shallow` capability
 * (upload-pack.c deepen, deepen_by_rev_list; shallow.c get_shallow_commits) and computes the
 * shallow file fetch-pack would write from the `shallow` and `unshallow` lines: new shallow =
 * (old ∪ boundary) − unshallowed.
 *
 * 1. With a depth, the boundary is every commit at distance depth−1 from a wanted commit (from the
 *    current shallow commits with `relative`); with since/not, every kept commit with a parent left
 *    out. A current shallow commit reached short of the boundary is unshallowed: its parents are
 *    wanted too. `--unshallow` unshallows every shallow commit and draws no boundary.
 * 2. The commits sent are those reachable from the wanted ones (and the unshallowed commits'
 *    parents) that the local repository lacks, not crossing a shallow commit, old or new.
 */
export async function walkHistory(request: HistoryRequest): Promise<HistoryPlan> {
  const facts = new Map<string, CommitFacts>();
  const read = async (oids: Iterable<string>) => {
    const missing = [...new Set(oids)].filter((o) => !facts.has(o));
    if (missing.length) for (const [oid, f] of await request.read(missing)) facts.set(oid, f);
    return (oid: string) => facts.get(oid)!;
  };

  const deepen = request.deepen;
  let boundary = new Set<string>();
  let unshallowed = new Set<string>();
  if (deepen?.depth !== undefined && deepen.depth > 0) {
    if (deepen.depth === INFINITE_DEPTH) {
      unshallowed = new Set([...request.clientShallow].filter((oid) => request.inStore(oid)));
    } else {
      // upload-pack deepens from the client's shallow commits it knows (get_reachable_list).
      const starts = deepen.relative ? [...request.clientShallow].filter((oid) => request.inStore(oid)) : request.wants;
      const depth = deepen.relative ? deepen.depth + 1 : deepen.depth;
      const distance = await distances(starts, depth - 1, read);
      for (const [oid, d] of distance) if (d === depth - 1) boundary.add(oid);
      for (const oid of request.clientShallow) if (distance.has(oid) && !boundary.has(oid)) unshallowed.add(oid);
    }
  } else if (deepen?.since !== undefined || deepen?.not?.length) {
    const kept = await keptSince(request.wants, deepen.since, deepen.not ?? [], read);
    if (kept.size === 0)
      throw new KmscryptError(
        'BAD_CONFIG',
        'no commits selected for shallow requests: every wanted commit is older than --shallow-since or reachable from --shallow-exclude',
      );
    for (const oid of kept) if ((facts.get(oid)?.parents ?? []).some((p) => !kept.has(p))) boundary.add(oid);
    for (const oid of request.clientShallow) if (kept.has(oid) && !boundary.has(oid)) unshallowed.add(oid);
  }
  boundary = new Set([...boundary].filter((oid) => !request.clientShallow.has(oid)));

  // 2. The commits to send.
  const stops = new Set([...request.clientShallow, ...boundary]);
  const commits = new Map<string, CommitFacts>();
  const seen = new Set<string>();
  const startFacts = await read(unshallowed);
  let level = [...request.wants, ...[...unshallowed].flatMap((oid) => startFacts(oid).parents)];
  while (level.length > 0) {
    const fresh = [...new Set(level)].filter((oid) => !seen.has(oid) && !request.isLocal(oid));
    for (const oid of fresh) seen.add(oid);
    const get = await read(fresh);
    level = [];
    for (const oid of fresh) {
      const f = get(oid);
      commits.set(oid, f);
      if (!stops.has(oid)) level.push(...f.parents);
    }
  }

  if (!deepen || (deepen.depth === undefined && deepen.since === undefined && !deepen.not?.length)) return { commits };
  const shallow = new Set([...request.clientShallow, ...boundary]);
  for (const oid of unshallowed) shallow.delete(oid);
  return { commits, shallow };
}

/** Shortest distance of every commit within `limit` of the starts (breadth first, level by level). */
async function distances(
  starts: string[],
  limit: number,
  read: (oids: Iterable<string>) => Promise<(oid: string) => CommitFacts>,
): Promise<Map<string, number>> {
  const distance = new Map<string, number>();
  let level = [...new Set(starts)];
  for (let d = 0; level.length > 0; d++) {
    for (const oid of level) distance.set(oid, d);
    if (d >= limit) break;
    const get = await read(level);
    level = [...new Set(level.flatMap((oid) => get(oid).parents))].filter((p) => !distance.has(p));
  }
  return distance;
}

/**
 * `rev-list --max-age=<since> <wants> --not <not>`: the commits reachable from the wanted ones
 * without passing through one older than `since` (git's walk does not look behind an old commit),
 * less everything reachable from the excluded ones.
 */
async function keptSince(
  wants: string[],
  since: number | undefined,
  not: string[],
  read: (oids: Iterable<string>) => Promise<(oid: string) => CommitFacts>,
): Promise<Set<string>> {
  const excluded = new Set<string>();
  for (let level = [...new Set(not)]; level.length > 0;) {
    for (const oid of level) excluded.add(oid);
    const get = await read(level);
    level = [...new Set(level.flatMap((oid) => get(oid).parents))].filter((p) => !excluded.has(p));
  }
  const kept = new Set<string>();
  const seen = new Set<string>();
  for (let level = [...new Set(wants)]; level.length > 0;) {
    const fresh = level.filter((oid) => !seen.has(oid) && !excluded.has(oid));
    for (const oid of fresh) seen.add(oid);
    const get = await read(fresh);
    level = [];
    for (const oid of fresh) {
      const f = get(oid);
      if (since !== undefined && f.committerTime < since) continue;
      kept.add(oid);
      level.push(...f.parents);
    }
    level = [...new Set(level)];
  }
  return kept;
}
