/**
 * Partial clones (`--filter`) with stock git over a kmscrypt store (a local directory or S3),
 * compared in the same test with plain git against a bare repository with uploadpack.allowFilter: the objects a filtered
 * clone holds, the promisor marking, and the everyday commands that fetch missing objects on
 * demand (checkout of an old tag, log -p, blame, diff), then fetch, pull and push from it.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { ScenarioBackend } from './git-scenarios';
import { PlainGitTwin } from './plain-git-twin';

/** Three versions of a small project with one large file per version, a tag on the first. */
async function project(t: Test, backend: ScenarioBackend): Promise<PlainGitTwin> {
  const twin = await PlainGitTwin.create(t, backend);
  const { sb, src } = twin;
  sb.commit(
    src,
    { 'README.md': '# one\n', 'lib/util.c': 'int util(void) { return 1; }\n', 'lib/deep/x.c': 'int x;\n', 'data/large.bin': 'A'.repeat(300_000) },
    'version one',
  );
  sb.git(src, 'tag', '-a', 'v1', '-m', 'version one');
  sb.commit(src, { 'README.md': '# two\n', 'lib/util.c': 'int util(void) { return 2; }\n', 'data/large.bin': 'B'.repeat(300_000) }, 'version two');
  sb.commit(src, { 'README.md': '# three\n', 'lib/deep/x.c': 'int x = 3;\n', 'data/large.bin': 'C'.repeat(300_000) }, 'version three');
  twin.pushAll();
  return twin;
}

const blobsOf = (objects: string[]) => objects.filter((o) => o.endsWith(' blob'));

/** Each case against `backend`, compared with plain git against a bare repository. */
export function partialCloneScenarios(t: Test, backend: ScenarioBackend): void {
  t.test('--filter=blob:none: commits and trees only, a promisor pack, then the checkout fetches the tip blobs', async (t) => {
    const twin = await project(t, backend);
    const bare = twin.cloneBoth('bare', '--filter=blob:none', '--no-checkout');
    twin.compare(t, bare, 'blob:none, before checkout');
    t.same(blobsOf(twin.objects(bare[0])), [], 'no blob at all');
    const packs = readdirSync(join(bare[0], '.git/objects/pack'));
    t.ok(
      packs.some((f) => f.endsWith('.promisor')),
      'the pack is a promisor pack',
    );
    t.equal(twin.sb.git(bare[0], 'config', 'remote.origin.promisor').trim(), 'true');
    t.equal(twin.sb.git(bare[0], 'config', 'remote.origin.partialclonefilter').trim(), 'blob:none');

    const clones = twin.cloneBoth('co', '--filter=blob:none');
    twin.compare(t, clones, 'blob:none, checked out');
    t.equal(readFileSync(join(clones[0], 'lib/util.c'), 'utf8'), 'int util(void) { return 2; }\n');
    t.equal(twin.sb.git(clones[0], 'status', '--porcelain'), '', 'the work tree is the tip tree');
    t.equal(blobsOf(twin.objects(clones[0])).length, 4, "the tip's four blobs, nothing older");
  });

  t.test('in a blobless clone: an old tag checks out on demand; log -p --all, blame and diff work', async (t) => {
    const twin = await project(t, backend);
    const clones = twin.cloneBoth('cmds', '--filter=blob:none');
    const [k, p] = clones;
    twin.inBoth(clones, 'checkout', '-q', 'v1');
    t.equal(readFileSync(join(k, 'README.md'), 'utf8'), '# one\n', 'the old version is checked out');
    t.equal(readFileSync(join(k, 'data/large.bin'), 'utf8'), 'A'.repeat(300_000));
    twin.inBoth(clones, 'checkout', '-q', 'main');
    const [logK, logP] = twin.inBoth(clones, 'log', '-p', '--all');
    t.equal(logK, logP, 'log -p --all prints what plain git prints');
    const [blameK, blameP] = twin.inBoth(clones, 'blame', '--porcelain', 'README.md');
    t.equal(blameK, blameP, 'blame');
    const [diffK, diffP] = twin.inBoth(clones, 'diff', 'v1', 'main', '--stat');
    t.equal(diffK, diffP, 'diff between the old tag and main');
    t.same(twin.objects(k), twin.objects(p), 'and now the same objects as plain git');
    twin.sb.git(k, 'fsck', '--no-dangling');
  });

  t.test("log -p, blame and diff in a blobless clone fetch in git's batches: as many lazy fetches as against plain git, one helper each", async (t) => {
    const twin = await project(t, backend);
    const commands: [string, string[]][] = [
      ['diff', ['diff', 'v1', 'main']],
      ['log -p', ['log', '-p', '--all']],
      ['blame', ['blame', 'README.md']],
    ];
    for (const [what, args] of commands) {
      const clones = twin.cloneBoth(`batch-${what.replace(/\W/g, '')}`, '--filter=blob:none');
      const before = blobsOf(twin.objects(clones[0])).length;
      /** The lazy fetches git starts (promisor-remote.c runs one `git fetch … --stdin` per batch). */
      const lazyFetches = (clone: string, name: string, env: NodeJS.ProcessEnv = {}) => {
        const trace = twin.sb.path(`${name}.trace`);
        const out = twin.sb.run('git', args, { cwd: clone, env: { ...env, GIT_TRACE: trace } }).stdout;
        const runs = readFileSync(trace, 'utf8')
          .split('\n')
          .filter((l) => / run_command: git -c fetch\.negotiationAlgorithm=noop fetch .*--stdin/.test(l));
        return { out, count: runs.length };
      };
      const stats = twin.sb.path('lazy-stats.jsonl');
      writeFileSync(stats, '');
      const kms = lazyFetches(clones[0], `kms-${what}`, { KMSCRYPT_STATS: stats });
      const plain = lazyFetches(clones[1], `plain-${what}`);
      const helpers = readFileSync(stats, 'utf8').split('\n').filter(Boolean);
      t.equal(kms.out, plain.out, `${what}: the output plain git prints`);
      t.ok(plain.count > 0, `${what}: plain git fetched lazily (${plain.count} times)`);
      t.equal(kms.count, plain.count, `${what}: as many lazy fetches as plain git`);
      t.equal(helpers.length, kms.count, `${what}: one helper process per lazy fetch, none nested`);
      t.ok(
        helpers.every((l) => (JSON.parse(l) as { outcome: string }).outcome === 'ok'),
        `${what}: every lazy fetch succeeded`,
      );
      t.same(twin.objects(clones[0]), twin.objects(clones[1]), `${what}: the same objects afterwards`);
      const fetched = blobsOf(twin.objects(clones[0])).length - before;
      if (what !== 'blame') t.ok(fetched > kms.count, `${what}: ${fetched} blobs in ${kms.count} fetches: batches, not one by one`);
    }
  });

  t.test('--filter=blob:limit=<n> keeps the small blobs only', async (t) => {
    const twin = await project(t, backend);
    const clones = twin.cloneBoth('limit', '--filter=blob:limit=1k', '--no-checkout');
    twin.compare(t, clones, 'blob:limit=1k');
    const blobs = blobsOf(twin.objects(clones[0]));
    t.equal(blobs.length, 7, 'every version of the small files (README ×3, util.c ×2, x.c ×2), none of large.bin');
    const sizes = spawnSync('git', ['cat-file', '--batch-check=%(objectsize)'], {
      cwd: clones[0],
      input: blobs.map((b) => b.split(' ')[0]).join('\n') + '\n',
      env: twin.sb.env,
    })
      .stdout.toString()
      .trim()
      .split('\n')
      .map(Number);
    t.ok(
      sizes.every((s) => s < 1024),
      `every blob is under 1 KiB (${sizes.join(', ')})`,
    );
  });

  t.test('--filter=tree:0 and tree:1, and a checkout that fetches trees and blobs on demand', async (t) => {
    const twin = await project(t, backend);
    twin.compare(t, twin.cloneBoth('t0', '--filter=tree:0', '--no-checkout'), 'tree:0');
    twin.compare(t, twin.cloneBoth('t1', '--filter=tree:1', '--no-checkout'), 'tree:1');
    twin.compare(t, twin.cloneBoth('combined', '--filter=blob:none', '--filter=tree:2', '--no-checkout'), 'combine:blob:none+tree:2');
    const clones = twin.cloneBoth('t0co', '--filter=tree:0');
    t.equal(readFileSync(join(clones[0], 'lib/deep/x.c'), 'utf8'), 'int x = 3;\n', 'the checkout fetched the trees and blobs it needs');
    t.equal(twin.sb.git(clones[0], 'status', '--porcelain'), '');
  });

  t.test('--depth with --filter', async (t) => {
    const twin = await project(t, backend);
    twin.compare(t, twin.cloneBoth('df', '--depth=2', '--filter=blob:none', '--no-checkout'), 'depth 2, blob:none');
  });

  t.test('fetch, pull and push from a partial clone', async (t) => {
    const twin = await project(t, backend);
    const clones = twin.cloneBoth('flow', '--filter=blob:none');
    const [k] = clones;
    twin.sb.commit(twin.src, { 'lib/util.c': 'int util(void) { return 4; }\n', 'data/large.bin': 'D'.repeat(300_000) }, 'version four');
    twin.pushAll();
    twin.inBoth(clones, 'fetch', '-q');
    twin.compare(t, clones, 'fetch of a new commit');
    t.same(blobsOf(twin.objects(k)).length, 4, 'the fetch brought no blob (the filter is remembered), only the checkout did');
    twin.inBoth(clones, 'pull', '-q', '--ff-only');
    t.equal(readFileSync(join(k, 'lib/util.c'), 'utf8'), 'int util(void) { return 4; }\n', 'pull checked out the new version');

    twin.sb.commit(k, { 'from-partial.txt': 'made in a partial clone\n' }, 'from the partial clone');
    twin.sb.git(k, 'push', '-q', 'origin', 'main');
    twin.sb.git(twin.src, 'pull', '-q', '--ff-only', 'kms', 'main');
    t.equal(readFileSync(join(twin.src, 'from-partial.txt'), 'utf8'), 'made in a partial clone\n', 'a full clone gets what the partial clone pushed');
    const full = twin.sb.path('full-after');
    twin.sb.run('git', ['clone', '-q', twin.store.url, full]);
    twin.sb.git(full, 'fsck', '--no-dangling', '--strict');
  });

  t.test("a filter kmscrypt does not support: git's warning, and an unfiltered clone", async (t) => {
    const twin = await project(t, backend);
    const out = twin.sb.run('git', ['clone', '--filter=sparse:oid=main:README.md', '--no-checkout', twin.store.url, twin.sb.path('sparse')]);
    t.match(out.stderr, /^warning: kmscrypt does not support the filter 'sparse:oid=main:README\.md' .*filtering not recognized by server, ignoring$/m);
    t.equal(blobsOf(twin.objects(twin.sb.path('sparse'))).length, 10, 'every blob came');
  });
}
