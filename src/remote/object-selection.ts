import { KmscryptError } from '../errors';
import { CommitFacts, parseCommit, parseTag, parseTree } from '../git/git-object';
import { OBJ_BLOB, OBJ_COMMIT, OBJ_TAG, OBJ_TREE } from '../git/pack-format';
import { Deepen, walkHistory } from './history-walk';
import { keepsBlob, keepsTree, ObjectFilter } from './object-filter';
import type { ObjectLocation } from './location-table';
import type { RemoteObjects } from './remote-objects';

export interface SelectionRequest {
  /** The object IDs of git's `fetch` lines. */
  wants: string[];
  deepen?: Deepen;
  filter?: ObjectFilter;
  /** `option followtags`: annotated tags of the manifest that point into what is sent go too (upload-pack's include-tag). */
  followTags: boolean;
  /** `option no-dependents`: the wanted objects alone, nothing they reach. */
  noDependents: boolean;
  /** The manifest's refs, for tag following. */
  refs: Record<string, string>;
  /** The local shallow file's commits. */
  clientShallow: ReadonlySet<string>;
  /** Whether the local repository has an object; never true for a clone. */
  isLocal(oid: string): boolean;
  /** The local repository has nothing yet (a clone, or `--refetch`). */
  fresh: boolean;
}

export interface Selection {
  /** Every object to send, once each. */
  send: ObjectLocation[];
  /** The new shallow file, when the fetch deepens. */
  shallow?: Set<string>;
}

/**
 * What a shallow or partial fetch sends: the commits the history walk chooses, then, level by
 * level below their root trees, the trees and blobs the filter keeps and the local repository
 * lacks (a tree it has is not entered: it has what that tree reaches, or has it promised), then
 * the annotated tags that point into it. Objects git names itself are sent whatever the filter.
 */
export async function selectObjects(objects: RemoteObjects, request: SelectionRequest): Promise<Selection> {
  if (selectsByType(request)) return { send: await selectByType(objects, request.filter!, request.wants) };
  const chosen = new Map<string, ObjectLocation>();
  const choose = (oid: string, loc: ObjectLocation) => chosen.set(oid, loc);
  const filter = request.filter ?? {};

  // Wanted objects, tags peeled.
  const commitWants: string[] = [];
  const treeRoots: Array<{ oid: string; given: boolean }> = [];
  const blobs: Array<{ oid: string; depth: number; given: boolean }> = [];
  let level = request.wants.map((oid) => ({ oid, loc: objects.require(oid, 'the object git asked for,') }));
  while (level.length > 0) {
    const tags = level.filter(({ loc }) => objects.typeOf(loc) === OBJ_TAG);
    const read = tags.length ? await objects.objects(tags.map((t) => t.loc)) : new Map();
    const next: typeof level = [];
    for (const { oid, loc } of level) {
      const type = objects.typeOf(loc);
      if (type === OBJ_COMMIT) {
        commitWants.push(oid);
        continue;
      }
      if (!request.isLocal(oid)) choose(oid, loc);
      if (request.noDependents) continue;
      if (type === OBJ_TAG) {
        const target = parseOrCorrupt(() => parseTag(read.get(loc)!.data), oid, 'tag');
        next.push({ oid: target.object, loc: objects.require(target.object, `the object tag ${oid} points to,`) });
      } else if (type === OBJ_TREE) {
        treeRoots.push({ oid, given: true });
      } else {
        blobs.push({ oid, depth: 0, given: true });
      }
    }
    level = next;
  }

  let shallow: Set<string> | undefined;
  if (request.noDependents) {
    for (const oid of commitWants) if (!request.isLocal(oid)) choose(oid, objects.require(oid, 'commit'));
  } else {
    const plan = await walkHistory({
      wants: commitWants,
      deepen: request.deepen,
      clientShallow: request.clientShallow,
      isLocal: request.isLocal,
      inStore: (oid) => objects.locate(oid) !== undefined,
      read: (oids) => readCommits(objects, oids),
    });
    shallow = plan.shallow;
    for (const [oid, facts] of plan.commits) {
      choose(oid, objects.require(oid, 'commit'));
      treeRoots.push({ oid: facts.tree, given: false });
    }
  }

  await selectTrees(objects, request, filter, treeRoots, blobs, choose);
  await selectBlobs(objects, request, filter, blobs, choose);
  if (request.followTags) await followTags(objects, request, chosen, choose);
  return { send: [...chosen.values()], shallow };
}

/**
 * A blob filter on a clone of every branch and tag, without depth: every commit, tree and tag of
 * the store, and the blobs the filter keeps, chosen from the indexes alone (a delta's type is its
 * base's). Walking the whole history would read and parse every tree to reach the same set (less
 * objects no ref reaches, which a full clone gets too).
 */
function selectsByType(request: SelectionRequest): boolean {
  const { filter, deepen } = request;
  if (!filter || filter.treeDepth !== undefined || request.noDependents) return false;
  if (deepen && (deepen.depth || deepen.since !== undefined || deepen.not?.length)) return false;
  if (!request.fresh) return false;
  const wanted = new Set(request.wants);
  return Object.entries(request.refs).every(([name, oid]) => !(name.startsWith('refs/heads/') || name.startsWith('refs/tags/')) || wanted.has(oid));
}

async function selectByType(objects: RemoteObjects, filter: ObjectFilter, wants: string[]): Promise<ObjectLocation[]> {
  const send: ObjectLocation[] = [];
  const blobs: ObjectLocation[] = [];
  for (const loc of objects.records()) {
    if (objects.typeOf(loc) !== OBJ_BLOB) send.push(loc);
    else if (filter.blobLimit !== 0) blobs.push(loc);
  }
  const sizes = await objects.sizes(blobs);
  for (const loc of blobs) if (keepsBlob(filter, sizes.get(loc)!, 1)) send.push(loc);
  const chosen = new Set(send);
  for (const oid of wants) {
    const loc = objects.require(oid, 'the object git asked for,');
    if (!chosen.has(loc)) send.push(loc);
  }
  return send;
}

/** Trees level by level (a root tree at depth 0); blobs met on the way are gathered for selectBlobs. */
async function selectTrees(
  objects: RemoteObjects,
  request: SelectionRequest,
  filter: ObjectFilter,
  roots: Array<{ oid: string; given: boolean }>,
  blobs: Array<{ oid: string; depth: number; given: boolean }>,
  choose: (oid: string, loc: ObjectLocation) => void,
): Promise<void> {
  const seen = new Set<string>();
  const hashLength = objects.hashName === 'sha1' ? 20 : 32;
  // Entering a tree is needed only when the filter keeps something one level further down.
  const wantsBelow = (depth: number) => keepsTree(filter, depth + 1) || (filter.blobLimit !== 0 && keepsBlob({ treeDepth: filter.treeDepth }, 0, depth + 1));
  let level = roots.map((r) => ({ ...r, depth: 0 }));
  while (level.length > 0) {
    const enter: Array<{ oid: string; loc: ObjectLocation; depth: number }> = [];
    for (const { oid, given, depth } of level) {
      if (seen.has(oid) || request.isLocal(oid)) continue;
      seen.add(oid);
      if (!given && !keepsTree(filter, depth)) continue;
      const loc = objects.require(oid, 'tree');
      choose(oid, loc);
      if (!request.noDependents && wantsBelow(depth)) enter.push({ oid, loc, depth });
    }
    const read = enter.length ? await objects.objects(enter.map((e) => e.loc)) : new Map();
    level = [];
    for (const { oid, loc, depth } of enter) {
      const tree = read.get(loc);
      if (!tree) throw new KmscryptError('TOO_LARGE', `tree ${oid} is too large to read in memory`);
      for (const entry of parseOrCorrupt(() => parseTree(tree.data, hashLength), oid, 'tree')) {
        if (entry.type === OBJ_TREE) level.push({ oid: entry.oid, given: false, depth: depth + 1 });
        else if (entry.type === OBJ_BLOB) blobs.push({ oid: entry.oid, depth: depth + 1, given: false });
      }
    }
  }
}

async function selectBlobs(
  objects: RemoteObjects,
  request: SelectionRequest,
  filter: ObjectFilter,
  blobs: Array<{ oid: string; depth: number; given: boolean }>,
  choose: (oid: string, loc: ObjectLocation) => void,
): Promise<void> {
  // The shallowest sighting decides (git's tree:<depth> filter counts the smallest depth).
  const best = new Map<string, { depth: number; given: boolean }>();
  for (const b of blobs) {
    const had = best.get(b.oid);
    if (!had || b.given || (!had.given && b.depth < had.depth)) best.set(b.oid, { depth: b.depth, given: b.given || (had?.given ?? false) });
  }
  const sized: ObjectLocation[] = [];
  const candidates: Array<{ oid: string; loc: ObjectLocation; depth: number; given: boolean }> = [];
  for (const [oid, { depth, given }] of best) {
    if (request.isLocal(oid)) continue;
    if (!given && !keepsBlob({ treeDepth: filter.treeDepth }, 0, depth)) continue;
    if (!given && filter.blobLimit === 0) continue;
    const loc = objects.require(oid, 'blob');
    candidates.push({ oid, loc, depth, given });
    if (!given && filter.blobLimit !== undefined) sized.push(loc);
  }
  const sizes = await objects.sizes(sized);
  for (const { oid, loc, depth, given } of candidates) {
    if (given || keepsBlob(filter, sizes.get(loc) ?? 0, depth)) choose(oid, loc);
  }
}

/** upload-pack's include-tag: an annotated tag of the manifest whose chain ends in an object sent is sent too. */
async function followTags(
  objects: RemoteObjects,
  request: SelectionRequest,
  chosen: Map<string, ObjectLocation>,
  choose: (oid: string, loc: ObjectLocation) => void,
): Promise<void> {
  const tips = Object.entries(request.refs)
    .filter(([name]) => name.startsWith('refs/tags/'))
    .map(([, oid]) => oid)
    .filter((oid) => !chosen.has(oid) && !request.isLocal(oid));
  const tags = new Map<string, ObjectLocation>();
  for (const oid of new Set(tips)) {
    const loc = objects.locate(oid);
    if (loc && objects.typeOf(loc) === OBJ_TAG) tags.set(oid, loc);
  }
  const target = new Map<string, string>();
  let pending = [...tags];
  while (pending.length > 0) {
    const read = await objects.objects(pending.map(([, loc]) => loc));
    const next: Array<[string, ObjectLocation]> = [];
    for (const [oid, loc] of pending) {
      const facts = parseOrCorrupt(() => parseTag(read.get(loc)!.data), oid, 'tag');
      target.set(oid, facts.object);
      if (facts.type === OBJ_TAG && !target.has(facts.object)) {
        const inner = objects.locate(facts.object);
        if (inner) next.push([facts.object, inner]);
      }
    }
    pending = next;
  }
  for (const [oid, loc] of tags) {
    const chain = [oid];
    let end = target.get(oid);
    while (end !== undefined && target.has(end) && chain.length < 100) {
      chain.push(end);
      end = target.get(end);
    }
    if (end === undefined || !chosen.has(end)) continue;
    for (const t of chain) if (!request.isLocal(t)) choose(t, t === oid ? loc : objects.require(t, 'tag'));
  }
}

async function readCommits(objects: RemoteObjects, oids: string[]): Promise<Map<string, CommitFacts>> {
  const locs = oids.map((oid) => objects.require(oid, 'commit'));
  const read = await objects.objects(locs);
  const out = new Map<string, CommitFacts>();
  oids.forEach((oid, k) => {
    const object = read.get(locs[k]);
    if (!object || object.type !== OBJ_COMMIT)
      throw new KmscryptError('CORRUPT', `${oid} is not a commit in the store, though a commit names it as its parent`);
    out.set(
      oid,
      parseOrCorrupt(() => parseCommit(object.data), oid, 'commit'),
    );
  });
  return out;
}

function parseOrCorrupt<T>(parse: () => T, oid: string, what: string): T {
  try {
    return parse();
  } catch (err) {
    throw new KmscryptError('CORRUPT', `${what} ${oid} in the store is malformed (${(err as Error).message})`);
  }
}
