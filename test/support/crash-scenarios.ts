import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import type { KillPoint } from '../../src/remote/kill-point';
import type { ScenarioBackend } from './git-scenarios';
import { seededRandom } from './fault-proxy';
import { type RunResult, Sandbox, writeUncoveredShim } from './sandbox';

export interface CrashSize {
  /** Pushes killed, of which one in `groupSize` is the push that creates the repository. */
  pushKills: number;
  /** Fetches and clones killed (one in four is a clone). */
  fetchKills: number;
  /** Push kills per store: a fresh store every group keeps the verifying clones small. */
  groupSize: number;
}

/**
 * `npm test`: 10 push and 10 fetch/clone kills on the local store (one in each tenth of the span),
 * 4 + 4 over S3 (`reduced`), besides a kill at each kill point; that keeps the suite within its
 * 15-minute budget on 2 cores. `npm run test:reliability`: 100 + 100 per backend.
 */
export function crashSize(reduced = false): CrashSize {
  if (process.env.KMSCRYPT_RELIABILITY_FULL) return { pushKills: 100, fetchKills: 100, groupSize: 5 };
  return reduced ? { pushKills: 4, fetchKills: 4, groupSize: 2 } : { pushKills: 10, fetchKills: 10, groupSize: 5 };
}

/** Counts, plus `decile<N>` (kills in the Nth tenth of the helper's expected lifetime) and `phase:<what it ran>`. */
export interface CrashTally extends Record<string, number> {
  /** SIGKILLs delivered to a live helper. */
  killed: number;
  /** Kills after which every check passed: remote readable and fsck-clean, next operation ok, local repository connected. */
  survived: number;
  /** Kill timers that fired after the helper had already ended (the run then completed normally; not counted as kills). */
  missed: number;
  /** Killed pushes whose manifest had been published before the kill (git reported a failure, the remote has the push). */
  killedPushLanded: number;
  killedPushNotLanded: number;
  /** Killed fetches after which the remote-tracking ref had already moved (to the complete new value). */
  killedFetchUpdated: number;
  /** Temporary directories (kmscrypt-push-*) left in TMPDIR by killed helpers. */
  leakedTempDirs: number;
  /** pack-*.keep files left in a local repository by a killed fetch (git removes them only after the helper answers). */
  leftoverKeepFiles: number;
}

/**
 * Runs git with the helper behind a wrapper that records its PID (the wrapper `exec`s node, so
 * the PID is the helper's), and optionally SIGKILLs it `killAfterMs` after it started.
 */
class HelperRunner {
  readonly wrapDir: string;
  private counter = 0;

  constructor(private readonly sb: Sandbox) {
    this.wrapDir = sb.path('wrap');
    mkdirSync(this.wrapDir, { recursive: true });
    // The PID and the helper's start (epoch ns): kill times and lifetimes are measured from the
    // helper's own start, however late this process's event loop notices it.
    writeUncoveredShim(join(this.wrapDir, 'git-remote-kmscrypt'), 'git-remote-kmscrypt', 'if [ -n "$CRASH_PID_FILE" ]; then echo "$$ $(date +%s%N)" >> "$CRASH_PID_FILE"; fi\n');
  }

  run(cwd: string, args: string[], killAfterMs?: number, env: NodeJS.ProcessEnv = {}): Promise<ObservedRun> {
    const pidFile = this.sb.path(`.helper-pids-${this.counter++}`);
    writeFileSync(pidFile, '');
    return new Promise((resolve, reject) => {
      const child = spawn('git', args, {
        cwd,
        env: { ...this.sb.env, ...env, PATH: `${this.wrapDir}:${this.sb.env.PATH}`, CRASH_PID_FILE: pidFile },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      let pid: number | undefined;
      let started = 0;
      let ended: number | undefined;
      let killed = false;
      let killAtMs: number | undefined;
      let childrenAtKill: Array<{ pid: number; name: string }> = [];
      let killTimer: NodeJS.Timeout | undefined;
      const kill = () => {
        if (pid === undefined || !isAlive(pid)) return;
        childrenAtKill = childrenOf(pid);
        try {
          process.kill(pid, 'SIGKILL');
          killed = true;
          killAtMs = Date.now() - started;
        } catch {
          // It ended between the check and the kill: a miss.
        }
      };
      const poll = setInterval(() => {
        if (pid === undefined) {
          const m = /^(\d+) (\d+)$/m.exec(readFileSync(pidFile, 'utf8'));
          if (!m) return;
          pid = Number(m[1]);
          started = Number(BigInt(m[2]) / 1_000_000n);
          if (killAfterMs !== undefined) killTimer = setTimeout(kill, Math.max(0, started + killAfterMs - Date.now()));
        } else if (ended === undefined && !isAlive(pid)) {
          ended = Date.now();
        }
      }, 2);
      const onClose = async (code: number | null, signal: NodeJS.Signals | null): Promise<void> => {
        clearInterval(poll);
        if (killTimer) clearTimeout(killTimer);
        if (pid !== undefined && ended === undefined) ended = Date.now();
        rmSync(pidFile, { force: true });
        const indexPacks = childrenAtKill.filter((c) => c.name === 'git index-pack').map((c) => c.pid);
        // Checked as git ends, when it removes a failed clone: an index-pack that has read the whole
        // pack would otherwise go on writing into it for as long as it resolves deltas. A SIGKILL
        // takes effect when the process next runs (or leaves an uninterruptible write), so a
        // loaded machine gets up to 1 s before the process counts as alive.
        for (let i = 0; i < 100 && indexPacks.some(isAlive); i++) await new Promise((r) => setTimeout(r, 10));
        resolve({
          status: code ?? 128,
          signal,
          stdout,
          stderr,
          helperStarted: pid !== undefined,
          killed,
          killAtMs,
          childrenAtKill: childrenAtKill.map((c) => c.name),
          indexPackOutlivedHelper: indexPacks.some(isAlive),
          lifetimeMs: pid !== undefined && ended !== undefined ? ended - started : undefined,
        });
      };
      child.on('close', (code, signal) => void onClose(code, signal).catch(reject));
    });
  }
}

export interface ObservedRun extends RunResult {
  signal: NodeJS.Signals | null;
  helperStarted: boolean;
  killed: boolean;
  killAtMs?: number;
  childrenAtKill: string[];
  /** A `git index-pack` the killed helper had started was still running after git ended. */
  indexPackOutlivedHelper: boolean;
  /** From the helper's start to its end (its kill, when killed). */
  lifetimeMs?: number;
}

function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** PIDs and command lines (first two words) of a process's children, from /proc. */
function childrenOf(pid: number): Array<{ pid: number; name: string }> {
  const out: Array<{ pid: number; name: string }> = [];
  const cmdline = (id: number | string) => readFileSync(`/proc/${id}/cmdline`, 'utf8');
  try {
    const own = cmdline(pid);
    for (const task of readdirSync(`/proc/${pid}/task`)) {
      const ids = readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim().split(/\s+/).filter(Boolean);
      for (const id of ids) {
        try {
          const text = cmdline(id);
          // Forked but not yet exec'd: it still has the helper's command line.
          const name = text === own ? '(a child being spawned)' : text.split('\0').filter(Boolean).slice(0, 2).map((a) => a.replace(/^.*\//, '')).join(' ');
          out.push({ pid: Number(id), name });
        } catch {
          // gone already
        }
      }
    }
  } catch {
    // the helper is gone, or /proc lacks children files
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * How long an operation's helper lives, per kind of operation: the shortest of the last few
 * full (unkilled) runs, so that on a machine whose load varies few kill timers fire too late.
 */
class Durations {
  private readonly values = new Map<string, number[]>();

  get(kind: string): number | undefined {
    const v = this.values.get(kind);
    return v?.length ? Math.min(...v) : undefined;
  }

  observe(kind: string, ms: number | undefined): void {
    if (ms === undefined || ms <= 0) return;
    const v = this.values.get(kind) ?? [];
    v.push(ms);
    this.values.set(kind, v.slice(-3));
  }
}

/**
 * Delays spread evenly over [0, SPAN) of an operation's expected duration (one per stratum), in a
 * seeded random order. Kill timers run late on a loaded machine, so the last strata still reach
 * the operation's end; fewer fire after the helper is gone.
 */
const SPAN = 0.92;
function spreadFractions(n: number, random: () => number): number[] {
  const fractions = Array.from({ length: n }, (_, i) => ((i + random()) / n) * SPAN);
  for (let i = fractions.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [fractions[i], fractions[j]] = [fractions[j], fractions[i]];
  }
  return fractions;
}

function emptyTally(): CrashTally {
  return { killed: 0, survived: 0, missed: 0, killedPushLanded: 0, killedPushNotLanded: 0, killedFetchUpdated: 0, leakedTempDirs: 0, leftoverKeepFiles: 0 };
}

function noteKill(tally: CrashTally, run: ObservedRun, estimateMs: number): void {
  tally.killed++;
  const decile = Math.max(0, Math.min(9, Math.floor(((run.killAtMs ?? 0) / Math.max(1, estimateMs)) * 10)));
  tally[`decile${decile}`] = (tally[`decile${decile}`] ?? 0) + 1;
  const phase = run.childrenAtKill.length ? `child:${[...new Set(run.childrenAtKill)].join('+')}` : 'no child';
  tally[`phase:${phase}`] = (tally[`phase:${phase}`] ?? 0) + 1;
}

/** Writes `count` text files and a random blob and commits them: a push big enough to have phases. */
function writeBatch(sb: Sandbox, repo: string, round: number, files: number, blobBytes: number, extraBlobBytes = 0): string {
  for (let i = 0; i < files; i++) {
    const dir = join(repo, `dir${i % 16}`);
    mkdirSync(dir, { recursive: true });
    const lines = Array.from({ length: 20 }, (_, l) => `file ${i} round ${round} line ${l} ${(i * 7919 + round * 104729 + l) % 1000003}`);
    writeFileSync(join(dir, `file-${i}.txt`), lines.join('\n') + '\n');
  }
  writeFileSync(join(repo, 'blob.bin'), randomBytes(blobBytes));
  if (extraBlobBytes) writeFileSync(join(repo, 'large.bin'), randomBytes(extraBlobBytes));
  sb.git(repo, 'add', '-A');
  sb.git(repo, 'commit', '-q', '-m', `round ${round}`);
  return sb.git(repo, 'rev-parse', 'HEAD').trim();
}

/** Runs a command that must succeed; records a failed assertion (and returns undefined) otherwise. */
function must(tt: Test, ok: { value: boolean }, label: string, fn: () => RunResult | string): string | undefined {
  try {
    const r = fn();
    return typeof r === 'string' ? r : r.stdout;
  } catch (err) {
    ok.value = false;
    tt.fail(label, { error: err instanceof Error ? err.message : String(err) });
    return undefined;
  }
}

function check(tt: Test, ok: { value: boolean }, cond: boolean, label: string, extra?: object): void {
  if (!cond) ok.value = false;
  tt.ok(cond, label, extra ?? {});
}

function keepFiles(gitDir: string): number {
  try {
    return readdirSync(join(gitDir, 'objects', 'pack')).filter((f) => f.endsWith('.keep')).length;
  } catch {
    return 0;
  }
}

function leakedTempDirs(tmp: string): number {
  try {
    return readdirSync(tmp).filter((f) => f.startsWith('kmscrypt-')).length;
  } catch {
    return 0;
  }
}

/**
 * The helper killed with SIGKILL at points spread over whole pushes and fetches (and clones).
 * After every kill: the remote is readable (a fresh mirror clone passes fsck --strict, so its
 * refs point only to complete objects), the killed push either landed whole or not at all, the
 * next push or fetch from the same repository succeeds, and the local repository never has a
 * ref to an object it lacks (fsck --connectivity-only; remote-tracking refs old or new).
 */
export function crashScenarios(t: Test, backend: ScenarioBackend, label: string, report?: (name: string, tally: CrashTally) => void, size = crashSize()): void {
  const seed = Number(process.env.KMSCRYPT_CRASH_SEED ?? 0x5eed) >>> 0;
  // The two scenarios use separate sandboxes and stores: run them side by side.
  t.jobs = 2;

  const makeSandbox = (tt: Test) => {
    const sb = new Sandbox(tt, backend.env).withoutCoverage();
    // The helpers' temporary files go here, so that what killed helpers leave can be counted.
    const tmp = sb.path('tmp');
    mkdirSync(tmp, { recursive: true });
    sb.env.TMPDIR = tmp;
    return { sb, tmp, runner: new HelperRunner(sb) };
  };

  t.test(`${label}: ${size.pushKills} pushes killed at points spread over the push`, async (tt) => {
    const { sb, tmp, runner } = makeSandbox(tt);
    const random = seededRandom(seed);
    const durations = new Durations();
    const tally = emptyTally();
    const fractions = spreadFractions(size.pushKills, random);
    const groups = Math.ceil(size.pushKills / size.groupSize);
    const FILES = 300;
    // Most pushes hold a 2 MiB blob (AES-GCM records); every fourth a 7 MiB one (the CBC + HMAC path).
    const blobFor = (round: number) => (round % 4 === 3 ? 7 << 20 : 2 << 20);
    let next = 0;
    let round = 0;
    // After a kill timer fired too late, the same stratum is tried earlier (the machine got faster).
    let lateScale = 1;
    // Kill timers that keep firing too late must not loop forever.
    let budget = size.pushKills * 4;

    for (let g = 0; g < groups * 2 && tally.killed < size.pushKills; g++) {
      const store = await backend.newStore(sb, `store-${g}`);
      const src = sb.repo(`src-${g}`);
      sb.git(src, 'remote', 'add', 'origin', store.url);
      let published: string | null = null;

      // The first push of each group creates the repository; its duration is measured once on a
      // throw-away store, then one push in each group is killed while it creates the store.
      const head0 = writeBatch(sb, src, round++, FILES, 1 << 20);
      if (durations.get('create') === undefined) {
        const probe = await backend.newStore(sb, `probe-${g}`);
        const measured = await runner.run(src, ['push', '-q', probe.url, 'main']);
        tt.equal(measured.status, 0, 'an unkilled push that creates a repository succeeds', { stderr: measured.stderr });
        durations.observe('create', measured.lifetimeMs);
      }
      for (let attempt = 0; attempt < 3 && published === null; attempt++) {
        const fraction = fractions[next % fractions.length] * lateScale;
        const estimate = durations.get('create')!;
        const run = await runner.run(src, ['push', 'origin', 'main'], fraction * estimate);
        const ok = { value: true };
        if (!run.killed) {
          tally.missed++;
          lateScale *= 0.8;
          durations.observe('create', run.lifetimeMs);
          check(tt, ok, run.status === 0, 'a push whose kill came too late completed normally', { stderr: run.stderr });
          published = head0;
          continue;
        }
        next++;
        lateScale = 1;
        noteKill(tally, run, estimate);
        tt.comment(`create kill at ${Math.round(run.killAtMs!)} of ~${Math.round(estimate)} ms (git exit ${run.status}, helper running ${run.childrenAtKill.join(', ') || 'no child'})`);
        // The store holds no repository, an empty one, or the whole push; a fresh mirror clone says which.
        const mirror = sb.path(`m-create-${g}`);
        const cloned = spawnSync('git', ['clone', '-q', '--mirror', store.url, mirror], { cwd: sb.root, env: sb.env, encoding: 'utf8' });
        if (cloned.status !== 0) {
          check(tt, ok, /fatal: kmscrypt: no kmscrypt repository at/.test(cloned.stderr ?? ''), 'a killed first push left no repository, or a readable one', { stderr: cloned.stderr });
          check(tt, ok, run.status !== 0, 'a killed push that left no repository was reported as failed');
          tally.killedPushNotLanded++;
        } else {
          must(tt, ok, 'the mirror passes git fsck --strict', () => sb.git(mirror, 'fsck', '--strict', '--no-dangling'));
          const main = revParse(sb, mirror, 'refs/heads/main');
          check(tt, ok, main === '' || main === head0, 'the remote has no branch or exactly the pushed commit', { main });
          if (run.status === 0) check(tt, ok, main === head0, 'a killed push that git reported as done has landed');
          if (main) tally.killedPushLanded++;
          else tally.killedPushNotLanded++;
        }
        rmSync(mirror, { recursive: true, force: true });
        must(tt, ok, 'the local repository stays connected', () => sb.git(src, 'fsck', '--connectivity-only', '--no-dangling'));
        const again = await runner.run(src, ['push', '-q', 'origin', 'main']);
        check(tt, ok, again.status === 0, 'the next push after a killed first push succeeds', { stderr: again.stderr });
        check(tt, ok, revParse(sb, src, 'refs/remotes/origin/main') === head0, 'after the next push the remote has the commit');
        if (ok.value) tally.survived++;
        published = head0;
      }

      for (let k = 1; k < size.groupSize && tally.killed < size.pushKills && budget-- > 0; k++) {
        const blob = blobFor(round);
        const head = writeBatch(sb, src, round++, FILES, blob);
        const kind = `push-${blob}`;
        if (durations.get(kind) === undefined) {
          // The first push of each size is not killed: it measures how long such a push lives.
          const measured = await runner.run(src, ['push', '-q', 'origin', 'main']);
          tt.equal(measured.status, 0, `an unkilled push (${blob >> 20} MiB blob, ${FILES} files) succeeds`, { stderr: measured.stderr });
          durations.observe(kind, measured.lifetimeMs);
          published = head;
          k--;
          continue;
        }
        const fraction = fractions[next % fractions.length] * lateScale;
        const estimate = durations.get(kind)!;
        const run = await runner.run(src, ['push', 'origin', 'main'], fraction * estimate);
        const ok = { value: true };
        if (!run.killed) {
          tally.missed++;
          lateScale *= 0.8;
          durations.observe(kind, run.lifetimeMs);
          check(tt, ok, run.status === 0, 'a push whose kill came too late completed normally', { stderr: run.stderr });
          published = head;
          k--;
          continue;
        }
        next++;
        lateScale = 1;
        noteKill(tally, run, estimate);
        tt.comment(`push kill at ${Math.round(run.killAtMs!)} of ~${Math.round(estimate)} ms (git exit ${run.status}, helper running ${run.childrenAtKill.join(', ') || 'no child'})`);
        const remote = verifyMirror(tt, ok, sb, store.url, `m-${g}-${k}`, undefined);
        check(tt, ok, remote === published || remote === head, 'the remote branch is the old value or the killed push, whole', { remote, published, head });
        if (run.status === 0) check(tt, ok, remote === head, 'a killed push that git reported as done has landed', { stderr: run.stderr });
        if (remote === head) tally.killedPushLanded++;
        else tally.killedPushNotLanded++;
        must(tt, ok, 'the local repository stays connected', () => sb.git(src, 'fsck', '--connectivity-only', '--no-dangling'));
        const tracking = revParse(sb, src, 'refs/remotes/origin/main');
        check(tt, ok, tracking === published || tracking === head, 'the remote-tracking ref is the old or the new value', { tracking });
        const again = await runner.run(src, ['push', '-q', 'origin', 'main']);
        check(tt, ok, again.status === 0, 'the next push from the same repository succeeds', { stderr: again.stderr });
        if (remote !== head) durations.observe(kind, again.lifetimeMs);
        // git moves the remote-tracking ref only when the helper answered `ok` for it; the next
        // kill's mirror clone then checks that the remote really has it.
        check(tt, ok, revParse(sb, src, 'refs/remotes/origin/main') === head, 'after the next push the remote has the new commit');
        if (ok.value) tally.survived++;
        published = head;
      }
      // The store after the group: everything pushed is there, complete.
      const final = { value: true };
      verifyMirror(tt, final, sb, store.url, `m-final-${g}`, published!, src);
      tally.leakedTempDirs = leakedTempDirs(tmp);
    }
    tt.ok(tally.killed >= size.pushKills, `${tally.killed} pushes killed (wanted ${size.pushKills})`);
    tt.equal(tally.survived, tally.killed, `every killed push was survived (${tally.survived}/${tally.killed})`);
    tt.comment(`${label} push kills: ${JSON.stringify(tally)}`);
    report?.(`${label} push kills`, tally);
  });

  t.test(`${label}: ${size.fetchKills} fetches and clones killed at points spread over the transfer`, async (tt) => {
    const { sb, tmp, runner } = makeSandbox(tt);
    const random = seededRandom(seed ^ 0x9e3779b9);
    const durations = new Durations();
    const tally = emptyTally();
    const store = await backend.newStore(sb, 'store');
    const src = sb.repo('src');
    sb.git(src, 'remote', 'add', 'origin', store.url);
    const old = writeBatch(sb, src, 0, 20, 64 << 10);
    sb.git(src, 'push', '-q', 'origin', 'main');
    const base = sb.path('fetch-base');
    sb.run('git', ['clone', '-q', store.url, base]);
    // Two pushes the base clone lacks: 300 files and a 1 MiB blob, then 300 files and a 7 MiB
    // blob (a CBC record verified before its first byte reaches git): two containers to read.
    writeBatch(sb, src, 1, 300, 1 << 20);
    sb.git(src, 'push', '-q', 'origin', 'main');
    const head = writeBatch(sb, src, 2, 300, 1 << 20, 7 << 20);
    sb.git(src, 'push', '-q', 'origin', 'main');

    for (const kind of ['fetch', 'clone'] as const) {
      for (let i = 0; i < 2; i++) {
        const dir = sb.path(`measure-${kind}-${i}`);
        if (kind === 'fetch') cpSync(base, dir, { recursive: true });
        const r = kind === 'fetch' ? await runner.run(dir, ['fetch', '-q', 'origin']) : await runner.run(sb.root, ['clone', '-q', store.url, dir]);
        tt.equal(r.status, 0, `an unkilled ${kind} succeeds`, { stderr: r.stderr });
        durations.observe(kind, r.lifetimeMs);
        rmSync(dir, { recursive: true, force: true });
      }
    }

    const fractions = spreadFractions(size.fetchKills, random);
    let attempts = 0;
    let lateScale = 1;
    for (let j = 0; tally.killed < size.fetchKills && attempts < size.fetchKills * 3; attempts++) {
      const kind = j % 4 === 3 ? 'clone' : 'fetch';
      const estimate = durations.get(kind)!;
      const fraction = fractions[j % fractions.length] * lateScale;
      const dir = sb.path(`${kind}-${attempts}`);
      const ok = { value: true };
      if (kind === 'fetch') {
        cpSync(base, dir, { recursive: true });
        const run = await runner.run(dir, ['fetch', 'origin'], fraction * estimate);
        if (!run.killed) {
          tally.missed++;
          lateScale *= 0.8;
          durations.observe(kind, run.lifetimeMs);
          tt.equal(run.status, 0, 'a fetch whose kill came too late completed normally', { stderr: run.stderr });
          rmSync(dir, { recursive: true, force: true });
          continue;
        }
        j++;
        lateScale = 1;
        noteKill(tally, run, estimate);
        tt.comment(`fetch kill at ${Math.round(run.killAtMs!)} of ~${Math.round(estimate)} ms (git exit ${run.status}, helper running ${run.childrenAtKill.join(', ') || 'no child'})`);
        check(tt, ok, !run.indexPackOutlivedHelper, 'no git index-pack outlives the killed helper (it would write into the repository after git gave up)');
        must(tt, ok, 'after a killed fetch, no local ref points to a missing object', () => sb.git(dir, 'fsck', '--connectivity-only', '--no-dangling'));
        const tracking = revParse(sb, dir, 'refs/remotes/origin/main');
        check(tt, ok, tracking === old || tracking === head, 'the remote-tracking ref is the old or the new value', { tracking });
        if (tracking === head) tally.killedFetchUpdated++;
        if (run.status === 0) check(tt, ok, tracking === head, 'a killed fetch that git reported as done has updated the ref', { stderr: run.stderr });
        tally.leftoverKeepFiles += keepFiles(join(dir, '.git'));
        const again = await runner.run(dir, ['fetch', '-q', 'origin']);
        check(tt, ok, again.status === 0, 'the next fetch succeeds', { stderr: again.stderr });
        check(tt, ok, revParse(sb, dir, 'refs/remotes/origin/main') === head, 'the next fetch brings the new value');
        must(tt, ok, 'the repository is connected after the next fetch', () => sb.git(dir, 'fsck', '--connectivity-only', '--no-dangling'));
      } else {
        const run = await runner.run(sb.root, ['clone', store.url, dir], fraction * estimate);
        if (!run.killed) {
          tally.missed++;
          lateScale *= 0.8;
          durations.observe(kind, run.lifetimeMs);
          tt.equal(run.status, 0, 'a clone whose kill came too late completed normally', { stderr: run.stderr });
          rmSync(dir, { recursive: true, force: true });
          continue;
        }
        j++;
        lateScale = 1;
        noteKill(tally, run, estimate);
        tt.comment(`clone kill at ${Math.round(run.killAtMs!)} of ~${Math.round(estimate)} ms (git exit ${run.status}, helper running ${run.childrenAtKill.join(', ') || 'no child'})`);
        check(tt, ok, !run.indexPackOutlivedHelper, 'no git index-pack outlives the killed helper (it would write into the repository after git gave up)');
        if (run.status === 0) {
          check(tt, ok, revParse(sb, dir, 'HEAD') === head, 'a killed clone that git reported as done checked out the newest commit', { stderr: run.stderr });
        }
        if (existsSync(dir)) {
          // git removes a failed clone's directory; should one remain, it must still be consistent.
          must(tt, ok, 'a directory left by a killed clone is connected', () => sb.git(dir, 'fsck', '--connectivity-only', '--no-dangling'));
        } else {
          tt.pass('git removed the killed clone');
        }
        rmSync(dir, { recursive: true, force: true });
        const again = await runner.run(sb.root, ['clone', '-q', store.url, dir]);
        check(tt, ok, again.status === 0, 'the next clone succeeds', { stderr: again.stderr });
        if (again.status === 0) {
          check(tt, ok, sb.git(dir, 'rev-parse', 'HEAD').trim() === head, 'the next clone checks out the newest commit');
          must(tt, ok, 'the new clone is connected', () => sb.git(dir, 'fsck', '--connectivity-only', '--no-dangling'));
        }
      }
      // Readers never write to the store: it still answers (the next operation above read it whole).
      if (ok.value) tally.survived++;
      rmSync(dir, { recursive: true, force: true });
    }
    const final = { value: true };
    verifyMirror(tt, final, sb, store.url, 'final-mirror', head, src);
    tally.leakedTempDirs = leakedTempDirs(tmp);
    tt.ok(tally.killed >= size.fetchKills, `${tally.killed} fetches and clones killed (wanted ${size.fetchKills})`);
    tt.equal(tally.survived, tally.killed, `every killed fetch or clone was survived (${tally.survived}/${tally.killed})`);
    tt.comment(`${label} fetch/clone kills: ${JSON.stringify(tally)}`);
    report?.(`${label} fetch/clone kills`, tally);
  });
}

/** A push's kill points in the order it reaches them; from push-published on, the push has landed. */
const PUSH_KILL_POINTS: KillPoint[] = ['push-start', 'push-packed', 'push-sealing', 'push-uploaded', 'push-published', 'push-recorded'];
const LANDED_FROM = PUSH_KILL_POINTS.indexOf('push-published');
/** A fetch's (and a clone's) kill points in order: the last two come after git has stored the pack. */
const FETCH_KILL_POINTS: KillPoint[] = ['fetch-start', 'fetch-indexes', 'fetch-streaming', 'fetch-large-verified', 'fetch-indexed', 'fetch-recorded'];

/**
 * The helper killed at each of its kill points (src/remote/kill-point.ts: it SIGKILLs itself
 * there), so that every phase of a first push, a push, a fetch and a clone takes a kill, the
 * moments after publication included, whatever the machine's speed. The checks are those of the
 * timed kills, and stricter where the point tells: a push killed before publication left the old
 * value, one killed after it the new one; git, which never heard back, moved no ref.
 */
export function killPointScenarios(t: Test, backend: ScenarioBackend, label: string, report?: (name: string, tally: CrashTally) => void): void {
  const makeRunner = (tt: Test) => {
    const sb = new Sandbox(tt, backend.env).withoutCoverage();
    return { sb, runner: new HelperRunner(sb) };
  };
  const at = (point: KillPoint) => ({ KMSCRYPT_TEST_KILL_POINT: point });
  const killedAt = (tt: Test, ok: { value: boolean }, run: ObservedRun, point: KillPoint) => {
    check(tt, ok, run.stderr.includes(`kmscrypt: test kill point ${point}\n`) && run.status !== 0, `${point}: the helper was killed there and git reported a failure`, { stderr: run.stderr });
  };

  t.test(`${label}: a first push and a push killed at each of their ${PUSH_KILL_POINTS.length + 1} kill points`, async (tt) => {
    const { sb, runner } = makeRunner(tt);
    const tally = emptyTally();
    const reached = new Set<string>();

    // The first push killed right after it created the repository's descriptor.
    const fresh = await backend.newStore(sb, 'fresh');
    const first = sb.repo('first');
    const firstHead = writeBatch(sb, first, 0, 20, 64 << 10);
    const ok0 = { value: true };
    const created = await runner.run(first, ['push', fresh.url, 'main'], undefined, at('create-descriptor'));
    killedAt(tt, ok0, created, 'create-descriptor');
    check(tt, ok0, verifyMirror(tt, ok0, sb, fresh.url, 'm-create', undefined) === undefined && ok0.value, 'the store holds an empty repository a mirror clone reads');
    const again0 = await runner.run(first, ['push', '-q', fresh.url, 'main']);
    check(tt, ok0, again0.status === 0, 'the next push fills it', { stderr: again0.stderr });
    verifyMirror(tt, ok0, sb, fresh.url, 'm-create-after', firstHead);
    tally.killed++;
    if (ok0.value) tally.survived++;
    reached.add('create-descriptor');

    const store = await backend.newStore(sb, 'store');
    const src = sb.repo('src');
    sb.git(src, 'remote', 'add', 'origin', store.url);
    let published = writeBatch(sb, src, 0, 20, 64 << 10);
    sb.git(src, 'push', '-q', 'origin', 'main');
    for (const [i, point] of PUSH_KILL_POINTS.entries()) {
      const ok = { value: true };
      // 300 files and a 7 MiB blob: segments and a CBC record, so that push-sealing falls mid-container.
      const head = writeBatch(sb, src, i + 1, 300, 1 << 20, 7 << 20);
      const run = await runner.run(src, ['push', 'origin', 'main'], undefined, at(point));
      killedAt(tt, ok, run, point);
      const landed = i >= LANDED_FROM;
      const remote = verifyMirror(tt, ok, sb, store.url, `m-${point}`, landed ? head : published);
      if (landed) tally.killedPushLanded++;
      else tally.killedPushNotLanded++;
      check(tt, ok, remote === (landed ? head : published), `${point}: the remote has ${landed ? 'the whole new push' : 'the old value'}`, { remote });
      must(tt, ok, `${point}: the local repository stays connected`, () => sb.git(src, 'fsck', '--connectivity-only', '--no-dangling'));
      check(tt, ok, revParse(sb, src, 'refs/remotes/origin/main') === published, `${point}: git, never told, left the remote-tracking ref alone`);
      const again = await runner.run(src, ['push', '-q', 'origin', 'main']);
      check(tt, ok, again.status === 0, `${point}: the next push succeeds`, { stderr: again.stderr });
      check(tt, ok, revParse(sb, src, 'refs/remotes/origin/main') === head, `${point}: after the next push the remote-tracking ref has the new commit`);
      verifyMirror(tt, ok, sb, store.url, `m-${point}-after`, head, src);
      published = head;
      tally.killed++;
      if (ok.value) tally.survived++;
      reached.add(point);
    }
    tt.same([...reached], ['create-descriptor', ...PUSH_KILL_POINTS], 'a kill at every kill point of a push');
    tt.equal(tally.survived, tally.killed, `every kill was survived (${tally.survived}/${tally.killed})`);
    report?.(`${label} push kill points`, tally);
  });

  t.test(`${label}: a fetch and a clone killed at each of their ${FETCH_KILL_POINTS.length} kill points`, async (tt) => {
    const { sb, runner } = makeRunner(tt);
    const tally = emptyTally();
    const reached = new Set<string>();
    const store = await backend.newStore(sb, 'store');
    const src = sb.repo('src');
    sb.git(src, 'remote', 'add', 'origin', store.url);
    const old = writeBatch(sb, src, 0, 20, 64 << 10);
    sb.git(src, 'push', '-q', 'origin', 'main');
    const base = sb.path('fetch-base');
    sb.run('git', ['clone', '-q', store.url, base]);
    writeBatch(sb, src, 1, 300, 1 << 20);
    sb.git(src, 'push', '-q', 'origin', 'main');
    // A 17 MiB object: its CBC record is over 16 MiB, so it is streamed and verified on its own (fetch-large-verified).
    const head = writeBatch(sb, src, 2, 300, 1 << 20, 17 << 20);
    sb.git(src, 'push', '-q', 'origin', 'main');

    for (const point of FETCH_KILL_POINTS) {
      const ok = { value: true };
      const dir = sb.path(`fetch-${point}`);
      cpSync(base, dir, { recursive: true });
      const run = await runner.run(dir, ['fetch', 'origin'], undefined, at(point));
      killedAt(tt, ok, run, point);
      must(tt, ok, `${point}: after a killed fetch, no local ref points to a missing object`, () => sb.git(dir, 'fsck', '--connectivity-only', '--no-dangling'));
      check(tt, ok, revParse(sb, dir, 'refs/remotes/origin/main') === old, `${point}: git, never told, left the remote-tracking ref alone`);
      const again = await runner.run(dir, ['fetch', '-q', 'origin']);
      check(tt, ok, again.status === 0, `${point}: the next fetch succeeds`, { stderr: again.stderr });
      check(tt, ok, revParse(sb, dir, 'refs/remotes/origin/main') === head, `${point}: and brings the new value`);
      must(tt, ok, `${point}: the repository is connected after the next fetch`, () => sb.git(dir, 'fsck', '--connectivity-only', '--no-dangling'));
      rmSync(dir, { recursive: true, force: true });

      const clone = sb.path(`clone-${point}`);
      const killedClone = await runner.run(sb.root, ['clone', store.url, clone], undefined, at(point));
      killedAt(tt, ok, killedClone, point);
      if (existsSync(clone)) must(tt, ok, `${point}: a directory left by a killed clone is connected`, () => sb.git(clone, 'fsck', '--connectivity-only', '--no-dangling'));
      rmSync(clone, { recursive: true, force: true });
      const cloned = await runner.run(sb.root, ['clone', '-q', store.url, clone]);
      check(tt, ok, cloned.status === 0 && revParse(sb, clone, 'HEAD') === head, `${point}: the next clone succeeds with the newest commit`, { stderr: cloned.stderr });
      rmSync(clone, { recursive: true, force: true });
      tally.killed += 2;
      if (ok.value) tally.survived += 2;
      reached.add(point);
    }
    tt.same([...reached], FETCH_KILL_POINTS, 'a fetch and a clone killed at every kill point');
    verifyMirror(tt, { value: true }, sb, store.url, 'final-mirror', head, src);
    tt.equal(tally.survived, tally.killed, `every kill was survived (${tally.survived}/${tally.killed})`);
    report?.(`${label} fetch kill points`, tally);
  });
}

/** A ref's value, or '' when it does not exist. */
function revParse(sb: Sandbox, cwd: string, ref: string): string {
  const r = spawnSync('git', ['rev-parse', '-q', '--verify', ref], { cwd, env: sb.env, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/**
 * A fresh `git clone --mirror` of the store must succeed and pass `git fsck --strict`; returns
 * its main branch. With `expected`, main must be that commit; with `src`, the mirror must hold
 * exactly src's branches and tags.
 */
function verifyMirror(tt: Test, ok: { value: boolean }, sb: Sandbox, url: string, name: string, expected: string | undefined, src?: string): string | undefined {
  const dir = sb.path(name);
  try {
    const cloned = must(tt, ok, `a fresh mirror clone of the store succeeds (${name})`, () => sb.run('git', ['clone', '-q', '--mirror', url, dir]));
    if (cloned === undefined) return undefined;
    must(tt, ok, `the mirror passes git fsck --strict (${name})`, () => sb.git(dir, 'fsck', '--strict', '--no-dangling'));
    const main = revParse(sb, dir, 'refs/heads/main') || undefined;
    if (expected !== undefined) check(tt, ok, main === expected, `the mirror's main is the last published commit (${name})`, { main, expected });
    if (src) check(tt, ok, JSON.stringify([...sb.refs(dir)]) === JSON.stringify([...sb.refs(src)].filter(([r]) => r === 'refs/heads/main')), `the mirror holds exactly the pushed refs (${name})`);
    return main;
  } catch (err) {
    ok.value = false;
    tt.fail(`verifying the store failed (${name})`, { error: err instanceof Error ? err.message : String(err) });
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
