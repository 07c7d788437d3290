import { KmscryptError } from '../errors';
import type { DataKey } from '../keys/key-provider';
import { isValidRefName } from '../format/ref-name';
import type { RemoteRepository } from './remote-repository';

export interface SetHeadReport {
  repositoryId: string;
  /** HEAD's target before and after, e.g. refs/heads/main; null when unset. */
  previous: string | null;
  head: string;
  /** The generation published; null when HEAD already pointed there. */
  generation: number | null;
}

const MAX_PUBLISH_ATTEMPTS = 50;

/** `main` and `refs/heads/main` both name the branch. */
export function branchRef(branch: string): string {
  const ref = branch.startsWith('refs/heads/') ? branch : `refs/heads/${branch}`;
  if (!isValidRefName(ref)) throw new KmscryptError('USAGE', `${JSON.stringify(branch)} is not a valid branch name`);
  return ref;
}

/**
 * Points the remote's HEAD (the branch a clone checks out, and the one a push may not delete) at
 * another branch, as `git symbolic-ref HEAD` does in a bare repository. The branch must exist,
 * unless the repository has no branch yet: then it is the branch the first push and a clone of
 * the empty repository use. Published as the next manifest, with the usual create-only write.
 */
export async function setHead(repo: RemoteRepository, branch: string): Promise<SetHeadReport> {
  const head = branchRef(branch);
  let dataKey: DataKey | undefined;
  try {
    for (let attempt = 1; ; attempt++) {
      const snapshot = await repo.latest();
      const base = snapshot.manifest;
      const previous = base?.head ?? null;
      const report = { repositoryId: repo.repositoryId, previous, head };
      if (previous === head) return { ...report, generation: null };
      const branches = Object.keys(base?.refs ?? {}).filter((name) => name.startsWith('refs/heads/'));
      if (branches.length > 0 && !branches.includes(head)) {
        throw new KmscryptError('BAD_CONFIG', `${repo.config.url} has no branch ${head.slice('refs/heads/'.length)}`, {
          head,
          fix: `push it first, or choose one of: ${branches.map((b) => b.slice('refs/heads/'.length)).join(', ')}`,
        });
      }
      dataKey ??= await repo.generateDataKey(base);
      const next = repo.successor(snapshot, { keyId: dataKey.keyId, head, refs: base?.refs ?? {}, containers: base?.containers ?? [] });
      if ((await repo.publish(next, dataKey, snapshot.chain)).published) return { ...report, generation: next.generation };
      if (attempt >= MAX_PUBLISH_ATTEMPTS) {
        throw new KmscryptError('CONFLICT', `${repo.config.url} is too busy: set-head lost the publication race ${attempt} times`, {
          fix: 'nothing was changed, run it again',
        });
      }
      await new Promise((r) => setTimeout(r, Math.min(1000, 5 * 2 ** Math.min(attempt, 8)) * Math.random()));
    }
  } finally {
    dataKey?.plaintext.fill(0);
  }
}
