import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage, KmscryptError } from '../errors';
import { removeOnInterrupt } from '../interrupt-cleanup';
import { hashLength } from '../format/object-format';
import { runGit } from '../git/run-git';
import type { ContainerRef } from '../format/manifest';
import { LocalObjects } from '../git/object-presence';
import { writePack } from '../git/pack-objects';
import { isValidRefName } from '../format/ref-name';
import { currentBranch, isAncestor, resolveObjects } from '../git/repository';
import type { DataKey } from '../keys/key-provider';
import { ObjectTooLargeError, restoreIfSwept, storeContainer } from './container-writer';
import { changesAnything, evaluateUpdates, headExists, LocalHistory, plannedContent, ResolvedUpdate } from './push-plan';
import { shallowRootUpdates } from './shallow-push';
import type { ManifestSnapshot, RemoteRepository } from './remote-repository';
import { killPoint } from './kill-point';
import { keepsObjectsOf, mergeTail } from './tail-merge';
import type { TransferOptions } from './transfer-options';

export interface PushCommand {
  /** Local ref or object to push; null deletes `dst`. */
  src: string | null;
  dst: string;
  force: boolean;
}

export interface PushOutcome {
  dst: string;
  error?: string;
}

/** receive-pack's reason for the other updates of an atomic push one of whose updates it refused. */
const ATOMIC_PUSH_FAILURE = 'atomic push failure';

const MAX_PUBLISH_ATTEMPTS = 50;
/**
 * gc leaves an unlisted container alone for a day (UNLISTED_CONTAINER_MIN_AGE_MS); a push that
 * took more than an hour from its upload to its publication checks, once published, that its
 * container is still stored, and stores it again if a gc swept it meanwhile.
 */
const SLOW_PUSH_MS = 3_600_000;

/**
 * The whole push path: check every update, pack and seal the objects the remote lacks into one
 * container, upload it, then publish the next manifest with a create-only write. When another
 * push wins that generation, every update is checked again against the newer manifest, so a
 * race never silently overwrites someone's commits.
 */
export async function push(repo: RemoteRepository, commands: PushCommand[], listed: ManifestSnapshot, options: TransferOptions): Promise<PushOutcome[]> {
  const outcomes = new Map<string, string | undefined>();
  const updates: ResolvedUpdate[] = [];
  // One cat-file resolves the sources, tells which of the remote's tips this repository has,
  // and peels the sources and the remote's tags (for manifests that lack their peeled entries).
  const sourceNames = commands.flatMap((c) => (c.src === null ? [] : [c.src]));
  const listedTips = Object.values(listed.manifest?.refs ?? {});
  const listedTags = Object.entries(listed.manifest?.refs ?? {}).flatMap(([name, oid]) =>
    name.startsWith('refs/tags/') && !listed.manifest?.peeled?.[name] ? [oid] : [],
  );
  const toPeel = [...new Set([...sourceNames, ...listedTags])];
  const objects = await resolveObjects([...sourceNames, ...listedTips, ...toPeel.map((rev) => `${rev}^{}`)]);
  const resolved = new Map([...objects].map(([rev, o]) => [rev, o.oid]));
  const sources = new Map(sourceNames.flatMap((name) => (resolved.has(name) ? [[name, resolved.get(name)!] as const] : [])));
  /** Object ID → what it peels to, for the annotated tags among them (FORMAT.md §7.2 `peeled`). */
  const peeledTags = new Map<string, string>();
  for (const rev of toPeel) {
    const oid = resolved.get(rev);
    const target = resolved.get(`${rev}^{}`);
    if (oid && target && target !== oid) peeledTags.set(oid, target);
  }
  const local = new LocalObjects();
  local.learn(listedTips, new Set(listedTips.filter((oid) => resolved.get(oid) === oid)));
  const history: LocalHistory = { isAncestor, has: async (oid) => (await local.present([oid])).has(oid) };
  for (const c of commands) {
    const oid = c.src === null ? null : sources.get(c.src);
    if (!c.dst.startsWith('refs/') || !isValidRefName(c.dst)) outcomes.set(c.dst, `invalid ref name ${JSON.stringify(c.dst)}`);
    else if (oid === undefined) outcomes.set(c.dst, `source ${c.src} does not exist locally`);
    else if (oid !== null && c.dst.startsWith('refs/heads/') && objects.get(c.src!)?.type !== 'commit') {
      // As a bare repository refuses it (refs.c): a branch names a commit, never a tag, tree or blob.
      process.stderr.write(`error: kmscrypt: cannot update ref '${c.dst}': trying to write non-commit object ${oid} to branch '${c.dst}'\n`);
      outcomes.set(c.dst, 'failed to update ref');
    } else updates.push({ dst: c.dst, oid, force: c.force || options.force });
  }
  for (const dst of await shallowRootUpdates(updates, listedTips)) {
    outcomes.set(dst, 'shallow update not allowed');
    updates.splice(
      updates.findIndex((u) => u.dst === dst),
      1,
    );
  }
  if (options.atomic && outcomes.size > 0) return failAll(commands, outcomes, ATOMIC_PUSH_FAILURE);

  // The create-only publication fails if anything was published since `list`, so starting
  // from what list read is safe and saves a listing and a read.
  let snapshot = listed;
  const format = repo.descriptor.objectFormat;
  let container: ContainerRef | undefined;
  /** Asked of KMS while git packs the objects; its plaintext is wiped however the push ends. */
  let pendingKey: Promise<DataKey> | undefined;
  const workDir = await fs.mkdtemp(join(tmpdir(), 'kmscrypt-push-'));
  const releaseWorkDir = removeOnInterrupt(workDir);
  killPoint('push-start');
  try {
    const first = await evaluateUpdates(updates, snapshot.manifest, options.leases, history);
    for (const [dst, why] of first) if (why) outcomes.set(dst, why);
    const accepted = updates.filter((u) => !first.get(u.dst));
    if (options.atomic && accepted.length < updates.length) return failAll(commands, outcomes, ATOMIC_PUSH_FAILURE);
    if (accepted.length === 0 || !changesAnything(accepted, snapshot.manifest)) return report(commands, outcomes);

    const include = [...new Set(accepted.map((u) => u.oid).filter((o): o is string => o !== null))];
    if (options.dryRun) return report(commands, outcomes);

    const nextKey = repo.generateDataKey(snapshot.manifest);
    nextKey.catch(() => undefined); // awaited below, once git has packed
    pendingKey = nextKey;
    let containerFile = '';
    let uploadStartedAt = 0;
    /** Packs what the remote described by `against` lacks; deltas may refer to objects it has. */
    const build = async (against: ManifestSnapshot, attempt: number) => {
      if (include.length === 0) return undefined;
      const remoteTips = Object.values(against.manifest?.refs ?? {});
      const exclude = [...(await local.present(new Set(remoteTips)))];
      const dir = await fs.mkdtemp(join(workDir, `pack${attempt}-`));
      const pack = await writePack({ dir, include, exclude, thin: exclude.length > 0, hashLength: hashLength(format), progress: options.progress });
      const key = await nextKey;
      killPoint('push-packed');
      containerFile = join(dir, 'container');
      uploadStartedAt = Date.now();
      return storeContainer(repo.storage, {
        pack,
        hashLength: hashLength(format),
        outPath: containerFile,
        dataKey: key,
        repositoryId: repo.repositoryId,
        progress: options.progress,
      }).catch(async (err: unknown) => {
        if (err instanceof ObjectTooLargeError) throw await nameTooLarge(err, include, exclude);
        throw err;
      });
    };
    container = await build(snapshot, 0);
    killPoint('push-uploaded');
    const dataKey = await nextKey;
    let builtOn = snapshot;

    for (let attempt = 1; ; attempt++) {
      const verdicts = attempt === 1 ? first : await evaluateUpdates(updates, snapshot.manifest, options.leases, history);
      const winners = updates.filter((u) => !verdicts.get(u.dst));
      for (const u of updates) outcomes.set(u.dst, verdicts.get(u.dst));
      if (options.atomic && winners.length < updates.length) return failAll(commands, outcomes, ATOMIC_PUSH_FAILURE);
      if (winners.length === 0 || !changesAnything(winners, snapshot.manifest)) return report(commands, outcomes);
      // Only a remote whose HEAD names no existing branch needs the local branch (see plannedContent).
      const localBranch = headExists(snapshot.manifest) ? undefined : await currentBranch();
      const next = repo.successor(snapshot, { keyId: dataKey.keyId, ...plannedContent(snapshot.manifest, winners, container, localBranch, peeledTags) });
      const { published, snapshot: publishedSnapshot } = await repo.publish(next, dataKey, snapshot.chain);
      if (published) {
        killPoint('push-published');
        if (container && Date.now() - uploadStartedAt > SLOW_PUSH_MS) await restoreIfSwept(repo.storage, container, containerFile);
        if (container) await repo.state.update({ fetched: [container.id] });
        killPoint('push-recorded');
        await mergeAfterPush(repo, publishedSnapshot, workDir);
        return report(commands, outcomes);
      }
      if (attempt >= MAX_PUBLISH_ATTEMPTS) return failAll(commands, outcomes, 'the remote is too busy (lost the publication race 50 times); try again');
      await new Promise((r) => setTimeout(r, Math.min(1000, 5 * 2 ** Math.min(attempt, 8)) * Math.random()));
      snapshot = await repo.latest();
      if (container && !keepsObjectsOf(snapshot.manifest, builtOn.manifest)) {
        // A gc in between may have dropped objects our deltas refer to: pack again against the
        // remote as it is now. The first container is left for gc to sweep.
        container = await build(snapshot, attempt);
        builtOn = snapshot;
      }
    }
  } finally {
    await pendingKey?.then(
      (key) => key.plaintext.fill(0),
      () => undefined,
    );
    await fs.rm(workDir, { recursive: true, force: true });
    releaseWorkDir();
  }
}

/** The same refusal, naming the file where git can tell which path holds the object. */
async function nameTooLarge(err: ObjectTooLargeError, include: string[], exclude: string[]): Promise<KmscryptError> {
  const { stdout } = await runGit(['rev-list', '--objects', '--stdin'], { input: [...include, ...exclude.map((o) => `^${o}`)].join('\n') + '\n' }).catch(
    () => ({ stdout: Buffer.alloc(0) }),
  );
  const line = stdout
    .toString('utf8')
    .split('\n')
    .find((l) => l.startsWith(err.oid + ' '));
  const path = line ? line.slice(err.oid.length + 1) : undefined;
  const mib = (err.size / 2 ** 20).toFixed(1);
  return new KmscryptError(
    'TOO_LARGE',
    `${path ? `${path} (object ${err.oid})` : `object ${err.oid}`} is ${err.size} bytes (${mib} MiB), over the 2 GiB single-object limit`,
    { oid: err.oid, size: err.size, unchanged: 'nothing was stored' },
  );
}

/**
 * The push has landed; merging the newest containers (tail-merge.ts) is housekeeping that may
 * fail without harm: the store stays as the push left it, and a later push tries again.
 */
async function mergeAfterPush(repo: RemoteRepository, published: ManifestSnapshot, workDir: string): Promise<void> {
  try {
    await mergeTail(repo, published, workDir);
  } catch (err) {
    process.stderr.write(`warning: kmscrypt: the push landed, but merging the newest containers failed (${errorMessage(err)}); a later push tries again\n`);
  }
}

function report(commands: PushCommand[], outcomes: Map<string, string | undefined>): PushOutcome[] {
  return commands.map((c) => ({ dst: c.dst, error: outcomes.get(c.dst) }));
}

function failAll(commands: PushCommand[], outcomes: Map<string, string | undefined>, why: string): PushOutcome[] {
  return commands.map((c) => ({ dst: c.dst, error: outcomes.get(c.dst) ?? why }));
}
