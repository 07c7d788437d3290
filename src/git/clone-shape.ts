import { promises as fs } from 'node:fs';
import { localRepository } from './repository';

export interface CloneShape {
  /** Has a `shallow` file: some commits' parents are missing on purpose. */
  shallow: boolean;
  /** Has promisor packs: objects they refer to may be missing, promised by the remote. */
  partial: boolean;
}

/** Whether the local repository is a shallow or a partial clone, from its files (no git command). */
export async function localCloneShape(): Promise<CloneShape> {
  const { packDir, shallowFile } = await localRepository();
  const [shallow, packs] = await Promise.all([
    fs.stat(shallowFile).then(
      (s) => s.size > 0,
      () => false,
    ),
    fs.readdir(packDir).catch(() => [] as string[]),
  ]);
  return { shallow, partial: packs.some((f) => f.endsWith('.promisor')) };
}
