import { spawnSync } from 'node:child_process';
import { generationOfKey, MANIFEST_READ, manifestKey, STORE_KEYS } from '../../src/format/constants';
import type { Manifest } from '../../src/format/manifest';
import { type RemoteConfig, RemoteRepository } from '../../src/remote/remote-repository';
import type { Sandbox } from './sandbox';

/** A push git reported as accepted: the ref it updated and the commit it set. */
export interface AcceptedPush {
  ref: string;
  commit: string;
}

/** Why an accepted push counts as lost. */
export interface LostPush extends AcceptedPush {
  why: string;
}

/**
 * Every manifest the store holds, generation 1 to the newest, each opened and authenticated the
 * way a reader opens it. Throws when a generation is missing (the log must be contiguous).
 */
export async function readManifestLog(config: RemoteConfig): Promise<Manifest[]> {
  const repo = await RemoteRepository.open(config);
  if (!repo) throw new Error(`no repository at ${config.url}`);
  const generations = (await config.storage.list(STORE_KEYS.manifestPrefix))
    .map((o) => generationOfKey(o.key))
    .filter((g): g is number => g !== undefined)
    .sort((a, b) => a - b);
  const log: Manifest[] = [];
  for (const [i, generation] of generations.entries()) {
    if (generation !== i + 1) throw new Error(`the manifest log is not contiguous: generation ${generation} at position ${i + 1}`);
    const bytes = await config.storage.get(manifestKey(generation), MANIFEST_READ);
    log.push((await repo.openManifestBytes(bytes!, generation)).manifest!);
  }
  return log;
}

/**
 * Which accepted pushes were lost, computed from the whole manifest log rather than from the
 * final refs alone (a push overwritten by a racing push and restored by its author's next push
 * would look fine in the final refs). An accepted push is kept when
 *   1. some manifest of the log sets its ref to its commit (it was published), and
 *   2. in every later manifest the ref still reaches the commit: each change of the ref is a
 *      fast-forward, or its new value still has the commit in its history (git merge-base
 *      --is-ancestor in `mirror`, a mirror clone of the final state; an object the mirror lacks
 *      counts as not reached). A deleted ref reaches nothing.
 * The scenarios that use this never force a push or delete a ref, so nothing they accepted may
 * be dropped; a scenario with forced pushes would have to exempt exactly the changes it forced.
 */
export function lostPushes(sb: Sandbox, mirror: string, log: Manifest[], accepted: AcceptedPush[]): LostPush[] {
  const isAncestor = memo((pair: string) => {
    const [a, b] = pair.split(' ');
    return spawnSync('git', ['merge-base', '--is-ancestor', a, b], { cwd: mirror, env: sb.env }).status === 0;
  });
  const lost: LostPush[] = [];
  for (const p of accepted) {
    const published = log.findIndex((m) => m.refs[p.ref] === p.commit);
    if (published < 0) {
      lost.push({ ...p, why: 'no manifest ever set the ref to this commit' });
      continue;
    }
    let value = p.commit;
    for (const m of log.slice(published + 1)) {
      const next = m.refs[p.ref];
      if (next === value) continue;
      const kept = next !== undefined && (isAncestor(`${value} ${next}`) || isAncestor(`${p.commit} ${next}`));
      if (!kept) {
        lost.push({ ...p, why: `published in generation ${log[published].generation}, no longer reachable from the ref in generation ${m.generation}` });
        break;
      }
      value = next;
    }
  }
  return lost;
}

function memo<T>(fn: (key: string) => T): (key: string) => T {
  const cache = new Map<string, T>();
  return (key) => {
    if (!cache.has(key)) cache.set(key, fn(key));
    return cache.get(key)!;
  };
}
