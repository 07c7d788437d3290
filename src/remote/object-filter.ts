/**
 * A partial clone's object filter (`git clone --filter=<spec>`), as git sends it with
 * `option filter <spec>`: what kmscrypt honours, reduced to two limits. An object git asks for by
 * name is always sent, whatever the filter (as upload-pack does: user-given objects bypass it).
 */
export interface ObjectFilter {
  /** Blobs of this many bytes or more are left out (blob:none is 0); undefined keeps every blob. */
  blobLimit?: number;
  /** Trees and blobs at this depth or deeper below a commit's root tree (depth 0) are left out. */
  treeDepth?: number;
}

export type ParsedFilter = { filter: ObjectFilter } | { unsupported: string };

const UNITS: Readonly<Record<string, number>> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

/**
 * Parses git's filter-spec (list-objects-filter-options.c): `blob:none`, `blob:limit=<n>[kmg]`,
 * `tree:<depth>`, and `combine:<spec>+<spec>…` whose parts are URL-encoded. `sparse:oid=…` and
 * `object:type=…` are not supported (the answer names the part that is not).
 */
export function parseObjectFilter(spec: string): ParsedFilter {
  const parts = spec.startsWith('combine:') ? spec.slice('combine:'.length).split('+').map(percentDecode) : [spec];
  const filter: ObjectFilter = {};
  for (const part of parts) {
    if (part === undefined || part === '' || part.startsWith('combine:')) return { unsupported: spec };
    let m: RegExpExecArray | null;
    if (part === 'blob:none') {
      filter.blobLimit = 0;
    } else if ((m = /^blob:limit=(\d+)([kmg]?)$/i.exec(part))) {
      const limit = Number(m[1]) * UNITS[m[2].toLowerCase()];
      if (!Number.isSafeInteger(limit)) return { unsupported: part };
      filter.blobLimit = Math.min(filter.blobLimit ?? limit, limit);
    } else if ((m = /^tree:(\d+)$/.exec(part))) {
      const depth = Number(m[1]);
      if (!Number.isSafeInteger(depth)) return { unsupported: part };
      filter.treeDepth = Math.min(filter.treeDepth ?? depth, depth);
    } else {
      return { unsupported: part };
    }
  }
  return { filter };
}

/** Whether the filter keeps a blob of `size` bytes at `depth` (its tree's depth + 1). */
export function keepsBlob(filter: ObjectFilter, size: number, depth: number): boolean {
  return (filter.blobLimit === undefined || size < filter.blobLimit) && (filter.treeDepth === undefined || depth < filter.treeDepth);
}

/** Whether the filter keeps a tree at `depth` (a root tree is at 0). */
export function keepsTree(filter: ObjectFilter, depth: number): boolean {
  return filter.treeDepth === undefined || depth < filter.treeDepth;
}

function percentDecode(part: string): string | undefined {
  try {
    return decodeURIComponent(part);
  } catch {
    return undefined;
  }
}
