import type { Test } from 'tap';
import { openContainer } from '../../src/remote/container-reader';
import { RemoteConfig, RemoteRepository } from '../../src/remote/remote-repository';
import { Sandbox } from './sandbox';
import type { StoreAccess } from './store-access';
import type { ScenarioBackend } from './git-scenarios';

export interface TamperBackend extends ScenarioBackend {
  /** The product's own view of a store, to locate records inside a container. */
  remoteConfig(sb: Sandbox, store: StoreAccess): RemoteConfig;
}

const SECRETS = {
  branch: 'refs/heads/secret-branch-name-qwerty',
  tag: 'secret-tag-name-asdfgh',
  message: 'secret commit message xyzzy plugh',
  content: 'SECRET FILE CONTENT: the launch code is 0000-1111-2222-3333\n',
  fileName: 'secret-file-name-zxcvbn.txt',
};

/** Every way a storage operator could alter the store must stop the fetch before git sees anything. */
/** Figures for `npm run test:reliability`: tamper cases tried and detected, per scenario. */
export type TamperReport = (name: string, figures: { tamperTried: number; tamperDetected: number }) => void;

export function tamperScenarios(t: Test, backend: TamperBackend, report?: TamperReport): void {
  const tally = { tamperTried: 0, tamperDetected: 0 };
  /** Counts one tamper case; it is detected when every check about it passed. */
  const counted = (tt: Test, checks: () => void) => {
    const failedBefore = tt.counts.fail;
    checks();
    tally.tamperTried++;
    if (tt.counts.fail === failedBefore) tally.tamperDetected++;
  };
  const reportScenario = (name: string) => {
    report?.(name, { ...tally });
    tally.tamperTried = 0;
    tally.tamperDetected = 0;
  };
  const published = async (tt: Test) => {
    const sb = new Sandbox(tt, backend.env);
    const store = await backend.newStore(sb, 'store');
    const src = sb.repo('src');
    sb.commit(src, { [SECRETS.fileName]: SECRETS.content, 'other.txt': 'other\n' }, SECRETS.message);
    sb.commit(src, { 'more.txt': 'more content here\n' }, 'second commit');
    sb.git(src, 'tag', '-a', SECRETS.tag, '-m', 'annotated secret tag');
    sb.git(src, 'push', '-q', store.url, `main:${SECRETS.branch}`, 'main', SECRETS.tag);
    return { sb, store, src };
  };

  /** Fetches into a fresh repository; the fetch must fail with one kmscrypt line and create no ref. */
  const expectRefused = (tt: Test, sb: Sandbox, store: StoreAccess, label: string, pattern: RegExp) =>
    counted(tt, () => {
    const dst = sb.path(`fetch-${Math.random().toString(36).slice(2)}`);
    sb.run('git', ['init', '-q', '--bare', dst]);
    const r = sb.run('git', ['fetch', store.url, 'refs/*:refs/*'], { cwd: dst, expectFailure: true });
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
    tt.equal(lines.length, 1, `${label}: one kmscrypt error line`, { stderr: r.stderr });
    tt.match(lines[0] ?? r.stderr, pattern, `${label}: the error names the problem`);
    tt.equal(sb.git(dst, 'for-each-ref').trim(), '', `${label}: no ref was created`);
    tt.equal(sb.git(dst, 'count-objects', '-v').match(/^in-pack: (\d+)/m)?.[1] ?? '0', '0', `${label}: no object was stored`);
    });

  t.test('the store holds no ref name, message, file name, content or object ID', async (tt) => {
    const { sb, store, src } = await published(tt);
    const oids = sb.objects(src);
    const needles: Array<[string, Buffer]> = [
      ...Object.entries(SECRETS).map(([k, v]) => [k, Buffer.from(v)] as [string, Buffer]),
      ['short branch name', Buffer.from('secret-branch-name-qwerty')],
      ...oids.flatMap((o) => [
        [`object ID ${o} (hex)`, Buffer.from(o)],
        [`object ID ${o} (binary)`, Buffer.from(o, 'hex')],
      ] as Array<[string, Buffer]>),
    ];
    const keys = await store.keys();
    tt.ok(keys.length >= 3, 'descriptor, manifest and container are stored');
    let leaks = 0;
    for (const key of keys) {
      const bytes = await store.read(key);
      for (const [what, needle] of needles) {
        if (bytes.includes(needle) || Buffer.from(key).includes(needle)) {
          leaks++;
          tt.fail(`${key} contains ${what}`);
        }
      }
    }
    tt.equal(leaks, 0, `none of ${needles.length} secrets appears in ${keys.length} stored objects or their names`);
  });

  t.test('a flipped byte anywhere in any stored object is detected', async (tt) => {
    const { sb, store } = await published(tt);
    for (const key of await store.keys()) {
      const original = await store.read(key);
      const n = original.length;
      const positions = [...new Set([0, 5, 17, 40, Math.floor(n / 4), Math.floor(n / 2), Math.floor((3 * n) / 4), n - 30, n - 17, n - 1])].filter((p) => p >= 0 && p < n);
      for (const p of positions) {
        const bad = Buffer.from(original);
        bad[p] ^= 0x01;
        await store.write(key, bad);
        expectRefused(tt, sb, store, `${key} byte ${p}/${n}`, /./);
      }
      await store.write(key, original);
    }
    reportScenario('flipped bytes');
  });

  t.test('swapped records, a truncated or missing container, and a container or descriptor from another repository are refused', async (tt) => {
    const { sb, store, src } = await published(tt);
    const repo = (await RemoteRepository.open(backend.remoteConfig(sb, store)))!;
    const { manifest } = await repo.latest();
    const ref = manifest!.containers[0];
    const key = `containers/${ref.id}`;
    const original = await store.read(key);
    const { index } = await openContainer(repo, ref);
    tt.ok(index.count >= 2, 'the container holds several records');

    const [o0, l0, o1, l1] = [index.offsets[0], index.lengths[0], index.offsets[1], index.lengths[1]];
    const swapped = Buffer.concat([original.subarray(0, o0), original.subarray(o1, o1 + l1), original.subarray(o0, o0 + l0), original.subarray(o1 + l1)]);
    await store.write(key, swapped);
    expectRefused(tt, sb, store, 'records 0 and 1 swapped', /failed authentication/);

    await store.write(key, original.subarray(0, original.length - 100));
    expectRefused(tt, sb, store, 'container truncated', /truncated|does not match|shorter/);
    await store.write(key, original.subarray(0, Math.floor(original.length / 2)));
    expectRefused(tt, sb, store, 'container cut in half', /truncated|does not match|shorter/);
    await store.remove(key);
    expectRefused(tt, sb, store, 'container deleted', /containers\//);
    await store.write(key, original);

    // A second repository with the same key and content: its pieces must not fit the first.
    const other = await backend.newStore(sb, 'other');
    sb.git(src, 'push', '-q', other.url, 'main');
    const otherRepo = (await RemoteRepository.open(backend.remoteConfig(sb, other)))!;
    const otherRef = (await otherRepo.latest()).manifest!.containers[0];
    await store.write(key, await other.read(`containers/${otherRef.id}`));
    expectRefused(tt, sb, store, 'container from another repository', /does not match the manifest|failed authentication|shorter than expected/);
    await store.write(key, original);

    const descriptor = await store.read('kmscrypt.json');
    await store.write('kmscrypt.json', await other.read('kmscrypt.json'));
    expectRefused(tt, sb, store, "another repository's descriptor", /does not belong to this repository|altered|authentication/);
    reportScenario('swapped, truncated, deleted and foreign objects');
    await store.write('kmscrypt.json', descriptor);
    sb.run('git', ['clone', '-q', '--mirror', store.url.replace(/^kmscrypt::/, 'kmscrypt::'), sb.path('restored.git')]);
    tt.pass('restored store is readable again');
  });

  t.test('a clone refuses a remote whose newest manifest was deleted or replaced by an older one', async (tt) => {
    const { sb, store, src } = await published(tt);
    sb.commit(src, { 'later.txt': 'later\n' }, 'later commit');
    sb.git(src, 'push', '-q', store.url, 'main');
    sb.run('git', ['clone', '-q', store.url, sb.path('watcher')]);
    const watcher = sb.path('watcher');
    const before = sb.git(watcher, 'rev-parse', 'origin/main').trim();
    const manifests = (await store.keys()).filter((k) => k.startsWith('manifests/'));
    const newest = manifests[manifests.length - 1];
    const newestBytes = await store.read(newest);

    await store.remove(newest);
    counted(tt, () => {
      const r = sb.run('git', ['fetch', 'origin'], { cwd: watcher, expectFailure: true });
      tt.match(r.stderr, /fatal: kmscrypt: .*went backwards/, 'deletion of the newest manifest is a rollback');
      tt.equal(sb.git(watcher, 'rev-parse', 'origin/main').trim(), before, 'no ref moved');
    });

    await store.write(newest, await store.read(manifests[0]));
    counted(tt, () => {
      const r2 = sb.run('git', ['fetch', 'origin'], { cwd: watcher, expectFailure: true });
      tt.match(r2.stderr, /fatal: kmscrypt: .*(old manifest was put back|replaced)/, 'an old manifest under a new name is refused');
      tt.equal(sb.git(watcher, 'rev-parse', 'origin/main').trim(), before, 'no ref moved');
    });
    reportScenario('rollback');
    await store.write(newest, newestBytes);
    sb.git(watcher, 'fetch', '-q', 'origin');
    tt.pass('the genuine manifest is accepted again');
  });

  t.test('a clone refuses a store whose repository was replaced by another one or removed', async (tt) => {
    const { sb, store } = await published(tt);
    sb.run('git', ['clone', '-q', store.url, sb.path('knower')]);
    const knower = sb.path('knower');
    const saved = new Map<string, Buffer>();
    for (const key of await store.keys()) saved.set(key, await store.read(key));
    for (const key of saved.keys()) await store.remove(key);
    counted(tt, () => {
      const gone = sb.run('git', ['fetch', 'origin'], { cwd: knower, expectFailure: true });
      tt.match(gone.stderr, /fatal: kmscrypt: repository .* is gone from the store/, 'a removed repository is reported, not taken for a new one');
    });
    const attacker = sb.repo('attacker');
    sb.commit(attacker, { 'evil.txt': 'evil\n' }, 'a different repository');
    sb.git(attacker, 'push', '-q', store.url, 'main');
    counted(tt, () => {
      const replaced = sb.run('git', ['fetch', 'origin'], { cwd: knower, expectFailure: true });
      tt.match(replaced.stderr, /fatal: kmscrypt: .* now holds repository .*it was replaced/, 'a new repository at the same place is refused');
    });
    reportScenario('repository removed or replaced');
  });
}
