import { ObjectDatabase } from '../git/object-database';
import { runGit } from '../git/run-git';
import { readShallow } from '../git/shallow-file';

/**
 * The refs of a push from a shallow clone that would take one of its shallow commits to the
 * store: the store would then hold a commit without its parents, and no clone of it could be
 * completed. git's receive-pack refuses these ("shallow update not allowed", unless
 * receive.shallowUpdate); so does kmscrypt, whose store never holds a shallow history.
 */
export async function shallowRootUpdates(updates: ReadonlyArray<{ dst: string; oid: string | null }>, remoteTips: string[]): Promise<Set<string>> {
  const refused = new Set<string>();
  const shallow = await readShallow();
  if (shallow.size === 0) return refused;
  const local = await ObjectDatabase.open();
  const exclude = [...new Set(remoteTips)].filter((oid) => local.has(oid)).map((oid) => `^${oid}`);
  for (const u of updates) {
    if (u.oid === null) continue;
    // rev-list stops at shallow commits (git reads the shallow file), so what it lists is what the push sends.
    const { stdout } = await runGit(['rev-list', '--stdin'], { input: [u.oid, ...exclude].join('\n') + '\n' });
    if (
      stdout
        .toString('utf8')
        .split('\n')
        .some((oid) => shallow.has(oid))
    )
      refused.add(u.dst);
  }
  return refused;
}
