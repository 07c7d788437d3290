import { promises as fs } from 'node:fs';
import type { Manifest } from '../format/manifest';
import { configValue } from '../git/clone-config';
import { PackIndexFile } from '../git/pack-index-file';
import { removePack, StoredPack, storePackOf } from '../git/pack-subset';
import { revListNew } from '../git/rev-list';

/**
 * git's tag following, as plain git gets it. git adds a tag it was not asked to fetch when, after
 * the fetch, it finds the tag's object or its peeled target (the `^{}` line of the list) in the
 * repository (builtin/fetch.c, find_non_local_tags; clone --single-branch looks at the tag object).
 * upload-pack sends only what the wanted tips reach, plus the tags that point into it
 * (include-tag). A container holds whatever one push sent, so a fetch can bring tags and commits
 * nobody asked for, and git would then add a tag that points at no fetched commit.
 *
 * So, once the fetched pack is stored and before git looks: when a tag ref the fetch did not ask
 * for came in the pack, or its target did, and that target is not reachable from what was asked
 * for, the pack is replaced by one of exactly what plain git would have sent: the objects the
 * wanted tips reach (`rev-list --objects`), and the tags whose targets are among them or were here
 * already. The common case, a tag pushed with the branch it points into, costs one walk of the
 * new commits and changes nothing.
 */
export async function followFetchedTagsOnly(
  manifest: Manifest,
  wants: string[],
  packs: StoredPack[],
  opts: { hashLength: number; selfContained: boolean },
): Promise<StoredPack[]> {
  const wanted = new Set(wants);
  const unasked = Object.entries(manifest.refs).filter(([name, oid]) => name.startsWith('refs/tags/') && !wanted.has(oid));
  if (unasked.length === 0 || packs.length === 0) return packs;
  const indexes = await Promise.all(packs.map(async (p) => new PackIndexFile(await fs.readFile(p.idxFile), opts.hashLength)));
  const arrived = (oid: string) => {
    const id = Buffer.from(oid, 'hex');
    return indexes.some((idx) => idx.has(id));
  };
  const tags = unasked.map(([name, oid]) => ({ oid, target: manifest.peeled?.[name] ?? oid })).filter((t) => arrived(t.oid) || arrived(t.target));
  // A target that did not arrive was here before: git follows such a tag, as it would from plain git.
  const doubtful = new Set(tags.filter((t) => arrived(t.target)).map((t) => t.target));
  if (doubtful.size === 0) return packs;
  // A partial clone's walk would make git fetch missing objects through this helper again.
  if ((await configValue('extensions.partialClone')) !== undefined) return packs;

  const reached = new Set<string>();
  for (const objects of [false, true]) {
    // Commits first (the usual targets, a cheap walk); every object only if a target is something else.
    for await (const line of revListNew(objects ? ['--objects'] : [], wants)) {
      const oid = objects ? line.slice(0, opts.hashLength * 2) : line;
      if (doubtful.delete(oid)) reached.add(oid);
    }
    if (doubtful.size === 0) return packs;
  }

  const followed = tags.filter((t) => !arrived(t.target) || reached.has(t.target)).map((t) => t.oid);
  async function* asSent(): AsyncGenerator<string> {
    for await (const line of revListNew(['--objects'], [...wants, ...followed])) if (arrived(line.slice(0, opts.hashLength * 2))) yield line;
  }
  const stored = await storePackOf(asSent(), { selfContained: opts.selfContained });
  for (const p of packs) await removePack(p.idxFile);
  return [stored];
}
