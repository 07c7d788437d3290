import { copyFileSync, existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { Sandbox } from './support/sandbox';
import { localStore } from './support/store-access';

interface StatsLine {
  storage: Record<string, number>;
}

t.test('gc consolidates, drops unreachable objects, deletes only after the grace period, and costs clones nothing', async (t) => {
  const sb = new Sandbox(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  for (let i = 0; i < 4; i++) {
    sb.commit(src, { 'file.txt': `version ${i}\n`.repeat(20) }, `commit ${i}`);
    sb.git(src, 'push', '-q', 'origin', 'main');
  }
  sb.git(src, 'checkout', '-q', '-b', 'doomed');
  const doomed = sb.commit(src, { 'secret.txt': 'pushed by mistake\n' }, 'doomed');
  sb.git(src, 'push', '-q', 'origin', 'doomed');
  sb.git(src, 'push', '-q', 'origin', '--delete', 'doomed');
  sb.git(src, 'checkout', '-q', 'main');
  sb.run('git', ['clone', '-q', store.url, sb.path('early')]);
  const containersBefore = (await store.keys()).filter((k) => k.startsWith('containers/'));
  t.equal(containersBefore.length, 5, 'one container per push');

  const first = sb.run('git', ['kmscrypt', 'gc', store.url, '--json']);
  const report = JSON.parse(first.stdout) as { scheduled: number; deletedContainers: number; objectsAfter: number; objectsBefore: number };
  t.same(Object.keys(report).sort(), ['bytesAfter', 'bytesBefore', 'containersBefore', 'deletedContainers', 'deletedManifests', 'generation', 'objectsAfter', 'objectsBefore', 'scheduled'], 'the JSON report holds its figures and nothing else');
  t.equal(report.deletedContainers, 0, 'within the grace period nothing is deleted');
  t.equal(report.scheduled, 5, 'the five old containers are scheduled');
  t.ok(report.objectsAfter < report.objectsBefore, 'the unreachable commit and its objects were dropped');
  const afterFirst = (await store.keys()).filter((k) => k.startsWith('containers/'));
  t.equal(afterFirst.length, 6, 'old containers are still there for readers under way');

  sb.run('git', ['clone', '-q', '--mirror', store.url, sb.path('after.git')]);
  t.same(sb.refs(sb.path('after.git')), new Map([...sb.refs(src)].filter(([r]) => r !== 'refs/heads/doomed')), 'a clone after gc has every ref');
  sb.git(sb.path('after.git'), 'fsck', '--strict', '--no-dangling');
  t.not(sb.run('git', ['cat-file', '-e', doomed], { cwd: sb.path('after.git'), expectFailure: true }).status, 0, 'the unreachable commit is gone');

  const second = JSON.parse(sb.run('git', ['kmscrypt', 'gc', store.url, '--grace', '0', '--json']).stdout) as { deletedContainers: number; deletedManifests: number };
  t.ok(second.deletedContainers >= 5, 'after the grace period the old containers are deleted');
  t.ok(second.deletedManifests >= 6, 'and the superseded manifests');
  t.equal((await store.keys()).filter((k) => k.startsWith('manifests/')).length, 1, 'only the newest manifest is left');

  // A clone made before gc fetches a new commit without downloading the consolidated container.
  sb.commit(src, { 'file.txt': 'after gc\n' }, 'after gc');
  sb.git(src, 'push', '-q', 'origin', 'main');
  const stats = sb.path('stats.jsonl');
  writeFileSync(stats, '');
  sb.run('git', ['fetch', '-q', 'origin'], { cwd: sb.path('early'), env: { KMSCRYPT_STATS: stats } });
  const line = JSON.parse(readFileSync(stats, 'utf8').trim()) as StatsLine;
  // An incremental fetch's four reads, and gc's manifest in between: its hash links the new
  // manifest to the one this clone saw (continuity, docs/FORMAT.md §9.1). Nothing is re-downloaded.
  t.same({ get: line.storage.get, list: line.storage.list }, { get: 5, list: 1 }, 'an incremental fetch and one manifest read to prove continuity: nothing re-downloaded');
  t.equal(sb.git(sb.path('early'), 'rev-parse', 'origin/main').trim(), sb.git(src, 'rev-parse', 'HEAD').trim());
});

t.test('a push that lands while gc is about to publish is never lost', async (t) => {
  const sb = new Sandbox(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  sb.commit(src, { 'a': 'a\n' }, 'base');
  sb.git(src, 'push', '-q', 'origin', 'main');
  const generation = async () => Math.max(...(await store.keys()).filter((k) => k.startsWith('manifests/')).map((k) => Number(k.slice('manifests/'.length))));
  for (let round = 0; round < 3; round++) {
    sb.commit(src, { 'b': `before round ${round}\n` }, `before round ${round}`);
    sb.git(src, 'push', '-q', 'origin', 'main');
    const pause = sb.path(`pause-${round}`);
    mkdirSync(pause);
    // gc has consolidated everything and is about to publish; a push lands exactly then.
    const gc = sb.runAsync(['git', 'kmscrypt', 'gc', store.url, '--grace', '0', '--json'], { env: { KMSCRYPT_TEST_PAUSE_POINT: `gc-before-publish:${pause}` } });
    while (!existsSync(join(pause, 'reached'))) await new Promise((r) => setTimeout(r, 20));
    const head = sb.commit(src, { 'a': `round ${round}\n` }, `round ${round}`);
    await sb.runAsync(['git', 'push', '-q', 'origin', 'main'], { cwd: src });
    const pushed = await generation();
    writeFileSync(join(pause, 'go'), '');
    const report = JSON.parse((await gc).stdout) as { generation: number };
    t.ok(report.generation > pushed, `round ${round}: gc lost generation ${pushed} to the push and published ${report.generation} after it`);
    const check = sb.path(`check-${round}.git`);
    sb.run('git', ['clone', '-q', '--mirror', store.url, check]);
    t.equal(sb.git(check, 'rev-parse', 'main').trim(), head, `round ${round}: the push that raced gc is main`);
    sb.git(check, 'fsck', '--strict', '--no-dangling');
  }
});

t.test('a container no manifest lists yet (a push under way) is kept until it is a day old, whatever --grace says', async (t) => {
  const sb = new Sandbox(t);
  const dir = sb.path('store');
  const store = localStore(dir);
  const src = sb.repo('src');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  sb.commit(src, { 'a': 'a\n' }, 'one');
  sb.git(src, 'push', '-q', 'origin', 'main');
  sb.commit(src, { 'a': 'b\n' }, 'two');
  sb.git(src, 'push', '-q', 'origin', 'main');
  // What a push leaves between its upload and its publication: a container no manifest lists.
  const [listed] = (await store.keys()).filter((k) => k.startsWith('containers/'));
  const unlisted = join(dir, 'containers', 'f'.repeat(32));
  copyFileSync(join(dir, listed), unlisted);

  const gc = () => JSON.parse(sb.run('git', ['kmscrypt', 'gc', store.url, '--grace', '0', '--json']).stdout) as { scheduled: number; deletedContainers: number };
  const first = gc();
  t.equal(first.scheduled, 2, 'the two superseded containers are scheduled, the unlisted one is not');
  t.equal(first.deletedContainers, 2, 'with --grace 0 they are deleted at once');
  t.ok(existsSync(unlisted), 'the unlisted container is still there after a consolidating gc');
  t.equal(gc().scheduled, 0, 'a sweeping gc leaves it too');
  t.ok(existsSync(unlisted), 'and it is still there');

  const hours = (h: number) => new Date(Date.now() - h * 3_600_000);
  utimesSync(unlisted, hours(23), hours(23));
  t.equal(gc().scheduled, 0, 'at 23 hours old it is still kept');
  utimesSync(unlisted, hours(25), hours(25));
  const late = gc();
  t.same({ scheduled: late.scheduled, deleted: late.deletedContainers }, { scheduled: 1, deleted: 1 }, 'at 25 hours old it is an interrupted push\'s leftover: scheduled, and deleted after the grace');
  t.notOk(existsSync(unlisted), 'it is gone');
  sb.run('git', ['clone', '-q', store.url, sb.path('check')]);
  t.equal(sb.git(sb.path('check'), 'rev-parse', 'HEAD').trim(), sb.git(src, 'rev-parse', 'HEAD').trim(), 'the repository clones whole');
});

t.test('gc acts only on schedules it sealed: a forged or altered one shortens no grace period', async (t) => {
  const sb = new Sandbox(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  for (let i = 0; i < 3; i++) {
    sb.commit(src, { 'file.txt': `version ${i}\n` }, `commit ${i}`);
    sb.git(src, 'push', '-q', 'origin', 'main');
  }
  const superseded = (await store.keys()).filter((k) => k.startsWith('containers/'));
  const first = JSON.parse(sb.run('git', ['kmscrypt', 'gc', store.url, '--json']).stdout) as { scheduled: number };
  t.equal(first.scheduled, 3, 'the three containers are scheduled, to be deleted after the grace period');
  const [scheduleKey] = (await store.keys()).filter((k) => k.startsWith('gc/'));
  const sealed = await store.read(scheduleKey);
  t.notOk(sealed.includes(Buffer.from('createdAt')), 'the schedule is sealed: its time cannot be read or changed');

  // What an operator would write: the schedule's bytes altered, and a plaintext list (the format of
  // earlier versions) dated 1970 that names every superseded container and every manifest.
  const altered = Buffer.from(sealed);
  altered[altered.length - 20] ^= 1;
  await store.write(scheduleKey, altered);
  const ids = superseded.map((k) => k.slice('containers/'.length));
  await store.write('gc/19700101T000000000Z-forged.json', Buffer.from(JSON.stringify({ createdAt: '1970-01-01T00:00:00.000Z', containers: ids, generation: 999 })));
  const manifestsBefore = (await store.keys()).filter((k) => k.startsWith('manifests/'));

  const second = sb.run('git', ['kmscrypt', 'gc', store.url, '--json']);
  const report = JSON.parse(second.stdout) as { deletedContainers: number; deletedManifests: number; scheduled: number };
  t.same({ deletedContainers: report.deletedContainers, deletedManifests: report.deletedManifests }, { deletedContainers: 0, deletedManifests: 0 }, 'nothing was deleted before the grace period');
  const warnings = second.stderr.split('\n').filter((l) => l.startsWith('warning: kmscrypt:'));
  t.equal(warnings.length, 2, 'one warning line for each schedule that does not authenticate', { stderr: second.stderr });
  for (const w of warnings) t.match(w, /is not a gc schedule this clone can authenticate \(.*\); ignored and deleted$/);
  const keys = await store.keys();
  for (const k of superseded) t.ok(keys.includes(k), `${k} is still stored`);
  t.same(keys.filter((k) => k.startsWith('manifests/')), manifestsBefore, 'every manifest is still stored');
  t.equal(report.scheduled, 3, 'what the rejected schedules listed is scheduled again, with a fresh grace period');
  t.notOk(keys.includes(scheduleKey) || keys.includes('gc/19700101T000000000Z-forged.json'), 'the rejected schedules are gone');

  const third = JSON.parse(sb.run('git', ['kmscrypt', 'gc', store.url, '--grace', '0', '--json']).stdout) as { deletedContainers: number };
  t.equal(third.deletedContainers, 3, 'after the grace period, the genuine schedule deletes them');
  sb.run('git', ['clone', '-q', store.url, sb.path('check')]);
  t.equal(sb.git(sb.path('check'), 'rev-parse', 'HEAD').trim(), sb.git(src, 'rev-parse', 'HEAD').trim(), 'the repository clones whole');
});
