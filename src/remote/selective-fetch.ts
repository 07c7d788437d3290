import { KmscryptError } from '../errors';
import type { Manifest } from '../format/manifest';
import { parseTag } from '../git/git-object';
import { ObjectDatabase } from '../git/object-database';
import { OBJ_COMMIT, OBJ_TAG } from '../git/pack-format';
import { gitText } from '../git/run-git';
import { lockShallow, readShallow } from '../git/shallow-file';
import { openContainers } from './container-reader';
import type { FetchResult, WantedObject } from './fetch';
import type { Deepen } from './history-walk';
import { ObjectFilter, parseObjectFilter } from './object-filter';
import { selectObjects } from './object-selection';
import { RemoteObjects } from './remote-objects';
import type { RemoteRepository } from './remote-repository';
import { sendSelection } from './selection-pack';
import type { TransferOptions } from './transfer-options';

/**
 * A shallow or partial fetch (and any fetch into a shallow or partial clone): open every
 * container's index, choose objects by walking history from what git asked for
 * (object-selection.ts), send exactly those, and write the new shallow boundary before answering.
 * Nothing here asks git about an object it may lack: presence comes from the object directories
 * (object-database.ts), so a partial clone's lazy fetch can never call back into this helper.
 */
export async function selectiveFetch(
  repo: RemoteRepository,
  manifest: Manifest,
  requests: readonly WantedObject[],
  options: TransferOptions,
): Promise<FetchResult> {
  const filter = effectiveFilter(options.filter);
  const objects = new RemoteObjects(repo, await openContainers(repo, manifest.containers));
  const deepen = await deepenOf(objects, manifest, options);
  const fresh = options.cloning || options.refetch;
  const local = fresh ? undefined : await ObjectDatabase.open();
  const isLocal = local ? (oid: string) => local.has(oid) : () => false;
  const clientShallow = options.cloning ? new Set<string>() : await readShallow();

  const selection = await selectObjects(objects, {
    wants: [...new Set(requests.map((r) => r.oid))],
    deepen,
    filter,
    followTags: options.followTags,
    noDependents: options.noDependents,
    refs: manifest.refs,
    clientShallow,
    isLocal,
    fresh,
  });
  // git's lock on the shallow file is held while the pack is stored, as fetch-pack holds it.
  const shallowUpdate = selection.shallow ? await lockShallow() : undefined;
  try {
    const keepFile = await sendSelection(repo, objects, selection.send, isLocal, {
      progress: options.progress && options.cloning,
      ourProgress: options.progress && !options.cloning,
      promisor: options.fromPromisor ? requests.map((r) => `${r.oid} ${r.name}`).join('\n') : undefined,
    });
    await shallowUpdate?.commit(selection.shallow!);
    return { locks: keepFile ? [keepFile] : [], connected: false };
  } catch (err) {
    await shallowUpdate?.rollback();
    throw err;
  }
}

/** The filter to apply; one git would send to a server that does not know it is ignored with git's warning. */
function effectiveFilter(spec: string | undefined): ObjectFilter | undefined {
  if (spec === undefined) return undefined;
  const parsed = parseObjectFilter(spec);
  if ('filter' in parsed) return parsed.filter;
  process.stderr.write(
    `warning: kmscrypt does not support the filter '${parsed.unsupported}' (only blob:none, blob:limit=<n>, tree:<depth> and combine: of them); filtering not recognized by server, ignoring\n`,
  );
  return undefined;
}

/** git's deepen options, with `--shallow-since` read as git reads dates and `--shallow-exclude` names resolved to commits. */
async function deepenOf(objects: RemoteObjects, manifest: Manifest, options: TransferOptions): Promise<Deepen | undefined> {
  const byTime = options.deepenSince !== undefined || options.deepenNot.length > 0;
  if (options.depth > 0 && byTime) {
    throw new KmscryptError(
      'BAD_CONFIG',
      '--depth cannot be combined with --shallow-since or --shallow-exclude (as with upload-pack: deepen and deepen-since (or deepen-not) cannot be used together)',
    );
  }
  if (options.depth > 0) return { depth: options.depth, relative: options.deepenRelative };
  if (!byTime) return undefined;
  let since: number | undefined;
  if (options.deepenSince !== undefined) {
    // `git rev-parse --since=<date>` prints `--max-age=<seconds>`: git's own approxidate, as fetch-pack uses.
    const out = await gitText(['rev-parse', `--since=${options.deepenSince}`]);
    const m = /^--max-age=(\d+)$/.exec(out);
    if (!m) throw new KmscryptError('BAD_CONFIG', `--shallow-since=${options.deepenSince} is not a date git understands`);
    since = Number(m[1]);
  }
  const not: string[] = [];
  for (const name of options.deepenNot) not.push(await peelToCommit(objects, refNamed(manifest, name)));
  return { since, not };
}

/** A ref of the manifest by the names git's rev-parse rules allow (refs.c ref_rev_parse_rules); exactly one must match. */
function refNamed(manifest: Manifest, name: string): string {
  if (name === 'HEAD' && manifest.head && manifest.refs[manifest.head]) return manifest.refs[manifest.head];
  const candidates = [name, `refs/${name}`, `refs/tags/${name}`, `refs/heads/${name}`, `refs/remotes/${name}`, `refs/remotes/${name}/HEAD`];
  const found = [...new Set(candidates.filter((c) => manifest.refs[c] !== undefined))];
  if (found.length !== 1) {
    throw new KmscryptError(
      'BAD_CONFIG',
      `--shallow-exclude=${name} ${found.length === 0 ? 'names no ref of the remote' : `is ambiguous (${found.join(', ')})`}`,
      { fix: 'give a branch or tag the remote has' },
    );
  }
  return manifest.refs[found[0]];
}

async function peelToCommit(objects: RemoteObjects, oid: string): Promise<string> {
  for (let n = 0; n < 100; n++) {
    const loc = objects.require(oid, 'the object a ref names,');
    const type = objects.typeOf(loc);
    if (type === OBJ_COMMIT) return oid;
    if (type !== OBJ_TAG) break;
    oid = parseTag((await objects.objects([loc])).get(loc)!.data).object;
  }
  throw new KmscryptError('BAD_CONFIG', `--shallow-exclude names ${oid}, which is not a commit`);
}
