import { resolve } from 'node:path';
import { KmscryptError } from '../errors';
import type { ObjectFormat } from '../format/object-format';
import { isObjectFormat } from '../format/object-format';
import { gitText, runGit } from './run-git';

/** Where the local repository lives and which object IDs it uses. */
export interface LocalRepository {
  gitDir: string;
  objectFormat: ObjectFormat;
  /** Where index-pack stores packs (honours GIT_OBJECT_DIRECTORY). */
  packDir: string;
  /** $GIT_DIR/shallow: the commits whose parents a shallow clone lacks. */
  shallowFile: string;
}

let located: Promise<LocalRepository> | undefined;

/**
 * One `git rev-parse` answers all these questions, asked once per process: a helper or command
 * runs in one repository, and every git process costs the helper 10-20 ms to start.
 */
export function localRepository(): Promise<LocalRepository> {
  located ??= gitText(['rev-parse', '--absolute-git-dir', '--show-object-format', '--git-path', 'objects/pack', '--git-path', 'shallow']).then((out) => {
    const [gitDir, objectFormat, packDir, shallowFile] = out.split('\n').map((l) => l.trim());
    if (!isObjectFormat(objectFormat)) throw new KmscryptError('GIT', `unsupported object format ${objectFormat}`);
    return { gitDir, objectFormat, packDir: resolve(packDir), shallowFile: resolve(shallowFile) };
  });
  return located;
}

export async function localObjectFormat(): Promise<ObjectFormat> {
  return (await localRepository()).objectFormat;
}

export async function gitDir(): Promise<string> {
  return (await localRepository()).gitDir;
}

/** True when `ancestor` is reachable from `descendant`; false when not, or when either is missing. */
export async function isAncestor(ancestor: string, descendant: string): Promise<boolean> {
  const { code } = await runGit(['merge-base', '--is-ancestor', ancestor, descendant], { okCodes: [1, 128] });
  return code === 0;
}

/** Object IDs of many revisions with one `cat-file --batch-check`; missing ones are absent from the map. */
export interface ResolvedObject {
  oid: string;
  /** commit, tree, blob or tag. */
  type: string;
}

/** What each revision names, in one `git cat-file --batch-check`; revisions that name nothing (`<rev> missing`) are left out. */
export async function resolveObjects(revs: string[]): Promise<Map<string, ResolvedObject>> {
  const out = new Map<string, ResolvedObject>();
  if (revs.length === 0) return out;
  const { stdout } = await runGit(['cat-file', '--batch-check=%(objectname) %(objecttype)'], { input: revs.join('\n') + '\n' });
  const lines = stdout.toString('utf8').split('\n');
  revs.forEach((rev, i) => {
    const m = /^([0-9a-f]{40,64}) (commit|tree|blob|tag)$/.exec(lines[i] ?? '');
    if (m) out.set(rev, { oid: m[1], type: m[2] });
  });
  return out;
}

export async function currentBranch(): Promise<string | undefined> {
  const { code, stdout } = await runGit(['symbolic-ref', '--quiet', 'HEAD'], { okCodes: [1, 128] });
  return code === 0 ? stdout.toString('utf8').trim() : undefined;
}

/**
 * Whether every object reachable from `tips` but not from local refs is present (in a partial
 * clone: present or promised by the remote, as git's own connectivity check allows).
 */
export async function isConnected(tips: string[]): Promise<boolean> {
  if (tips.length === 0) return true;
  const { code } = await runGit(['rev-list', '--objects', '--quiet', '--missing=allow-promisor', '--stdin', '--not', '--all'], {
    input: tips.join('\n') + '\n',
    okCodes: [1, 128],
  });
  return code === 0;
}

/** Whether the local repository has any ref at all (none: it is being cloned, or was just made). */
export async function hasAnyRef(): Promise<boolean> {
  const { stdout } = await runGit(['for-each-ref', '--count=1', '--format=%(refname)'], { okCodes: [128] });
  return stdout.length > 0;
}
