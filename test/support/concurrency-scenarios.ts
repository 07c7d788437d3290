import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import type { Test } from 'tap';
import { Sandbox } from './sandbox';
import type { ScenarioBackend } from './git-scenarios';

export interface ConcurrencySize {
  workers: number;
  /** Pushes per worker to its own branch. */
  pushesPerWorker: number;
  /** Fetch-commit-push cycles per worker on the shared branch. */
  sameBranchPushesPerWorker: number;
}

/**
 * `npm test`: the minimum (8 x 25 pushes) to distinct branches on the local store, with
 * shorter same-branch and S3 runs (`reduced`) to keep the suite within its time budget;
 * `npm run test:reliability`: 16 x 50 everywhere.
 */
export function concurrencySize(reduced = false): ConcurrencySize {
  if (process.env.KMSCRYPT_RELIABILITY_FULL) return { workers: 16, pushesPerWorker: 50, sameBranchPushesPerWorker: 50 };
  return reduced ? { workers: 4, pushesPerWorker: 5, sameBranchPushesPerWorker: 4 } : { workers: 8, pushesPerWorker: 25, sameBranchPushesPerWorker: 8 };
}

export interface PushTally {
  attempted: number;
  landed: number;
  rejected: number;
  lost: number;
}

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
export function concurrencyScenarios(t: Test, backend: ScenarioBackend, report?: (name: string, tally: PushTally) => void, size = concurrencySize()): void {
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

  t.test(`${workers} processes x ${pushesPerWorker} pushes to distinct branches: every push lands`, async (tt) => {
    const { sb, store, clones } = await setup(tt);
    const results = await Promise.all(
      clones.map((dir, w) => {
        const log = sb.path(`landed-${w}`);
        writeFileSync(log, '');
        const script = `set -u
for i in $(seq 1 ${pushesPerWorker}); do
  echo "w${w} $i" > file-${w}.txt && git add file-${w}.txt && git commit -q -m "worker ${w} push $i"
  if git push -q origin HEAD:refs/heads/worker-${w}; then git rev-parse HEAD >> ${log}; else echo FAILED >> ${log}; fi
done`;
        return runScript(sb, script, dir).then(() => sb.run('cat', [log]).stdout.split('\n').filter(Boolean));
      }),
    );
    const tally: PushTally = { attempted: workers * pushesPerWorker, landed: 0, rejected: 0, lost: 0 };
    const mirror = sb.path('check.git');
    sb.run('git', ['clone', '-q', '--mirror', store.url, mirror]);
    results.forEach((lines, w) => {
      tally.landed += lines.filter((l) => l !== 'FAILED').length;
      tally.rejected += lines.filter((l) => l === 'FAILED').length;
      const last = lines.filter((l) => l !== 'FAILED').pop();
      tt.equal(sb.git(mirror, 'rev-parse', `refs/heads/worker-${w}`).trim(), last, `worker ${w}'s branch holds its last push`);
    });
    tt.equal(tally.landed, tally.attempted, 'every push to a distinct branch landed');
    sb.git(mirror, 'fsck', '--strict', '--no-dangling');
    report?.('distinct branches', tally);
  });

  t.test(`${workers} processes x ${sameBranchPushesPerWorker} pushes to one branch: each lands or is rejected, none is lost`, async (tt) => {
    const { sb, store, clones } = await setup(tt);
    const results = await Promise.all(
      clones.map((dir, w) => {
        const log = sb.path(`one-${w}`);
        writeFileSync(log, '');
        const script = `set -u
for i in $(seq 1 ${sameBranchPushesPerWorker}); do
  git fetch -q origin && git reset -q --hard origin/main
  echo "w${w} $i" > file-${w}.txt && git add file-${w}.txt && git commit -q -m "worker ${w} attempt $i"
  if git push origin HEAD:main 2> err-$i; then echo "LANDED $(git rev-parse HEAD)" >> ${log};
  elif grep -q -e 'fetch first' -e 'non-fast-forward' -e 'rejected' err-$i; then echo REJECTED >> ${log};
  else echo "ERROR $(tr '\\n' ' ' < err-$i)" >> ${log}; fi
done`;
        return runScript(sb, script, dir).then(() => sb.run('cat', [log]).stdout.split('\n').filter(Boolean));
      }),
    );
    const lines = results.flat();
    const landed = lines.filter((l) => l.startsWith('LANDED ')).map((l) => l.slice(7));
    const errors = lines.filter((l) => l.startsWith('ERROR'));
    tt.same(errors, [], 'no push failed other than by git rejecting it as stale');
    const mirror = sb.path('check.git');
    sb.run('git', ['clone', '-q', '--mirror', store.url, mirror]);
    const history = new Set(sb.git(mirror, 'rev-list', 'refs/heads/main').split('\n').filter(Boolean));
    const lost = landed.filter((c) => !history.has(c));
    tt.same(lost, [], 'every landed commit is in the history of main');
    tt.ok(landed.length >= sameBranchPushesPerWorker, `pushes landed (${landed.length}) while others were rejected`);
    sb.git(mirror, 'fsck', '--strict', '--no-dangling');
    report?.('one branch', { attempted: lines.length, landed: landed.length, rejected: lines.filter((l) => l === 'REJECTED').length, lost: lost.length });
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
  });
}
