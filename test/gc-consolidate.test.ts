/**
 * collectGarbage (src/remote/gc.ts) consolidating, called in this process on a LocalStorage store
 * with a LocalKeyProvider: the packs of the pushes are written by git (scratch-git.ts) and gc
 * repacks through git, so this file is in the local tier. After gc one container holds exactly
 * what the refs reach, an unreachable commit is gone, and the old containers and manifests go only
 * after the grace period. test/gc.test.ts drives `git kmscrypt gc` through git end to end.
 */
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { STORE_KEYS } from '../src/format/constants';
import type { WrittenPack } from '../src/git/pack-objects';
import { collectGarbage } from '../src/remote/gc';
import { localRemote, publishManifest, pushPack, readObjects } from './support/local-remote';
import { scratchGit, ScratchGit } from './support/scratch-git';

const HOUR = 3_600_000;

/** What a push of `revs` (rev-list arguments, e.g. the new tip and ^the remote's) packs. */
function packOf(git: ScratchGit, revs: string[]): WrittenPack {
  const base = join(git.dir, '.git', 'test-pack');
  const hash = git.text(['pack-objects', '--revs', '--delta-base-offset', '-q', base], revs.join('\n') + '\n');
  const packPath = `${base}-${hash}.pack`;
  return { packPath, idxPath: `${base}-${hash}.idx`, entriesEnd: statSync(packPath).size - 20 };
}

function commit(git: ScratchGit, files: Record<string, string>, message: string): string {
  for (const [name, text] of Object.entries(files)) writeFileSync(join(git.dir, name), text);
  git.run(['add', '-A']);
  git.run(['commit', '-qm', message]);
  return git.text(['rev-parse', 'HEAD']);
}

/** Every object `rev` reaches, as `git rev-list --objects` lists them. */
function reachable(git: ScratchGit, ...revs: string[]): string[] {
  return git
    .text(['rev-list', '--objects', ...revs])
    .split('\n')
    .map((line) => line.slice(0, 40))
    .sort();
}

t.test('gc keeps every object the refs reach in one container and drops an unreachable commit', async (t) => {
  const git = scratchGit(t, 'gc-consolidate');
  git.run(['init', '-q', '-b', 'main', '.']);
  const remote = await localRemote(t);
  const first = commit(git, { 'file.txt': 'version 1\n'.repeat(40) }, 'one');
  await pushPack(remote.repo, packOf(git, [first]), { 'refs/heads/main': first });
  const second = commit(git, { 'file.txt': 'version 2\n'.repeat(40) }, 'two');
  await pushPack(remote.repo, packOf(git, [second, `^${first}`]), { 'refs/heads/main': second });
  git.run(['checkout', '-q', '-b', 'doomed']);
  const doomed = commit(git, { 'secret.txt': 'pushed by mistake\n' }, 'doomed');
  await pushPack(remote.repo, packOf(git, [doomed, `^${second}`]), { 'refs/heads/doomed': doomed });
  await publishManifest(remote.repo, (m) => ({ refs: { 'refs/heads/main': m!.refs['refs/heads/main'] } })); // the branch is deleted
  const before = (await remote.repo.latest()).manifest!;
  const secret = git.text(['rev-parse', 'doomed:secret.txt']);

  const gcRepo = await remote.clone('gc', { stateDir: undefined });
  const report = await collectGarbage(gcRepo, { graceMs: HOUR, progress: false });
  const wanted = reachable(git, second);
  t.match(report, { generation: before.generation + 1, containersBefore: 3, scheduled: 3, deletedContainers: 0, objectsAfter: wanted.length });
  t.equal(report.objectsBefore, wanted.length + 3, 'before: also the doomed commit, its tree and its blob');

  const { manifest } = await (await remote.clone('reader')).latest('read');
  t.same(manifest!.refs, { 'refs/heads/main': second }, 'the refs are unchanged');
  t.equal(manifest!.containers.length, 1, 'one container');
  t.same(
    manifest!.containers[0].consolidates,
    before.containers.map((c) => c.id),
    'which names the three it replaces',
  );

  const reader = await remote.clone('reader2');
  const objects = await readObjects(reader, [...wanted, doomed, secret]);
  t.same([...objects.keys()].sort(), wanted, 'every object main reaches, and not the doomed commit or its blob');
  for (const oid of [second, git.text(['rev-parse', `${first}:file.txt`])]) {
    t.same(objects.get(oid), git.run(['cat-file', oid === second ? 'commit' : 'blob', oid]), `${oid.slice(0, 7)} reads back as git has it`);
  }
  t.equal((await remote.storage.list(STORE_KEYS.containerPrefix)).length, 4, 'the old containers stay for readers under way');

  const later = await collectGarbage(gcRepo, { graceMs: 0, progress: false });
  t.equal(later.deletedContainers, 3, 'past the grace period the three old containers are deleted');
  t.same(
    (await remote.storage.list(STORE_KEYS.containerPrefix)).map((o) => o.key),
    [`${STORE_KEYS.containerPrefix}${manifest!.containers[0].id}`],
    'only the consolidated container is left',
  );
  t.equal(later.deletedManifests, before.generation, "the manifests gc's history object attests are deleted");
  t.equal((await remote.storage.list(STORE_KEYS.manifestPrefix)).length, 1, 'only the newest manifest is left');
  t.same([...(await readObjects(await remote.clone('reader3'), wanted)).keys()].sort(), wanted, 'and a new clone still reads everything');
});
