import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { ALL_FAULT_KINDS, type FaultProxy, s3RequestKind, startFaultProxy } from './support/fault-proxy';
import { recordFigures } from './support/reliability-report';
import { type RunResult, Sandbox } from './support/sandbox';
import { kmsEnvFor, runningServices, newBucket, s3ClientFor } from './support/services';
import { s3Store, type StoreAccess } from './support/store-access';

/**
 * Pushes, clones and fetches through a loopback proxy that makes a seeded-random share of the
 * S3 requests fail (500, 503 SlowDown), lose their connection before or after the server acted,
 * get a truncated body, or stall. Every operation either succeeds (and a clean clone then shows
 * exactly what it pushed) or fails with one clear `fatal:` line, and never leaves a partial
 * state: the next operation without faults succeeds and the manifest log stays contiguous.
 */

const FULL = Boolean(process.env.KMSCRYPT_RELIABILITY_FULL);
const ROUNDS = FULL ? 40 : 6;
const RATE = 0.15;
/**
 * The SDK retries each request (3 attempts), so at 15% almost every operation succeeds; every
 * third round is a storm at this rate, so that operations also fail and their failures are judged.
 */
const STORM_RATE = 0.5;
const SEED = Number(process.env.KMSCRYPT_FAULT_SEED ?? 20240611) >>> 0;
/**
 * The helper abandons an S3 request after kmscrypt.requestTimeout seconds of silence (60 by
 * default, src/storage/s3-client.ts); the long-stall case sets it to 5 s and stalls for 15 s.
 */
const CLIENT_TIMEOUT_MS = 5_000;
const LONG_STALL_MS = 15_000;

t.jobs = 2;

interface World {
  sb: Sandbox;
  proxy: FaultProxy;
  store: StoreAccess;
  /** Environment that bypasses the proxy. */
  direct: NodeJS.ProcessEnv;
}

async function world(tt: Test, opts: { rate: number; seed: number; stallMs?: number }): Promise<World> {
  const services = await runningServices();
  const bucket = await newBucket('faults');
  const prefix = `repo-${randomBytes(4).toString('hex')}`;
  const proxy = await startFaultProxy({ target: services.s3.endpoint, seed: opts.seed, rate: opts.rate, stallMs: opts.stallMs ?? 1500 });
  tt.teardown(() => proxy.close());
  const base: NodeJS.ProcessEnv = {
    AWS_ACCESS_KEY_ID: services.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: services.s3.secretAccessKey,
    AWS_REGION: services.s3.region,
    ...kmsEnvFor(services),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const sb = new Sandbox(tt, { ...base, AWS_ENDPOINT_URL_S3: proxy.url });
  const client = s3ClientFor(services);
  tt.teardown(() => client.destroy());
  const store = s3Store(client, bucket, prefix);
  return { sb, proxy, store, direct: { AWS_ENDPOINT_URL_S3: services.s3.endpoint } };
}

/**
 * git, asynchronously: the proxy runs in this process (and another scenario may run beside this
 * one), so nothing that goes through it may block the event loop.
 */
function run(sb: Sandbox, cwd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn('git', args, { cwd, env: { ...sb.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('close', (code) => resolve({ status: code ?? 128, stdout, stderr }));
  });
}

/** A failure is clear when kmscrypt said exactly one `fatal:` line and nothing looks like a crash or SDK noise. */
function clearFailure(stderr: string): { clear: boolean; why: string } {
  const lines = stderr.split('\n');
  const fatal = lines.filter((l) => l.startsWith('fatal: kmscrypt: '));
  const noise = lines.filter((l) => /^\s+at |@smithy|@aws-sdk|\[object Object\]|^\w*Error: |UnhandledPromise|node:internal/.test(l));
  if (fatal.length !== 1) return { clear: false, why: `${fatal.length} 'fatal: kmscrypt:' lines` };
  if (noise.length) return { clear: false, why: `noise: ${noise[0]}` };
  if (fatal[0].length < 'fatal: kmscrypt: '.length + 10) return { clear: false, why: 'an empty message' };
  return { clear: true, why: '' };
}

async function lsRemoteMain(sb: Sandbox, url: string, env: NodeJS.ProcessEnv): Promise<{ status: number; main: string | undefined; stderr: string }> {
  const r = await run(sb, sb.root, ['ls-remote', url, 'refs/heads/main'], env);
  return { status: r.status, main: r.stdout.split('\t')[0] || undefined, stderr: r.stderr };
}

function revParse(sb: Sandbox, cwd: string, ref: string): string {
  const r = spawnSync('git', ['rev-parse', '-q', '--verify', ref], { cwd, env: sb.env, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** Manifest generations in the store, read directly: they must be exactly 1..n. */
async function manifestGenerations(store: StoreAccess): Promise<number[]> {
  return (await store.keys()).filter((k) => /^manifests\/\d{20}$/.test(k)).map((k) => Number(k.slice('manifests/'.length)));
}

function contiguous(gens: number[]): boolean {
  return gens.every((g, i) => g === i + 1);
}

function commitRound(sb: Sandbox, repo: string, round: number, blobBytes: number): string {
  for (let i = 0; i < 40; i++) {
    const dir = join(repo, `d${i % 8}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `f${i}.txt`), `file ${i} round ${round}\n`.repeat(10));
  }
  writeFileSync(join(repo, 'blob.bin'), randomBytes(blobBytes));
  sb.git(repo, 'add', '-A');
  sb.git(repo, 'commit', '-q', '-m', `round ${round}`);
  return sb.git(repo, 'rev-parse', 'HEAD').trim();
}

t.test(`${ROUNDS} rounds of push, clone and fetch with ${RATE * 100}% of S3 requests faulted, every third round ${STORM_RATE * 100}% (seed ${SEED})`, async (tt) => {
  const { sb, proxy, store } = await world(tt, { rate: RATE, seed: SEED });
  const figures: Record<string, number> = { opsSucceeded: 0, opsFailedCleanly: 0, opsFailedUnclearly: 0, partialStates: 0, failedButLanded: 0, pushes: 0, clones: 0, fetches: 0, stormRounds: 0 };
  const src = sb.repo('src');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  const reader = sb.path('reader');
  let published: string | undefined;
  const faultsByRequest: Record<string, number> = {};

  /** Judges one faulted operation's failure and counts it. */
  const judgeFailure = (what: string, r: RunResult) => {
    const verdict = clearFailure(r.stderr);
    if (verdict.clear) figures.opsFailedCleanly++;
    else figures.opsFailedUnclearly++;
    tt.ok(verdict.clear, `${what} failed with one clear fatal line`, { why: verdict.why, stderr: r.stderr });
    tt.comment(`${what}: ${r.stderr.split('\n').find((l) => l.startsWith('fatal:')) ?? r.stderr.trim()}`);
  };

  for (let round = 0; round < ROUNDS; round++) {
    // Mostly small pushes; every fourth carries a 7 MiB blob (a CBC record, streamed reads),
    // every fifth an 18 MiB one (a container above 16 MiB: multipart upload).
    const blob = round % 5 === 4 ? 18 << 20 : round % 4 === 3 ? 7 << 20 : 256 << 10;
    const head = commitRound(sb, src, round, blob);
    const storm = round % 3 === 2;
    if (storm) figures.stormRounds++;
    proxy.rate = storm ? STORM_RATE : RATE;
    const stormNote = storm ? ' (storm)' : '';

    // Push, with faults.
    proxy.enabled = true;
    const before = proxy.injected.length;
    const pushed = await run(sb, src, ['push', 'origin', 'main']);
    proxy.enabled = false;
    figures.pushes++;
    const remote = await lsRemoteMain(sb, store.url, {});
    tt.equal(remote.status, 0, `round ${round}${stormNote}: without faults the remote is readable`, { stderr: remote.stderr });
    const injectedHere = proxy.injected.slice(before).map((f) => `${f.kind} ${s3RequestKind(f)}`);
    for (const f of injectedHere) faultsByRequest[f] = (faultsByRequest[f] ?? 0) + 1;
    if (pushed.status === 0) {
      figures.opsSucceeded++;
      tt.equal(remote.main, head, `round ${round}${stormNote}: a push that succeeded through ${injectedHere.length} faults is on the remote`, { injectedHere });
      published = head;
    } else {
      judgeFailure(`round ${round}${stormNote}: push (faults: ${injectedHere.join(', ')})`, pushed);
      const consistent = remote.main === published || remote.main === head;
      if (!consistent) figures.partialStates++;
      tt.ok(consistent, `round ${round}${stormNote}: after a failed push the remote has the old value or the whole push`, { remote: remote.main, published, head });
      if (remote.main === head) figures.failedButLanded++;
      const again = await run(sb, src, ['push', '-q', 'origin', 'main']);
      if (again.status !== 0) figures.partialStates++;
      tt.equal(again.status, 0, `round ${round}${stormNote}: the next push without faults succeeds`, { stderr: again.stderr });
      published = head;
    }

    // A fresh clone, with faults.
    const cloneDir = sb.path(`clone-${round}`);
    proxy.enabled = true;
    const beforeClone = proxy.injected.length;
    const cloned = await run(sb, sb.root, ['clone', '-q', store.url, cloneDir]);
    proxy.enabled = false;
    figures.clones++;
    const cloneFaults = proxy.injected.slice(beforeClone).map((f) => `${f.kind} ${s3RequestKind(f)}`);
    for (const f of cloneFaults) faultsByRequest[f] = (faultsByRequest[f] ?? 0) + 1;
    if (cloned.status === 0) {
      figures.opsSucceeded++;
      tt.equal(revParse(sb, cloneDir, 'HEAD'), published, `round ${round}${stormNote}: a clone that succeeded through ${cloneFaults.length} faults has the last published commit`);
      const fsck = await run(sb, cloneDir, ['fsck', '--strict', '--no-dangling']);
      tt.equal(fsck.status, 0, `round ${round}${stormNote}: the clone passes fsck --strict`, { stderr: fsck.stderr });
    } else {
      judgeFailure(`round ${round}${stormNote}: clone (faults: ${cloneFaults.join(', ')})`, cloned);
      const leftover = existsSync(cloneDir);
      if (leftover) figures.partialStates++;
      tt.notOk(leftover, `round ${round}${stormNote}: a failed clone leaves no directory behind`);
      rmSync(cloneDir, { recursive: true, force: true });
      const again = await run(sb, sb.root, ['clone', '-q', store.url, cloneDir]);
      if (again.status !== 0) figures.partialStates++;
      tt.equal(again.status, 0, `round ${round}${stormNote}: the next clone without faults succeeds`, { stderr: again.stderr });
      tt.equal(revParse(sb, cloneDir, 'HEAD'), published, `round ${round}${stormNote}: and has the last published commit`);
    }
    rmSync(cloneDir, { recursive: true, force: true });

    // A fetch into a clone that is behind, with faults.
    if (!existsSync(reader)) {
      const first = await run(sb, sb.root, ['clone', '-q', store.url, reader]);
      tt.equal(first.status, 0, 'the reader clone is made without faults', { stderr: first.stderr });
      continue;
    }
    const oldTracking = revParse(sb, reader, 'refs/remotes/origin/main');
    proxy.enabled = true;
    const beforeFetch = proxy.injected.length;
    const fetched = await run(sb, reader, ['fetch', '-q', 'origin']);
    proxy.enabled = false;
    figures.fetches++;
    const fetchFaults = proxy.injected.slice(beforeFetch).map((f) => `${f.kind} ${s3RequestKind(f)}`);
    for (const f of fetchFaults) faultsByRequest[f] = (faultsByRequest[f] ?? 0) + 1;
    const tracking = revParse(sb, reader, 'refs/remotes/origin/main');
    const connected = await run(sb, reader, ['fsck', '--connectivity-only', '--no-dangling']);
    tt.equal(connected.status, 0, `round ${round}${stormNote}: the fetching repository has every object its refs need`, { stderr: connected.stderr });
    if (fetched.status === 0) {
      figures.opsSucceeded++;
      tt.equal(tracking, published, `round ${round}${stormNote}: a fetch that succeeded through ${fetchFaults.length} faults has the last published commit`);
    } else {
      judgeFailure(`round ${round}${stormNote}: fetch (faults: ${fetchFaults.join(', ')})`, fetched);
      const consistent = tracking === oldTracking || tracking === published;
      if (!consistent || connected.status !== 0) figures.partialStates++;
      tt.ok(consistent, `round ${round}${stormNote}: after a failed fetch the remote-tracking ref is the old or the new value`);
      const again = await run(sb, reader, ['fetch', '-q', 'origin']);
      if (again.status !== 0) figures.partialStates++;
      tt.equal(again.status, 0, `round ${round}${stormNote}: the next fetch without faults succeeds`, { stderr: again.stderr });
      tt.equal(revParse(sb, reader, 'refs/remotes/origin/main'), published, `round ${round}${stormNote}: and brings the last published commit`);
    }
  }

  // What the last successful push published is what a clean mirror clone shows, complete.
  const mirror = sb.path('final.git');
  const m = await run(sb, sb.root, ['clone', '-q', '--mirror', store.url, mirror]);
  tt.equal(m.status, 0, 'a clean mirror clone succeeds', { stderr: m.stderr });
  tt.equal(revParse(sb, mirror, 'refs/heads/main'), published, 'it has exactly what the last successful push published');
  tt.equal((await run(sb, mirror, ['fsck', '--strict', '--no-dangling'])).status, 0, 'and passes fsck --strict');
  const gens = await manifestGenerations(store);
  tt.ok(contiguous(gens), `the manifest log is contiguous (generations 1..${gens.length})`, { gens });
  tt.ok(gens.length <= figures.pushes, 'no push published more than one manifest');

  const counts = proxy.countsByKind();
  const injected = proxy.injected.length;
  Object.assign(figures, { faultsInjected: injected, requests: proxy.requests.length });
  for (const k of ALL_FAULT_KINDS) figures[`fault:${k}`] = counts[k];
  tt.ok(injected >= ROUNDS, `${injected} faults were injected into ${proxy.requests.length} requests`);
  for (const k of ALL_FAULT_KINDS) tt.ok(counts[k] > 0, `fault ${k} was injected (${counts[k]} times)`);
  const ops = figures.pushes + figures.clones + figures.fetches;
  tt.equal(figures.opsSucceeded + figures.opsFailedCleanly + figures.opsFailedUnclearly, ops, `each of the ${ops} operations is classified: succeeded (verified) or failed (judged)`);
  tt.ok(figures.opsFailedCleanly > 0, `some operations failed under the storms (${figures.opsFailedCleanly}), and each failure was judged`);
  tt.equal(figures.opsFailedUnclearly, 0, 'no operation failed without one clear fatal line');
  tt.equal(figures.partialStates, 0, 'no operation left a partial state');
  tt.comment(`faults by request kind: ${JSON.stringify(faultsByRequest)}`);
  tt.comment(`figures: ${JSON.stringify(figures)}`);
  recordFigures('S3 random faults', figures);
});

t.test('a conditional manifest PUT answered 500 after RGW stored it: the outcome is settled by reading back', async (tt) => {
  const { sb, proxy, store } = await world(tt, { rate: 0, seed: SEED });
  const figures: Record<string, number> = { faultsInjected: 0, 'fault:http500After': 0, 'fault:http500': 0, opsSucceeded: 0, opsFailedCleanly: 0, opsFailedUnclearly: 0, partialStates: 0, failedButLanded: 0 };
  const src = sb.repo('src');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  commitRound(sb, src, 0, 1024);
  const seeded = await run(sb, src, ['push', '-q', 'origin', 'main']);
  tt.equal(seeded.status, 0, 'the repository is created through the proxy (no faults yet)', { stderr: seeded.stderr });
  const isManifestPut = (r: { method: string; url: string }) => r.method === 'PUT' && /\/manifests\/\d{20}(\?|$)/.test(r.url);
  const isManifestGet = (r: { method: string; url: string }) => r.method === 'GET' && /\/manifests\/\d{20}(\?|$)/.test(r.url);

  const check = async (label: string, head: string, expectSuccess: boolean) => {
    const gensBefore = await manifestGenerations(store);
    const before = proxy.injected.length;
    const r = await run(sb, src, ['push', 'origin', 'main']);
    proxy.targeted = undefined;
    const injected = proxy.injected.slice(before);
    figures.faultsInjected += injected.length;
    for (const f of injected) figures[`fault:${f.kind}`] = (figures[`fault:${f.kind}`] ?? 0) + 1;
    tt.ok(injected.some((f) => f.kind === 'http500After' && isManifestPut(f)), `${label}: the manifest PUT was stored and answered 500`);
    if (r.status === 0) {
      figures.opsSucceeded++;
      tt.pass(`${label}: the push reports success`);
    } else {
      const verdict = clearFailure(r.stderr);
      if (verdict.clear) figures.opsFailedCleanly++;
      else figures.opsFailedUnclearly++;
      tt.ok(verdict.clear, `${label}: the push fails with one clear fatal line`, { why: verdict.why, stderr: r.stderr });
      tt.match(r.stderr, /unknown|retry/i, `${label}: the error says the outcome is unknown and to retry`);
      tt.comment(`${label}: ${r.stderr.split('\n').find((l) => l.startsWith('fatal:')) ?? r.stderr.trim()}`);
    }
    if (expectSuccess) tt.equal(r.status, 0, `${label}: the push reports success once reading back settles the outcome`, { stderr: r.stderr });
    // Re-reading resolves it: the stored manifest is the push, exactly once.
    const gensAfter = await manifestGenerations(store);
    tt.ok(contiguous(gensAfter), `${label}: the manifest log is contiguous`, { gensAfter });
    tt.equal(gensAfter.length, gensBefore.length + 1, `${label}: exactly one manifest was published for the push`);
    const ls = await lsRemoteMain(sb, store.url, {});
    tt.equal(ls.main, head, `${label}: a reader sees the pushed commit`);
    if (r.status !== 0 && ls.main === head) figures.failedButLanded++;
    const again = await run(sb, src, ['push', 'origin', 'main']);
    tt.equal(again.status, 0, `${label}: pushing again from the same repository succeeds (nothing to do or a no-op)`, { stderr: again.stderr });
    const next = commitRound(sb, src, Math.floor(Math.random() * 1e6), 1024);
    const follow = await run(sb, src, ['push', '-q', 'origin', 'main']);
    if (follow.status !== 0) figures.partialStates++;
    tt.equal(follow.status, 0, `${label}: the next push from the same repository succeeds (its local state is consistent)`, { stderr: follow.stderr });
    const mirror = sb.path(`mirror-${label.replace(/\W+/g, '-')}`);
    const m = await run(sb, sb.root, ['clone', '-q', '--mirror', store.url, mirror]);
    tt.equal(m.status, 0, `${label}: a clean mirror clone succeeds`, { stderr: m.stderr });
    tt.equal(revParse(sb, mirror, 'refs/heads/main'), next, `${label}: and has the newest push`);
    tt.equal((await run(sb, mirror, ['fsck', '--strict', '--no-dangling'])).status, 0, `${label}: and passes fsck --strict`);
  };

  // 1. Only the first attempt: the SDK's retry meets 412 (the object exists), so the helper reads back.
  let head = commitRound(sb, src, 1, 4096);
  let done = false;
  proxy.targeted = (r) => {
    if (!done && isManifestPut(r)) {
      done = true;
      return { kind: 'http500After' };
    }
    return undefined;
  };
  await check('first attempt answered 500 after storing', head, true);

  // 2. Every attempt of the manifest PUT is answered 500 (the first after storing it).
  head = commitRound(sb, src, 2, 4096);
  let stored = false;
  proxy.targeted = (r) => {
    if (isManifestPut(r)) {
      if (!stored) {
        stored = true;
        return { kind: 'http500After' };
      }
      return { kind: 'http500' };
    }
    return undefined;
  };
  await check('every attempt answered 500, the first after storing', head, true);

  // 3. Stored and answered 500, and the manifest cannot be read back either: the push cannot
  // know; it must say so clearly, and the log must still be consistent when read later.
  head = commitRound(sb, src, 3, 4096);
  let first = true;
  proxy.targeted = (r) => {
    if (isManifestPut(r)) {
      if (first) {
        first = false;
        return { kind: 'http500After' };
      }
      return { kind: 'http500' };
    }
    if (isManifestGet(r) && !first) return { kind: 'http500' };
    return undefined;
  };
  await check('stored, answered 500, and unreadable afterwards', head, false);

  tt.comment(`figures: ${JSON.stringify(figures)}`);
  recordFigures('S3 manifest PUT outcome unknown', figures);
});

t.test(`a request stalled longer than the client timeout (${LONG_STALL_MS / 1000} s > ${CLIENT_TIMEOUT_MS / 1000} s) is abandoned, retried, and the clone succeeds`, async (tt) => {
  const { sb, proxy, store, direct } = await world(tt, { rate: 0, seed: SEED });
  const src = sb.repo('src');
  const head = commitRound(sb, src, 0, 64 << 10);
  // Created directly on RGW; only the clone goes through the stalling proxy.
  const created = await run(sb, src, ['push', '-q', store.url, 'main'], direct);
  tt.equal(created.status, 0, 'the repository is created without the proxy', { stderr: created.stderr });
  let stalled = false;
  proxy.targeted = (r) => {
    if (!stalled && r.method === 'GET' && /\/manifests\/\d{20}(\?|$)/.test(r.url)) {
      stalled = true;
      return { kind: 'stall', stallMs: LONG_STALL_MS };
    }
    return undefined;
  };
  const started = Date.now();
  const r = await run(sb, sb.root, ['clone', '-q', store.url, sb.path('stalled-clone')], { KMSCRYPT_REQUEST_TIMEOUT: String(CLIENT_TIMEOUT_MS / 1000) });
  const elapsed = Date.now() - started;
  const stall = proxy.injected.find((f) => f.kind === 'stall');
  tt.ok(stall, 'one manifest GET was stalled');
  const gaveUp = stall?.clientGaveUpAfterMs;
  tt.ok(gaveUp !== undefined && gaveUp < LONG_STALL_MS - 1000, `the helper gave up on the stalled request before the stall ended (after ${gaveUp ?? 'never'} ms; clone took ${elapsed} ms)`);
  const manifestGets = proxy.requests.filter((q) => q.method === 'GET' && /\/manifests\/\d{20}(\?|$)/.test(q.url));
  tt.equal(manifestGets.length, 2, 'the manifest GET was sent again after it was abandoned: the stalled attempt and one retry');
  tt.ok(manifestGets[1]?.index > stall!.index, 'the retry came after the stalled attempt');
  tt.equal(r.status, 0, 'the retried clone succeeded', { stderr: r.stderr });
  tt.equal(revParse(sb, sb.path('stalled-clone'), 'HEAD'), head, 'the clone completed with the pushed commit');
  tt.notMatch(r.stderr, /@smithy|requestTimeout/, "no SDK warning reaches git's output", { stderr: r.stderr });
  recordFigures('S3 long stall', {
    faultsInjected: proxy.injected.length,
    'fault:stall': proxy.injected.filter((f) => f.kind === 'stall').length,
    opsSucceeded: r.status === 0 ? 1 : 0,
    opsFailedCleanly: 0,
    opsFailedUnclearly: r.status !== 0 ? 1 : 0,
    stalledRequestAbandoned: gaveUp !== undefined && gaveUp < LONG_STALL_MS - 1000 && manifestGets.length === 2 ? 1 : 0,
  });
});
