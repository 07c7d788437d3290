import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { type AcceptedPush, lostPushes, readManifestLog } from './push-accounting';
import { Sandbox } from './sandbox';
import type { TamperBackend } from './tamper-scenarios';

export interface ConcurrencySize {
  workers: number;
  /** Pushes per worker to its own branch. */
  pushesPerWorker: number;
  /** Fetch-commit-push cycles per worker on the shared branch. */
  sameBranchPushesPerWorker: number;
}

/**
 * `npm test`: 6 x 8 pushes to distinct branches and 6 x 5 cycles on one branch on the local store,
 * 3 x 4 and 3 x 3 over S3 (`reduced`): enough processes to overlap every step of a push, small
 * enough for the suite's 15-minute budget on 2 cores (the assertions are the same at every size);
 * `npm run test:reliability`: 16 x 50 everywhere.
 */
export function concurrencySize(reduced = false): ConcurrencySize {
  if (process.env.KMSCRYPT_RELIABILITY_FULL) return { workers: 16, pushesPerWorker: 50, sameBranchPushesPerWorker: 50 };
  return reduced ? { workers: 3, pushesPerWorker: 4, sameBranchPushesPerWorker: 3 } : { workers: 6, pushesPerWorker: 8, sameBranchPushesPerWorker: 5 };
}

export interface PushTally {
  attempted: number;
  /** Pushes git reported as accepted. */
  landed: number;
  /** Pushes git rejected as stale, in git's own words. */
  rejected: number;
  /** Accepted pushes the manifest log does not keep (see lostPushes). */
  lost: number;
  /** Attempts that failed otherwise: any other push failure, or a failed fetch before it. */
  failed: number;
}

/** git's exact words for a push it rejects as stale: the helper said `fetch first` or `non-fast-forward`. */
const STALE_REJECTION = String.raw`^ ! \[rejected\] +HEAD -> main \((fetch first|non-fast-forward)\)$`;

/** Runs a bash script in the sandbox's environment, resolving with its exit status. */
function runScript(sb: Sandbox, script: string, cwd: string): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', script], { cwd, env: sb.env, stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.on('data', () => undefined);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

/**
 * Many processes pushing at once. To distinct branches every push must land; to one branch each
 * push lands or is rejected as git rejects a stale push, and no landed commit is ever lost.
 */
export function concurrencyScenarios(t: Test, backend: TamperBackend, report?: (name: string, tally: PushTally) => void, size = concurrencySize()): void {
  const { workers, pushesPerWorker, sameBranchPushesPerWorker } = size;

  const setup = async (tt: Test, cloneCount = workers) => {
    const sb = new Sandbox(tt, backend.env).withoutCoverage();
    const store = await backend.newStore(sb, 'store');
    const seed = sb.repo('seed');
    sb.commit(seed, { 'README': 'seed\n' }, 'seed');
    sb.git(seed, 'push', '-q', store.url, 'main');
    const clones: string[] = [];
    for (let w = 0; w < cloneCount; w++) {
      const dir = sb.path(`w${w}`);
      sb.run('git', ['clone', '-q', store.url, dir]);
      clones.push(dir);
    }
    return { sb, store, clones };
  };

  /** Lines of `LANDED <ref> <commit>`, `REJECTED`, `ERROR <what>` → a tally, the lost pushes computed from the manifest log. */
  const account = async (tt: Test, sb: Sandbox, store: Awaited<ReturnType<typeof setup>>['store'], lines: string[]) => {
    const accepted: AcceptedPush[] = lines.filter((l) => l.startsWith('LANDED ')).map((l) => ({ ref: l.split(' ')[1], commit: l.split(' ')[2] }));
    const errors = lines.filter((l) => l.startsWith('ERROR'));
    const mirror = sb.path('check.git');
    sb.run('git', ['clone', '-q', '--mirror', store.url, mirror]);
    sb.git(mirror, 'fsck', '--strict', '--no-dangling');
    const log = await readManifestLog(backend.remoteConfig(sb, store));
    const lost = lostPushes(sb, mirror, log, accepted);
    tt.same(lost, [], `every one of the ${accepted.length} accepted pushes was published and is still reachable from its ref in every later manifest (${log.length} generations)`);
    const tally: PushTally = { attempted: lines.length, landed: accepted.length, rejected: lines.filter((l) => l === 'REJECTED').length, lost: lost.length, failed: errors.length };
    tt.equal(tally.landed + tally.rejected + tally.failed, tally.attempted, 'every attempt is accounted for');
    return { tally, errors, accepted, mirror };
  };

  t.test(`${workers} processes x ${pushesPerWorker} pushes to distinct branches: every push lands`, async (tt) => {
    const { sb, store, clones } = await setup(tt);
    const results = await Promise.all(
      clones.map((dir, w) => {
        const log = sb.path(`landed-${w}`);
        writeFileSync(log, '');
        const script = `set -u
for i in $(seq 1 ${pushesPerWorker}); do
  echo "w${w} $i" > file-${w}.txt && git add file-${w}.txt && git commit -q -m "worker ${w} push $i"
  if git push -q origin HEAD:refs/heads/worker-${w} 2> err-$i; then echo "LANDED refs/heads/worker-${w} $(git rev-parse HEAD)" >> ${log};
  else echo "ERROR $(tr '\\n' ' ' < err-$i)" >> ${log}; fi
done`;
        return runScript(sb, script, dir).then(() => sb.run('cat', [log]).stdout.split('\n').filter(Boolean));
      }),
    );
    const { tally, errors, mirror } = await account(tt, sb, store, results.flat());
    tt.equal(tally.attempted, workers * pushesPerWorker, 'every worker made every attempt');
    tt.same(errors, [], 'no push to a distinct branch failed');
    tt.equal(tally.landed, tally.attempted, 'every push to a distinct branch landed');
    results.forEach((lines, w) => {
      const last = lines.filter((l) => l.startsWith('LANDED ')).pop()?.split(' ')[2];
      tt.equal(sb.git(mirror, 'rev-parse', `refs/heads/worker-${w}`).trim(), last, `worker ${w}'s branch holds its last push`);
    });
    report?.('distinct branches', tally);
  });

  t.test(`${workers} processes x ${sameBranchPushesPerWorker} pushes to one branch: each lands or is rejected, none is lost`, async (tt) => {
    const { sb, store, clones } = await setup(tt);
    const results = await Promise.all(
      clones.map((dir, w) => {
        const log = sb.path(`one-${w}`);
        writeFileSync(log, '');
        // A failed fetch is a failed attempt; a push is rejected only in git's exact words for a
        // stale push, never as '[remote rejected] (<any helper error>)'.
        const script = `set -u
for i in $(seq 1 ${sameBranchPushesPerWorker}); do
  if ! git fetch -q origin 2> fetch-err-$i || ! git reset -q --hard origin/main 2>> fetch-err-$i; then
    echo "ERROR fetch: $(tr '\\n' ' ' < fetch-err-$i)" >> ${log}; continue
  fi
  echo "w${w} $i" > file-${w}.txt && git add file-${w}.txt && git commit -q -m "worker ${w} attempt $i"
  if git push origin HEAD:main 2> err-$i; then echo "LANDED refs/heads/main $(git rev-parse HEAD)" >> ${log};
  elif [ "$(grep -c -E '${STALE_REJECTION}' err-$i)" = 1 ] && ! grep -q 'remote rejected' err-$i; then echo REJECTED >> ${log};
  else echo "ERROR push: $(tr '\\n' ' ' < err-$i)" >> ${log}; fi
done`;
        return runScript(sb, script, dir).then(() => sb.run('cat', [log]).stdout.split('\n').filter(Boolean));
      }),
    );
    const { tally, errors } = await account(tt, sb, store, results.flat());
    tt.equal(tally.attempted, workers * sameBranchPushesPerWorker, 'every worker made every attempt');
    tt.same(errors, [], 'no fetch failed, and no push failed other than by git rejecting it as stale');
    tt.ok(tally.landed >= sameBranchPushesPerWorker, `pushes landed (${tally.landed}) while others were rejected (${tally.rejected})`);
    report?.('one branch', tally);
  });

  t.test('an atomic push updates all refs or none', async (tt) => {
    const { sb, store, clones } = await setup(tt, 2);
    const [a, b] = clones;
    sb.commit(a, { 'x': 'a\n' }, 'a on main');
    sb.git(a, 'push', '-q', 'origin', 'main');
    sb.commit(b, { 'y': 'b\n' }, 'b diverges');
    sb.git(b, 'branch', 'side');
    const r = sb.run('git', ['push', '--atomic', 'origin', 'main', 'side'], { cwd: b, expectFailure: true });
    tt.match(r.stderr, /rejected|atomic/);
    const ls = sb.git(a, 'ls-remote', store.url);
    tt.notMatch(ls, /refs\/heads\/side/, 'the other ref of the atomic push was not created');

    // git refuses that one itself, from the refs it listed. A push that lands after the listing
    // (from b's pre-push hook, which git runs between the two) is found only by the helper, when
    // its publication loses the race: it must then refuse every ref of the atomic push.
    sb.git(b, 'fetch', '-q', 'origin');
    sb.git(b, 'reset', '-q', '--hard', 'origin/main');
    sb.commit(b, { 'z': 'b again\n' }, 'b on top of main');
    sb.git(b, 'branch', 'side2');
    writeFileSync(
      join(b, '.git', 'hooks', 'pre-push'),
      `#!/bin/sh\nunset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE\ncd '${a}' && echo race > race.txt && git add race.txt && git commit -q -m race && git push -q origin main\n`,
      { mode: 0o755 },
    );
    const raced = sb.run('git', ['push', '--atomic', 'origin', 'main', 'side2'], { cwd: b, expectFailure: true });
    tt.match(raced.stderr, /! \[rejected\] +main -> main \(fetch first\)/, 'main is refused: the racing push moved it');
    const after = sb.git(a, 'ls-remote', store.url);
    tt.notMatch(after, /refs\/heads\/side2/, 'the other ref of the raced atomic push was not created');
    tt.match(after, new RegExp(`^${sb.git(a, 'rev-parse', 'HEAD').trim()}\trefs/heads/main$`, 'm'), 'the racing push is kept');
  });
}
