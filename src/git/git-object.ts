import { createHash } from 'node:crypto';
import { OBJ_BLOB, OBJ_COMMIT, OBJ_TAG, OBJ_TREE } from './pack-format';

/**
 * The few facts of git objects that a walk of history needs, read from their canonical bytes
 * (as `git cat-file <type>` prints them). Pure functions; malformed input is a RangeError.
 */

const TYPE_NAMES: Readonly<Record<number, string>> = { [OBJ_COMMIT]: 'commit', [OBJ_TREE]: 'tree', [OBJ_BLOB]: 'blob', [OBJ_TAG]: 'tag' };

/** The object ID git computes: hash of "<type> <size>\0" and the content. */
export function objectId(type: number, data: Buffer, hashName: 'sha1' | 'sha256'): string {
  const name = TYPE_NAMES[type];
  if (!name) throw new RangeError(`not an object type: ${type}`);
  return createHash(hashName).update(`${name} ${data.length}\0`).update(data).digest('hex');
}

export interface CommitFacts {
  tree: string;
  parents: string[];
  /** Committer time, seconds since the epoch: what `--max-age` and `--shallow-since` compare. */
  committerTime: number;
}

export function parseCommit(data: Buffer): CommitFacts {
  const end = data.indexOf('\n\n');
  const header = data.toString('utf8', 0, end < 0 ? data.length : end).split('\n');
  const tree = /^tree ([0-9a-f]{40,64})$/.exec(header[0] ?? '');
  if (!tree) throw new RangeError('commit without a tree line');
  const parents: string[] = [];
  let committerTime: number | undefined;
  for (const line of header.slice(1)) {
    if (line.startsWith('parent ')) {
      const oid = line.slice('parent '.length);
      if (!/^[0-9a-f]{40,64}$/.test(oid)) throw new RangeError('malformed parent line');
      parents.push(oid);
    } else if (line.startsWith('committer ')) {
      const time = /> (\d+) [+-]\d{4}$/.exec(line);
      committerTime = time ? Number(time[1]) : 0;
    }
  }
  return { tree: tree[1], parents, committerTime: committerTime ?? 0 };
}

export interface TreeEntry {
  /** OBJ_TREE or OBJ_BLOB; submodule entries (gitlinks) name commits of another repository and are left out. */
  type: number;
  oid: string;
}

export function parseTree(data: Buffer, hashLength: number): TreeEntry[] {
  const entries: TreeEntry[] = [];
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    const nul = data.indexOf(0, space + 1);
    if (space < 0 || nul < 0 || nul + 1 + hashLength > data.length) throw new RangeError('malformed tree entry');
    const mode = data.toString('latin1', pos, space);
    const oid = data.toString('hex', nul + 1, nul + 1 + hashLength);
    pos = nul + 1 + hashLength;
    if (mode === '160000') continue;
    entries.push({ type: mode === '40000' ? OBJ_TREE : OBJ_BLOB, oid });
  }
  return entries;
}

export interface TagFacts {
  object: string;
  type: number;
}

export function parseTag(data: Buffer): TagFacts {
  const m = /^object ([0-9a-f]{40,64})\ntype (commit|tree|blob|tag)\n/.exec(data.toString('utf8', 0, Math.min(data.length, 200)));
  if (!m) throw new RangeError('malformed tag header');
  const type = Number(Object.entries(TYPE_NAMES).find(([, name]) => name === m[2])![0]);
  return { object: m[1], type };
}
