#!/usr/bin/env node
// @ts-check
'use strict';
/*
 * npm run bench: plain git and git-remote-kmscrypt side by side, in the same run, on the same
 * machine, over the local store and over S3 (a Ceph RGW this script starts on loopback, with the
 * local KMS endpoint). Writes bench-results/<date>.md and prints it. See bench/README.md.
 */
const { spawn, spawnSync } = require('node:child_process');
const { randomBytes } = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { expectedInfo, largeParameters, bigfileParameters } = require('./generate-large-repo');
const { startServices, stopServices } = require('../test/setup/service-daemons');

const ROOT = path.resolve(__dirname, '..');
const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

// ---- settings ------------------------------------------------------------------------------------

const env = process.env;
const WORKLOADS = ['express', 'large', 'bigfile'];
const BACKENDS = ['local', 's3'];
const list = (/** @type {string | undefined} */ v, /** @type {string[]} */ all, /** @type {string} */ name) => {
  if (v === undefined || v.trim() === '') return all.slice();
  const items = v.split(',').map((s) => s.trim()).filter((s) => s !== '');
  for (const i of items) if (!all.includes(i)) fatal(`${name}: unknown '${i}' (choose from ${all.join(',')})`);
  return items;
};
const positive = (/** @type {string | undefined} */ v, /** @type {number} */ dflt, /** @type {string} */ name) => {
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) fatal(`${name} must be a positive integer, not '${v}'`);
  return n;
};
const OP_NAMES = ['push', 'clone', 'push1', 'fetch1', 'noop', 'lsremote', 'many', 'shallow', 'blobless'];
const settings = {
  only: list(env.BENCH_ONLY, WORKLOADS, 'BENCH_ONLY'),
  ops: list(env.BENCH_OPS, OP_NAMES, 'BENCH_OPS'),
  backends: list(env.BENCH_BACKENDS, BACKENDS, 'BENCH_BACKENDS'),
  runs: positive(env.BENCH_RUNS, 3, 'BENCH_RUNS'),
  /** one-commit pushes without gc before the "after many pushes" rows (express, first run) */
  manyPushes: positive(env.BENCH_MANY_PUSHES, env.BENCH_SIZE === 'small' ? 100 : 1000, 'BENCH_MANY_PUSHES'),
  largeRuns: positive(env.BENCH_LARGE_RUNS, 1, 'BENCH_LARGE_RUNS'),
  size: /** @type {'full' | 'small'} */ (env.BENCH_SIZE === 'small' ? 'small' : 'full'),
  largeFile: env.BENCH_LARGE_FILE !== '0',
  expressBundle: path.resolve(ROOT, env.BENCH_EXPRESS_BUNDLE || '../shared/workloads/express.bundle'),
  cacheDir: path.resolve(env.BENCH_CACHE_DIR || path.join(os.tmpdir(), 'kmscrypt-bench-cache')),
  outDir: path.resolve(ROOT, env.BENCH_OUT_DIR || 'bench-results'),
  timeoutS: positive(env.BENCH_TIMEOUT, 3600, 'BENCH_TIMEOUT'),
  keepTmp: env.BENCH_KEEP_TMP === '1',
  build: env.BENCH_NO_BUILD !== '1',
};
if (env.BENCH_SIZE !== undefined && env.BENCH_SIZE !== '' && env.BENCH_SIZE !== 'small' && env.BENCH_SIZE !== 'full') {
  fatal(`BENCH_SIZE must be 'full' or 'small', not '${env.BENCH_SIZE}'`);
}

/** The project's targets (issue 16 for the everyday operations); targetsOf applies them to rows. */
const TARGETS = {
  pushRatio: 1.25,
  cloneRatioS3: 1.1,
  cloneRatioLocal: 1.0,
  oneCommitLocalSeconds: 0.2,
  oneCommitRatio: 1.5,
  oneCommitS3Seconds: 0.3,
  /** one-commit push and fetch on the large repository / on express, same backend */
  growthRatio: 1.15,
  lsRemoteLocalSeconds: 0.12,
  lsRemoteS3Seconds: 0.2,
  noopFetchLocalSeconds: 0.12,
  storedRatio: 1.1,
  helperRssMiB: 256,
};

function fatal(/** @type {string} */ msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}
function log(/** @type {string} */ msg) {
  process.stderr.write(`bench: ${msg}\n`);
}

// ---- temp dir, services and their cleanup --------------------------------------------------------

/** Everything this run creates outside the cache, the results and the store of services. */
const state = {
  tmp: '',
  /** where startServices keeps RGW and the KMS of this run, once started */
  servicesRoot: '',
  /** @type {number | undefined} pid of the process group of the measured command running now */
  currentGroup: undefined,
  cleaned: false,
};

function cleanupSync() {
  if (state.cleaned) return;
  state.cleaned = true;
  if (state.currentGroup !== undefined) {
    try { process.kill(-state.currentGroup, 'SIGKILL'); } catch { /* gone */ }
  }
  if (state.servicesRoot) stopServices(state.servicesRoot);
  if (state.tmp) {
    if (settings.keepTmp) log(`kept ${state.tmp} (BENCH_KEEP_TMP=1)`);
    else fs.rmSync(state.tmp, { recursive: true, force: true });
  }
}
process.on('exit', cleanupSync);
for (const sig of /** @type {NodeJS.Signals[]} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) {
  process.on(sig, () => {
    log(`${sig}: stopping services and removing temporary files`);
    cleanupSync();
    process.exit(130);
  });
}

// ---- running commands ----------------------------------------------------------------------------

/** The environment every command gets: no user or system git config, our bin/ first on PATH. */
function baseEnv() {
  /** @type {Record<string, string>} */
  const e = {
    PATH: `${path.join(ROOT, 'bin')}:${env.PATH ?? '/usr/local/bin:/usr/bin:/bin'}`,
    HOME: path.join(state.tmp, 'home'),
    XDG_CONFIG_HOME: path.join(state.tmp, 'home', '.config'),
    GIT_CONFIG_NOSYSTEM: '1',
    LANG: 'C',
    LC_ALL: 'C',
    TMPDIR: path.join(state.tmp, 'tmp'),
    GIT_AUTHOR_NAME: 'Bench',
    GIT_AUTHOR_EMAIL: 'bench@example.com',
    GIT_COMMITTER_NAME: 'Bench',
    GIT_COMMITTER_EMAIL: 'bench@example.com',
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  // For side-by-side runs without the code cache (src/code-cache.ts): KMSCRYPT_CODE_CACHE=0.
  if (env.KMSCRYPT_CODE_CACHE !== undefined) e.KMSCRYPT_CODE_CACHE = env.KMSCRYPT_CODE_CACHE;
  return e;
}

/** Synchronous git for setup steps (not measured); throws with git's stderr. */
function git(/** @type {string[]} */ args, /** @type {{ cwd?: string, env?: Record<string, string>, input?: string }} */ opts = {}) {
  const res = spawnSync('git', args, {
    cwd: opts.cwd,
    env: opts.env ?? baseEnv(),
    input: opts.input,
    encoding: 'utf8',
    maxBuffer: 256 * MiB,
  });
  if (res.error) throw res.error;
  if (res.status !== 0) throw new Error(`git ${args.join(' ')} (in ${opts.cwd ?? process.cwd()}) failed (${res.status}): ${res.stderr.trim()}`);
  return res.stdout;
}

let GNU_TIME = '/usr/bin/time';
let commandSerial = 0;

/**
 * @typedef {{ helpers: number, outcomes: string[], maxRssKiB: number, storage: Record<string, number>, kms: Record<string, number>, bytesRead: number }} HelperStats
 * @typedef {{ ok: boolean, wallS: number, cpuS: number | undefined, rssKiB: number | undefined, stats: HelperStats | undefined, error?: string, cloneBytes?: number }} Measured
 */

/** Runs one measured command: wall time by process.hrtime, peak RSS by GNU time, helper stats by KMSCRYPT_STATS. */
function measure(/** @type {string[]} */ gitArgs, /** @type {{ cwd: string, env: Record<string, string>, kmscrypt: boolean }} */ opts) {
  const n = ++commandSerial;
  const logFile = path.join(state.tmp, 'logs', `${n}.log`);
  const rssFile = path.join(state.tmp, 'logs', `${n}.rss`);
  const statsFile = path.join(state.tmp, 'logs', `${n}.stats.jsonl`);
  const cmdEnv = { ...opts.env };
  if (opts.kmscrypt) cmdEnv.KMSCRYPT_STATS = statsFile;
  const [cmd, args] = GNU_TIME ? [GNU_TIME, ['-f', '%M %U %S', '-o', rssFile, 'git', ...gitArgs]] : ['git', gitArgs];
  fs.writeFileSync(logFile, `$ git ${gitArgs.join(' ')}   (in ${opts.cwd})\n`);
  const out = fs.openSync(logFile, 'a');
  return new Promise((done) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { cwd: opts.cwd, env: cmdEnv, stdio: ['ignore', out, out], detached: true });
    fs.closeSync(out);
    state.currentGroup = child.pid;
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try { if (child.pid) process.kill(-child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, settings.timeoutS * 1000);
    const finish = (/** @type {number | null} */ code, /** @type {string | undefined} */ spawnError) => {
      const wallS = Number(process.hrtime.bigint() - started) / 1e9;
      clearTimeout(timer);
      state.currentGroup = undefined;
      let rssKiB;
      let cpuS;
      try {
        const lines = fs.readFileSync(rssFile, 'utf8').trim().split('\n');
        const [rss, user, sys] = lines[lines.length - 1].split(' ').map(Number);
        if (Number.isFinite(rss) && rss > 0) rssKiB = rss;
        if (Number.isFinite(user) && Number.isFinite(sys)) cpuS = user + sys;
      } catch { /* no GNU time */ }
      const stats = opts.kmscrypt ? readStats(statsFile) : undefined;
      const ok = code === 0 && !timedOut && spawnError === undefined;
      /** @type {Measured} */
      const m = { ok, wallS, cpuS, rssKiB, stats };
      if (!ok) {
        m.error = timedOut
          ? `timed out after ${settings.timeoutS} s (BENCH_TIMEOUT)\n${tailOf(logFile)}`
          : spawnError ?? `git ${gitArgs.join(' ')} exited with ${code}:\n${tailOf(logFile)}`;
      }
      done(m);
    };
    child.once('error', (err) => finish(null, String(err)));
    child.once('close', (code) => finish(code, undefined));
  });
}

function tailOf(/** @type {string} */ file, bytes = 3000) {
  try {
    const fd = fs.openSync(file, 'r');
    const size = fs.fstatSync(fd).size;
    const buf = Buffer.alloc(Math.min(bytes, size));
    fs.readSync(fd, buf, 0, buf.length, size - buf.length);
    fs.closeSync(fd);
    return buf.toString('utf8').trim().split('\n').slice(-25).join('\n');
  } catch {
    return '';
  }
}

/** Sums the KMSCRYPT_STATS lines of every helper process of one command. */
function readStats(/** @type {string} */ file) {
  /** @type {HelperStats} */
  const s = { helpers: 0, outcomes: [], maxRssKiB: 0, storage: {}, kms: {}, bytesRead: 0 };
  let text = '';
  try { text = fs.readFileSync(file, 'utf8'); } catch { return s; }
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    /** @type {{ outcome?: string, maxRssKiB?: number, storage?: Record<string, number>, kms?: Record<string, number>, storageBytesRead?: number }} */
    const j = JSON.parse(line);
    s.helpers++;
    s.bytesRead += j.storageBytesRead ?? 0;
    s.outcomes.push(j.outcome ?? '?');
    s.maxRssKiB = Math.max(s.maxRssKiB, j.maxRssKiB ?? 0);
    for (const [k, v] of Object.entries(j.storage ?? {})) s.storage[k] = (s.storage[k] ?? 0) + v;
    for (const [k, v] of Object.entries(j.kms ?? {})) s.kms[k] = (s.kms[k] ?? 0) + v;
  }
  return s;
}

// ---- repositories ----------------------------------------------------------------------------------

/** Sum of sizes of regular files under dir (what `du -sb` counts for files). */
function treeBytes(/** @type {string} */ dir) {
  let total = 0;
  /** @type {string[]} */
  const stack = [dir];
  while (stack.length > 0) {
    const d = /** @type {string} */ (stack.pop());
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) stack.push(p);
      else if (e.isFile()) total += fs.statSync(p).size;
    }
  }
  return total;
}

function packBytes(/** @type {string} */ gitDir) {
  const dir = path.join(gitDir, 'objects', 'pack');
  let total = 0;
  for (const f of fs.readdirSync(dir)) if (f.endsWith('.pack')) total += fs.statSync(path.join(dir, f)).size;
  return total;
}

function refsOf(/** @type {string} */ gitDir) {
  return git(['for-each-ref', '--format=%(objectname) %(refname)'], { cwd: gitDir });
}

/** Throws (loudly) when the clone's refs are not exactly the source's. */
function compareRefs(/** @type {string} */ source, /** @type {string} */ clone, /** @type {string} */ what) {
  const a = refsOf(source);
  const b = refsOf(clone);
  if (a === b) return;
  const as = new Set(a.split('\n'));
  const bs = new Set(b.split('\n'));
  const missing = [...as].filter((l) => !bs.has(l));
  const extra = [...bs].filter((l) => !as.has(l));
  throw new Error(
    `REF MISMATCH after ${what}: source has ${as.size - 1} refs, clone ${bs.size - 1}; ` +
      `missing or different in clone: ${missing.slice(0, 5).join('; ') || 'none'}; ` +
      `only in clone: ${extra.slice(0, 5).join('; ') || 'none'}`,
  );
}

/**
 * A repository to push from: a bare repository with the source's refs whose objects are the
 * source's, borrowed through objects/info/alternates. The source (possibly a cached repository)
 * is never written to, and the helper's state lands in this throwaway repository.
 */
function makePusher(/** @type {string} */ source, /** @type {string} */ dir) {
  git(['init', '--quiet', '--bare', dir]);
  fs.writeFileSync(path.join(dir, 'objects', 'info', 'alternates'), path.join(source, 'objects') + '\n');
  const head = git(['symbolic-ref', 'HEAD'], { cwd: source }).trim();
  git(['symbolic-ref', 'HEAD', head], { cwd: dir });
  const refs = refsOf(source).split('\n').filter((l) => l !== '');
  git(['update-ref', '--stdin'], { cwd: dir, input: refs.map((l) => { const [oid, ref] = l.split(' '); return `create ${ref} ${oid}\n`; }).join('') });
  git(['pack-refs', '--all'], { cwd: dir });
  return head;
}

/** One small new commit on `branch` (a new 1-line file), made with plumbing in a bare repository. */
function addCommit(/** @type {string} */ repo, /** @type {string} */ branch, /** @type {number} */ n) {
  const e = { ...baseEnv(), GIT_INDEX_FILE: path.join(state.tmp, 'tmp', `index-${process.pid}`) };
  const date = `${1_700_000_000 + n * 60} +0000`;
  Object.assign(e, { GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date });
  const blob = git(['hash-object', '-w', '--stdin'], { cwd: repo, env: e, input: `incremental change ${n}\n` }).trim();
  git(['read-tree', branch], { cwd: repo, env: e });
  git(['update-index', '--add', '--cacheinfo', `100644,${blob},bench-incremental/change-${n}.txt`], { cwd: repo, env: e });
  const tree = git(['write-tree'], { cwd: repo, env: e }).trim();
  const commit = git(['commit-tree', tree, '-p', branch, '-m', `Incremental change ${n}`], { cwd: repo, env: e }).trim();
  git(['update-ref', branch, commit], { cwd: repo, env: e });
  fs.rmSync(e.GIT_INDEX_FILE, { force: true });
}

/** Runs the generator (a separate process, so its memory is not ours) unless the cache holds the same repository. */
async function cachedRepo(/** @type {'large' | 'bigfile'} */ kind) {
  const name = `${kind}${settings.size === 'small' ? '-small' : ''}.git`;
  const dir = path.join(settings.cacheDir, name);
  const want = JSON.stringify(expectedInfo({ kind, size: settings.size }));
  try {
    const info = JSON.parse(fs.readFileSync(path.join(dir, 'kmscrypt-bench.json'), 'utf8'));
    if (JSON.stringify({ generator: info.generator, parameters: info.parameters }) === want) {
      log(`${kind}: using cached ${dir}`);
      return dir;
    }
    log(`${kind}: cached ${dir} was made by another generator version or parameters; regenerating`);
  } catch { /* not there */ }
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(settings.cacheDir, { recursive: true });
  log(`${kind}: generating ${dir} (once; cached for later runs)`);
  const started = process.hrtime.bigint();
  await new Promise((done, fail) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'generate-large-repo.js'), '--kind', kind, '--size', settings.size, '--out', dir], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: baseEnv(),
    });
    child.once('error', fail);
    child.once('close', (code) => (code === 0 ? done(undefined) : fail(new Error(`bench/generate-large-repo.js --kind ${kind} failed (exit ${code})`))));
  });
  log(`${kind}: generated in ${(Number(process.hrtime.bigint() - started) / 1e9).toFixed(1)} s`);
  return dir;
}

/**
 * @typedef {{ name: string, label: string, source: string, packed: number, objects: number, refs: number, commits: number,
 *   runs: number, cycles: number, large: boolean, fileBytes?: number, note: string }} Workload
 */

function describeSource(/** @type {string} */ source) {
  const counts = Object.fromEntries(git(['count-objects', '-v'], { cwd: source }).trim().split('\n').map((l) => l.split(': ')));
  return {
    packed: packBytes(source),
    objects: Number(counts['in-pack'] ?? 0) + Number(counts.count ?? 0),
    refs: refsOf(source).split('\n').filter((l) => l !== '').length,
    commits: Number(git(['rev-list', '--all', '--count'], { cwd: source }).trim()),
  };
}

/** @returns {Promise<Workload[]>} */
async function prepareWorkloads() {
  /** @type {Workload[]} */
  const out = [];
  for (const name of settings.only) {
    if (name === 'express') {
      if (!fs.existsSync(settings.expressBundle)) {
        log(`express: SKIPPED, no bundle at ${settings.expressBundle} (set BENCH_EXPRESS_BUNDLE to express.bundle)`);
        skipped.push(`express: no bundle at ${settings.expressBundle} (set BENCH_EXPRESS_BUNDLE)`);
        continue;
      }
      const source = path.join(state.tmp, 'sources', 'express.git');
      git(['clone', '--quiet', '--mirror', settings.expressBundle, source]);
      out.push({ name, label: 'express', source, ...describeSource(source), runs: settings.runs, cycles: 1, large: false, note: `git clone --mirror ${settings.expressBundle}` });
    } else if (name === 'large') {
      const source = await cachedRepo('large');
      const p = largeParameters(settings.size);
      out.push({
        name, label: settings.size === 'small' ? 'large (small)' : 'large', source, ...describeSource(source),
        runs: settings.largeRuns, cycles: settings.runs, large: true,
        note: `generated by bench/generate-large-repo.js (${settings.size}; ${p.mainCommits} main commits, feature branches merged back, multi-MB random binaries)`,
      });
    } else if (name === 'bigfile') {
      if (!settings.largeFile) {
        log('bigfile: SKIPPED (BENCH_LARGE_FILE=0)');
        skipped.push('bigfile: BENCH_LARGE_FILE=0');
        continue;
      }
      const source = await cachedRepo('bigfile');
      const fileBytes = bigfileParameters(settings.size).fileBytes;
      out.push({
        name, label: `bigfile ${fmtBytes(fileBytes)}`, source, ...describeSource(source),
        runs: settings.largeRuns, cycles: settings.runs, large: true, fileBytes,
        note: `one commit with one ${fmtBytes(fileBytes)} random file (bench/generate-large-repo.js --kind bigfile)`,
      });
    }
  }
  return out;
}

/** @type {string[]} */
const skipped = [];

// ---- S3 (Ceph RGW) and the local KMS ----------------------------------------------------------------

/** @typedef {{ endpoint: string, accessKeyId: string, secretAccessKey: string, region: string, kmsEndpoint: string, kmsKeyring: string, bucket: string, client: any }} S3Services */

/** @returns {Promise<S3Services>} */
async function startS3() {
  state.servicesRoot = path.join(state.tmp, 'services');
  const memstoreBytes = Math.max(4 * GiB, Math.min(12 * GiB, Math.floor(os.totalmem() / 2)));
  const { s3: rgw, kms } = await startServices(state.servicesRoot, { kmsEnv: baseEnv(), memstoreBytes, log });

  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const { S3Client, CreateBucketCommand } = require('@aws-sdk/client-s3');
  const client = new S3Client({
    endpoint: rgw.endpoint,
    region: rgw.region,
    forcePathStyle: true,
    credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const bucket = `kmscrypt-bench-${randomBytes(4).toString('hex')}`;
  await client.send(new CreateBucketCommand({ Bucket: bucket }));
  log(`S3 ${rgw.endpoint} bucket ${bucket}, KMS ${kms.endpoint}`);
  return {
    endpoint: rgw.endpoint,
    accessKeyId: rgw.accessKeyId,
    secretAccessKey: rgw.secretAccessKey,
    region: 'us-east-1',
    kmsEndpoint: kms.endpoint,
    // The local KMS answers only requests signed with the credentials beside this keyring; the
    // helper finds them there when KMSCRYPT_KEYRING names it (envFor).
    kmsKeyring: kms.keyringPath,
    bucket,
    client,
  };
}

/** Total size and count of the objects under prefix/. */
async function s3Usage(/** @type {S3Services} */ s3, /** @type {string} */ prefix) {
  const { ListObjectsV2Command } = require('@aws-sdk/client-s3');
  let bytes = 0;
  let objects = 0;
  /** @type {string[]} */
  const keys = [];
  let token;
  do {
    /** @type {{ Contents?: { Key?: string, Size?: number }[], NextContinuationToken?: string }} */
    const page = await s3.client.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      bytes += o.Size ?? 0;
      objects++;
      if (o.Key) keys.push(o.Key);
    }
    token = page.NextContinuationToken;
  } while (token);
  return { bytes, objects, keys };
}

async function s3Delete(/** @type {S3Services} */ s3, /** @type {string} */ prefix) {
  const { DeleteObjectCommand } = require('@aws-sdk/client-s3');
  const { keys } = await s3Usage(s3, prefix);
  for (const Key of keys) await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key }));
}

// ---- the measurements --------------------------------------------------------------------------------

/**
 * @typedef {'push' | 'clone' | 'push1' | 'fetch1' | 'noop' | 'lsremote' | 'shallow' | 'blobless' | 'manyPushes' | 'manyCatchUp' | 'manyPush1' | 'manyFetch1' | 'manyClone'} Op
 * @typedef {{ samples: Measured[], failures: string[] }} Cell
 */
const OPS = /** @type {Op[]} */ (['push', 'clone', 'push1', 'fetch1', 'noop', 'lsremote']).filter((op) => settings.ops.includes(op));
/** After settings.manyPushes one-commit pushes without gc (express, first run): a section of their own. */
const MANY_OPS = /** @type {Op[]} */ (settings.ops.includes('many') ? ['manyPushes', 'manyCatchUp', 'manyPush1', 'manyFetch1', 'manyClone'] : []);
/** Shallow and partial clones: reported in a section of their own (bytes read and stored). */
const PARTIAL_OPS = /** @type {Op[]} */ (['shallow', 'blobless']).filter((op) => settings.ops.includes(op));
const OP_LABEL = {
  push: 'initial push, all refs (`push --mirror`)',
  clone: 'full mirror clone',
  push1: 'push of one new commit',
  fetch1: 'fetch of that commit',
  noop: 'no-op `git fetch` (nothing new)',
  lsremote: '`git ls-remote`',
  manyPushes: `each of the ${settings.manyPushes} one-commit pushes (median)`,
  manyCatchUp: `fetch of all ${settings.manyPushes} pushes into the clone (a gap of ${settings.manyPushes} manifests)`,
  manyPush1: 'then one more one-commit push',
  manyFetch1: 'fetch of that commit into the up-to-date clone',
  manyClone: 'fresh full mirror clone',
  shallow: '`clone --depth 1 --no-checkout`',
  blobless: '`clone --filter=blob:none --no-checkout`',
};
/** Row names in the chart. @type {Record<Op, string>} */
const OP_SHORT = {
  push: 'push --mirror',
  clone: 'clone --mirror',
  push1: 'push one commit',
  fetch1: 'fetch one commit',
  noop: 'no-op fetch',
  lsremote: 'ls-remote',
  shallow: 'clone --depth 1',
  blobless: 'clone --filter=blob:none',
  manyPushes: `each of ${settings.manyPushes} pushes`,
  manyCatchUp: `fetch of ${settings.manyPushes} pushes`,
  manyPush1: `push one commit after ${settings.manyPushes}`,
  manyFetch1: `fetch one commit after ${settings.manyPushes}`,
  manyClone: `clone --mirror after ${settings.manyPushes}`,
};
/** The git clone arguments of the shallow and partial rows. @type {Partial<Record<Op, string[]>>} */
const PARTIAL_ARGS = { shallow: ['--depth', '1'], blobless: ['--filter=blob:none'] };

/** @type {Map<string, Cell>} */
const cells = new Map();
/** @type {Map<string, { bytes: number, objects: number }>} */
const stored = new Map();
/** @type {string[]} */
const failures = [];

function cell(/** @type {string} */ workload, /** @type {Op} */ op, /** @type {string} */ backend) {
  const key = `${workload}|${op}|${backend}`;
  let c = cells.get(key);
  if (!c) {
    c = { samples: [], failures: [] };
    cells.set(key, c);
  }
  return c;
}

function record(/** @type {Workload} */ w, /** @type {Op} */ op, /** @type {string} */ backend, /** @type {Measured} */ m) {
  const c = cell(w.name, op, backend);
  if (m.ok) {
    c.samples.push(m);
    const stats = m.stats ? ` helper ${fmtKiB(m.stats.maxRssKiB)}` : '';
    log(`${w.name} ${backend} ${op}: ${m.wallS.toFixed(3)} s (cpu ${m.cpuS?.toFixed(2) ?? 'n/a'} s), tree RSS ${m.rssKiB ? fmtKiB(m.rssKiB) : 'n/a'}${stats}`);
  } else {
    const text = m.error ?? 'failed';
    c.failures.push(text);
    failures.push(`${w.label} / ${backend} / ${OP_LABEL[op]}:\n${text}`);
    log(`${w.name} ${backend} ${op}: FAILED\n${text}`);
  }
  return m.ok;
}

/** @param {string} backend @param {S3Services | undefined} s3 */
function envFor(backend, s3) {
  const e = baseEnv();
  if (backend === 'local') e.KMSCRYPT_KEYRING = path.join(state.tmp, 'keyring.json');
  if (backend === 's3' && s3) {
    Object.assign(e, {
      AWS_ENDPOINT_URL_S3: s3.endpoint,
      AWS_ACCESS_KEY_ID: s3.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s3.secretAccessKey,
      AWS_REGION: s3.region,
      KMSCRYPT_KMS: 'aws',
      AWS_ENDPOINT_URL_KMS: s3.kmsEndpoint,
      KMSCRYPT_KEYRING: s3.kmsKeyring,
    });
  }
  return e;
}

/**
 * One run of one workload on one backend: push, clone, incremental cycles. Backends: 'plain' (stock
 * git to a bare repository), 'plain-keep' (the same, but the remote keeps every push as a pack:
 * receive.unpackLimit=1; used for the large file), 'local' and 's3' (kmscrypt).
 */
async function runOnce(/** @type {Workload} */ w, /** @type {string} */ backend, /** @type {number} */ run, /** @type {S3Services | undefined} */ s3) {
  const dir = path.join(state.tmp, 'runs', `${w.name}-${backend}-${run}`);
  fs.mkdirSync(dir, { recursive: true });
  const pusher = path.join(dir, 'pusher.git');
  const clone = path.join(dir, 'clone.git');
  const e = envFor(backend, s3);
  const plain = backend === 'plain' || backend === 'plain-keep';
  const kmscrypt = !plain;
  const s3Name = `${w.name}-${run}-${randomBytes(3).toString('hex')}`;
  let url;
  if (plain) {
    const dest = path.join(dir, 'remote.git');
    git(['init', '--quiet', '--bare', dest]);
    git(['symbolic-ref', 'HEAD', git(['symbolic-ref', 'HEAD'], { cwd: w.source }).trim()], { cwd: dest });
    if (backend === 'plain-keep') git(['config', 'receive.unpackLimit', '1'], { cwd: dest });
    // A plain git server of partial clones must allow filters.
    git(['config', 'uploadpack.allowFilter', 'true'], { cwd: dest });
    url = dest;
  } else if (backend === 'local') {
    url = `kmscrypt::file://${path.join(dir, 'store')}`;
  } else {
    url = `kmscrypt::s3://${s3?.bucket}/${s3Name}`;
  }
  try {
    const head = makePusher(w.source, pusher);
    const branch = head;
    const pushUrl = plain ? `file://${url}` : url;
    const push = await measure(['push', '--mirror', pushUrl], { cwd: pusher, env: e, kmscrypt });
    if (!record(w, 'push', backend, push)) return;
    if (plain) stored.set(`${w.name}|${backend}`, { bytes: treeBytes(path.join(url, 'objects')), objects: 0 });
    else if (backend === 'local') stored.set(`${w.name}|local`, { bytes: treeBytes(path.join(dir, 'store')), objects: 0 });
    else if (s3) {
      const u = await s3Usage(s3, s3Name);
      stored.set(`${w.name}|s3`, { bytes: u.bytes, objects: u.objects });
    }
    for (const op of PARTIAL_OPS) {
      const target = path.join(dir, `${op}-clone`);
      const m = await measure(['clone', '--no-checkout', ...(PARTIAL_ARGS[op] ?? []), pushUrl, target], { cwd: dir, env: e, kmscrypt });
      if (m.ok) m.cloneBytes = treeBytes(path.join(target, '.git', 'objects'));
      record(w, op, backend, m);
      fs.rmSync(target, { recursive: true, force: true });
    }
    if (!OPS.some((op) => op !== 'push')) return;
    const cloneArgs = plain ? ['clone', '--mirror', '--no-local', url, clone] : ['clone', '--mirror', url, clone];
    const cl = checkedRefs(await measure(cloneArgs, { cwd: dir, env: e, kmscrypt }), pusher, clone, `${backend} clone of ${w.label}`);
    if (!record(w, 'clone', backend, cl)) return;
    for (let cycle = 1; cycle <= w.cycles; cycle++) {
      addCommit(pusher, branch, run * 100 + cycle);
      const p1 = await measure(['push', pushUrl, branch], { cwd: pusher, env: e, kmscrypt });
      if (!record(w, 'push1', backend, p1)) return;
      const f1 = checkedRefs(await measure(['fetch'], { cwd: clone, env: e, kmscrypt }), pusher, clone, `${backend} fetch into the mirror clone of ${w.label}`);
      if (!record(w, 'fetch1', backend, f1)) return;
      if (OPS.includes('noop')) {
        const nothing = await measure(['fetch'], { cwd: clone, env: e, kmscrypt });
        if (!record(w, 'noop', backend, nothing)) return;
      }
      if (OPS.includes('lsremote')) {
        const ls = await measure(['ls-remote', 'origin'], { cwd: clone, env: e, kmscrypt });
        if (!record(w, 'lsremote', backend, ls)) return;
      }
    }
    if (MANY_OPS.length > 0 && w.name === 'express' && run === 1) await manyPushes(w, backend, { dir, pusher, clone, branch, pushUrl, url, e, kmscrypt, plain });
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    if (backend === 's3' && s3) await s3Delete(s3, s3Name).catch((err) => log(`could not delete s3://${s3.bucket}/${s3Name}: ${err}`));
  }
}

/** Checks a clone's refs against the pusher's, turning a mismatch into a failed measurement. */
function checkedRefs(/** @type {Measured} */ m, /** @type {string} */ pusher, /** @type {string} */ clone, /** @type {string} */ what) {
  if (!m.ok) return m;
  try {
    compareRefs(pusher, clone, what);
  } catch (err) {
    m.ok = false;
    m.error = String(err instanceof Error ? err.message : err);
  }
  return m;
}

/**
 * settings.manyPushes one-commit pushes without gc, each measured (each adds a container and a
 * manifest to a kmscrypt store), then: the clone catching up on all of them, one more push, its
 * fetch into the now up-to-date clone, and a fresh mirror clone. The commits are made up front
 * with one `git fast-import` (not measured); each push sends `<commit>:<branch>`.
 * @param {Workload} w @param {string} backend
 * @param {{ dir: string, pusher: string, clone: string, branch: string, pushUrl: string, url: string, e: Record<string, string>, kmscrypt: boolean, plain: boolean }} c
 */
async function manyPushes(w, backend, c) {
  const n = settings.manyPushes;
  const tip = git(['rev-parse', c.branch], { cwd: c.pusher }).trim();
  const stream = [];
  for (let i = 1; i <= n; i++) {
    const date = `${1_800_000_000 + i * 60} +0000`;
    const msg = `Many pushes ${i}\n`;
    const content = `many pushes change ${i}\n`;
    stream.push(`commit refs/bench/many\ncommitter Bench <bench@example.com> ${date}\ndata ${Buffer.byteLength(msg)}\n${msg}`);
    if (i === 1) stream.push(`from ${tip}\n`);
    stream.push(`M 100644 inline bench-many/change-${i}.txt\ndata ${Buffer.byteLength(content)}\n${content}\n`);
  }
  git(['fast-import', '--quiet'], { cwd: c.pusher, input: stream.join('') });
  const commits = git(['rev-list', '--reverse', 'refs/bench/many', `^${tip}`], { cwd: c.pusher }).trim().split('\n');
  git(['update-ref', '-d', 'refs/bench/many'], { cwd: c.pusher });
  log(`${w.name} ${backend}: ${n} one-commit pushes`);
  for (const [i, commit] of commits.entries()) {
    const m = await measure(['push', '--quiet', c.pushUrl, `${commit}:${c.branch}`], { cwd: c.pusher, env: c.e, kmscrypt: c.kmscrypt });
    if (!m.ok) return void record(w, 'manyPushes', backend, m);
    cell(w.name, 'manyPushes', backend).samples.push(m);
    if ((i + 1) % 100 === 0) log(`${w.name} ${backend}: ${i + 1} of ${n} pushes (last ${m.wallS.toFixed(3)} s)`);
  }
  git(['update-ref', c.branch, commits[commits.length - 1]], { cwd: c.pusher });
  const what = `${backend} after ${n} pushes`;
  if (!record(w, 'manyCatchUp', backend, checkedRefs(await measure(['fetch'], { cwd: c.clone, env: c.e, kmscrypt: c.kmscrypt }), c.pusher, c.clone, what))) return;
  addCommit(c.pusher, c.branch, 99_999);
  if (!record(w, 'manyPush1', backend, await measure(['push', c.pushUrl, c.branch], { cwd: c.pusher, env: c.e, kmscrypt: c.kmscrypt }))) return;
  if (!record(w, 'manyFetch1', backend, checkedRefs(await measure(['fetch'], { cwd: c.clone, env: c.e, kmscrypt: c.kmscrypt }), c.pusher, c.clone, what))) return;
  const fresh = path.join(c.dir, 'many-clone.git');
  const args = c.plain ? ['clone', '--mirror', '--no-local', c.url, fresh] : ['clone', '--mirror', c.url, fresh];
  record(w, 'manyClone', backend, checkedRefs(await measure(args, { cwd: c.dir, env: c.e, kmscrypt: c.kmscrypt }), c.pusher, fresh, what));
}

// ---- report --------------------------------------------------------------------------------------------

function fmtBytes(/** @type {number} */ n) {
  if (n >= GiB) return `${(n / GiB).toFixed(2)} GiB`;
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}
function fmtCpu(/** @type {number | undefined} */ s) { return s === undefined || Number.isNaN(s) ? 'n/a' : s.toFixed(2); }
function fmtKiB(/** @type {number} */ kib) { return `${(kib / 1024).toFixed(0)} MiB`; }
function fmtS(/** @type {number} */ s) { return s < 1 ? `${s.toFixed(3)} s` : s < 100 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`; }
const mark = (/** @type {boolean} */ ok) => (ok ? '✓' : '✗');

/** Median wall time and the sample it came from (lower middle for an even count); peak RSS over all samples. */
function summary(/** @type {Cell | undefined} */ c) {
  if (!c || c.samples.length === 0) return undefined;
  const sorted = c.samples.slice().sort((a, b) => a.wallS - b.wallS);
  const mid = Math.floor((sorted.length - 1) / 2);
  const wall = sorted.length % 2 === 1 ? sorted[mid].wallS : (sorted[mid].wallS + sorted[mid + 1].wallS) / 2;
  const rss = Math.max(0, ...c.samples.map((s) => s.rssKiB ?? 0));
  const helperRss = Math.max(0, ...c.samples.map((s) => s.stats?.maxRssKiB ?? 0));
  const cpus = c.samples.map((s) => s.cpuS ?? NaN).sort((a, b) => a - b);
  const cpu = cpus.length % 2 === 1 ? cpus[mid] : (cpus[mid] + cpus[mid + 1]) / 2;
  return { wall, cpu, rss, helperRss, representative: sorted[mid], n: c.samples.length };
}

function fmtCounts(/** @type {Record<string, number> | undefined} */ counts) {
  if (!counts) return '—';
  const parts = Object.entries(counts).filter(([k, v]) => k !== 'total' && v > 0).map(([k, v]) => `${k} ${v}`);
  const total = counts.total ?? Object.entries(counts).reduce((a, [, v]) => a + v, 0);
  return parts.length === 0 ? '0' : counts.total !== undefined ? `${total}: ${parts.join(', ')}` : parts.join(', ');
}

/** Median wall and CPU time of `node -e 0`, as the measured commands run it (no NODE_EXTRA_CA_CERTS) and with the caller's NODE_EXTRA_CA_CERTS. */
function nodeStartLine() {
  const time = (/** @type {Record<string, string>} */ e) => {
    /** @type {{ wall: number, cpu: number }[]} */
    const runs = [];
    for (let i = 0; i < 7; i++) {
      const t0 = process.hrtime.bigint();
      const res = spawnSync(GNU_TIME || process.execPath, GNU_TIME ? ['-f', '%U %S', process.execPath, '-e', '0'] : ['-e', '0'], { env: e, encoding: 'utf8' });
      const wall = Number(process.hrtime.bigint() - t0) / 1e9;
      const [u, sy] = (res.stderr ?? '').trim().split('\n').pop()?.split(' ').map(Number) ?? [];
      runs.push({ wall, cpu: Number.isFinite(u) && Number.isFinite(sy) ? u + sy : NaN });
    }
    const med = (/** @type {number[]} */ v) => v.sort((a, b) => a - b)[Math.floor(v.length / 2)];
    return `${fmtS(med(runs.map((r) => r.wall)))} (CPU ${fmtCpu(med(runs.map((r) => r.cpu)))} s)`;
  };
  const extra = env.NODE_EXTRA_CA_CERTS;
  const without = time(baseEnv());
  return extra ? `${without} as the measured commands run (without NODE_EXTRA_CA_CERTS); ${time({ ...baseEnv(), NODE_EXTRA_CA_CERTS: extra })} with NODE_EXTRA_CA_CERTS=${extra} as set for this run` : `${without} (NODE_EXTRA_CA_CERTS is not set)`;
}

function machineLines(/** @type {Date} */ started, /** @type {string} */ buildNote, /** @type {number[]} */ loadStart) {
  const cpus = os.cpus();
  const nproc = spawnSync('nproc', { encoding: 'utf8' }).stdout?.trim() || String(cpus.length);
  const gitVersion = spawnSync('git', ['--version'], { encoding: 'utf8' }).stdout?.trim();
  const rev = spawnSync('git', ['-C', ROOT, 'describe', '--always', '--dirty'], { encoding: 'utf8' }).stdout?.trim() || 'unknown';
  let rgw = '';
  if (settings.backends.includes('s3')) rgw = (spawnSync('radosgw', ['--version'], { encoding: 'utf8' }).stdout ?? '').trim().split('\n')[0] ?? '';
  const load = os.loadavg();
  return [
    `- date: ${started.toISOString()} (finished ${new Date().toISOString()})`,
    `- machine: ${nproc} CPUs (${cpus[0]?.model ?? '?'}), ${fmtBytes(os.totalmem())} memory, ${os.type()} ${os.release()}`,
    `- load average (1/5/15 min): ${loadStart.map((l) => l.toFixed(2)).join(' / ')} at start, ${load.map((l) => l.toFixed(2)).join(' / ')} at end` +
      (loadStart[0] > Number(nproc) ? ' — **the machine was busy: absolute times are inflated; compare ratios**' : ''),
    `- node ${process.version}, ${gitVersion}${rgw ? `, ${rgw}` : ''}`,
    `- node start (\`node -e 0\`, median of 7): ${nodeStartLine()}`,
    `- git-remote-kmscrypt ${rev} (${buildNote})`,
    `- settings: BENCH_ONLY=${settings.only.join(',')} BENCH_OPS=${settings.ops.join(',')} BENCH_BACKENDS=${settings.backends.join(',')} BENCH_SIZE=${settings.size} ` +
      `BENCH_RUNS=${settings.runs} BENCH_LARGE_RUNS=${settings.largeRuns} BENCH_LARGE_FILE=${settings.largeFile ? 1 : 0}`,
  ];
}

/** @typedef {{ label: string, backend: string, ratio: number | undefined, ok: boolean, hasTarget: boolean }} ChartRow */

/**
 * The checks of one row of the time table: each target text, whether it is met, and the figure.
 * @param {Workload} w @param {Op} op @param {string} backend
 * @param {{ wall: number } | undefined} k kmscrypt's summary
 * @param {number | undefined} ratio kmscrypt / plain git
 * @returns {{ text: string, ok: boolean, measured: string }[]}
 */
function targetsOf(w, op, backend, k, ratio) {
  /** @type {{ text: string, ok: boolean, measured: string }[]} */
  const out = [];
  const s3 = backend === 's3';
  const seconds = (/** @type {number} */ limit) => {
    if (k) out.push({ text: `≤ ${limit.toFixed(2)} s`, ok: k.wall <= limit, measured: fmtS(k.wall) });
  };
  const times = (/** @type {number} */ limit) => {
    if (ratio !== undefined) out.push({ text: `≤ ${limit.toFixed(2)}×`, ok: ratio <= limit, measured: `${ratio.toFixed(2)}×` });
  };
  // Everyday operations have targets on the repositories users push to a hundred times a day, not on the 1.5 GiB file.
  const everyday = w.name !== 'bigfile';
  if (op === 'push') times(TARGETS.pushRatio);
  else if (op === 'clone' || op === 'manyClone') times(s3 ? TARGETS.cloneRatioS3 : TARGETS.cloneRatioLocal);
  else if ((op === 'push1' || op === 'fetch1' || op === 'manyPush1' || op === 'manyFetch1') && everyday) {
    if (s3) seconds(TARGETS.oneCommitS3Seconds);
    else {
      seconds(TARGETS.oneCommitLocalSeconds);
      times(TARGETS.oneCommitRatio);
    }
  } else if (op === 'lsremote' && everyday) seconds(s3 ? TARGETS.lsRemoteS3Seconds : TARGETS.lsRemoteLocalSeconds);
  else if (op === 'noop' && everyday && !s3) seconds(TARGETS.noopFetchLocalSeconds);
  return out;
}

/**
 * A horizontal bar chart (SVG, no dependency) of kmscrypt time / plain git time per operation
 * and backend, on a log scale, a line at 1× (plain git's time).
 * @param {ChartRow[]} rows @param {string} title
 */
function chartSvg(rows, title) {
  const lo = 0.125;
  const hi = 32;
  const labelW = 430;
  const plotW = 520;
  const barH = 10;
  const top = 58;
  const groups = [...new Set(rows.map((r) => r.label))];
  const backends = [...new Set(rows.map((r) => r.backend))];
  const groupH = backends.length * (barH + 2) + 8;
  const height = top + groups.length * groupH + 40;
  const width = labelW + plotW + 150;
  const x = (/** @type {number} */ r) => labelW + (Math.log2(Math.min(hi, Math.max(lo, r)) / lo) / Math.log2(hi / lo)) * plotW;
  const esc = (/** @type {string} */ t) => t.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/`/g, '');
  const shade = { local: ['#2e7d32', '#c62828', '#9e9e9e'], s3: ['#66bb6a', '#ef5350', '#cfcfcf'] };
  /** @type {string[]} */
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">${esc(title)}</text>`,
    `<text x="10" y="36">kmscrypt time / plain git time (log scale; left of the 1× line: faster than plain git). Green: every target of the row met; red: a target missed; grey: no target. Darker bar: local store; lighter: S3.</text>`,
  ];
  groups.forEach((_, gi) => {
    if (gi % 2 === 0) out.push(`<rect x="0" y="${top + gi * groupH - 3}" width="${width}" height="${groupH}" fill="#f4f4f4"/>`);
  });
  for (let r = lo; r <= hi; r *= 2) {
    const gx = x(r).toFixed(1);
    out.push(`<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${height - 30}" stroke="${r === 1 ? '#000' : '#ddd'}" stroke-width="${r === 1 ? 1.5 : 1}"/>`);
    out.push(`<text x="${gx}" y="${height - 16}" text-anchor="middle">${r < 1 ? r.toString() : r.toFixed(0)}×</text>`);
  }
  groups.forEach((g, gi) => {
    const y0 = top + gi * groupH;
    out.push(`<text x="${labelW - 8}" y="${y0 + (backends.length * (barH + 2)) / 2 + 3}" text-anchor="end">${esc(g)}</text>`);
    backends.forEach((b, bi) => {
      const r = rows.find((row) => row.label === g && row.backend === b);
      const y = y0 + bi * (barH + 2);
      if (!r || r.ratio === undefined) {
        out.push(`<text x="${labelW + 4}" y="${y + barH - 1}" fill="#c62828">${esc(b)}: ${r ? 'failed' : 'not run'}</text>`);
        return;
      }
      const palette = b === 's3' ? shade.s3 : shade.local;
      const fill = !r.hasTarget ? palette[2] : r.ok ? palette[0] : palette[1];
      const x0 = x(lo);
      out.push(`<rect x="${x0.toFixed(1)}" y="${y}" width="${Math.max(1, x(r.ratio) - x0).toFixed(1)}" height="${barH}" fill="${fill}"/>`);
      const mark = r.hasTarget ? (r.ok ? ' ✓' : ' ✗') : '';
      out.push(`<text x="${(x(r.ratio) + 4).toFixed(1)}" y="${y + barH - 1}">${esc(b)} ${r.ratio.toFixed(2)}×${mark}</text>`);
    });
  });
  out.push('</svg>');
  return out.join('\n') + '\n';
}

function render(/** @type {Workload[]} */ workloads, /** @type {string[]} */ head, /** @type {string} */ chartFile) {
  const L = [`# git-remote-kmscrypt benchmark`, '', ...head, ''];
  L.push('## Workloads', '');
  L.push('| workload | objects | refs | commits | git packed size (sum of the source\'s .pack files, not repacked) | source |');
  L.push('|---|---:|---:|---:|---:|---|');
  for (const w of workloads) L.push(`| ${w.label} | ${w.objects.toLocaleString('en')} | ${w.refs.toLocaleString('en')} | ${w.commits.toLocaleString('en')} | ${fmtBytes(w.packed)} (${w.packed.toLocaleString('en')} B) | ${w.note} |`);
  for (const s of skipped) L.push('', `Skipped: ${s}.`);
  L.push('');

  L.push('## Time, memory, requests', '');
  L.push('Wall time is the median over runs (see "n"); the ratio is kmscrypt / plain git in this run. ' +
    'CPU s is user + system time of the command and every child it waited for (GNU time), also a median: it is less disturbed than wall time when the machine is busy. ' +
    'Peak RSS: "tree" is GNU time\'s max RSS of the git command (the largest single process among git and the children it waited for, helper included); ' +
    '"helper" is the largest maxRssKiB any git-remote-kmscrypt process of that command reported via KMSCRYPT_STATS. ' +
    'Storage requests and KMS calls are summed over the helper processes of one run of the command.', '');
  const header = [
    '| workload | operation | backend | ratio | plain git | kmscrypt | target | n | CPU s plain / kmscrypt | peak RSS plain git (tree) | peak RSS kmscrypt: helper / tree | storage requests | KMS calls | helper processes |',
    '|---|---|---|---:|---:|---:|---|---:|---:|---:|---:|---|---|---:|',
  ];
  L.push(...header);
  /** @type {ChartRow[]} */
  const chartRows = [];
  const verdicts = { pass: 0, fail: 0 };
  /** @type {string[]} */
  const missed = [];
  const tally = (/** @type {boolean} */ ok, /** @type {string} */ what = '') => {
    if (ok) verdicts.pass++;
    else {
      verdicts.fail++;
      if (what) missed.push(what);
    }
    return mark(ok);
  };
  /** The row's figures and its targets, each checked (and counted once, here). */
  const row = (/** @type {Workload} */ w, /** @type {Op} */ op, /** @type {string} */ backend) => {
    const plain = summary(cells.get(`${w.name}|${op}|plain`));
    const kc = cells.get(`${w.name}|${op}|${backend}`);
    const k = summary(kc);
    const ratio = plain && k ? k.wall / plain.wall : undefined;
    const checks = targetsOf(w, op, backend, k, ratio);
    let target = checks.length === 0 ? '—' : checks.map((c) => `${c.text} ${tally(c.ok, `${w.label}, ${OP_LABEL[op]}, ${backend}: ${c.text} (${c.measured})`)}`).join(', ');
    if (!k && kc && kc.failures.length > 0) target = `FAILED ${tally(false, `${w.label}, ${OP_LABEL[op]}, ${backend}: failed`)}`;
    return { plain, kc, k, ratio, checks, target };
  };
  const tableRow = (/** @type {Workload} */ w, /** @type {Op} */ op, /** @type {string} */ backend) => {
    const { plain, kc, k, ratio, checks, target } = row(w, op, backend);
    let helper = k ? `${fmtKiB(k.helperRss)} / ${k.rss ? fmtKiB(k.rss) : 'n/a'}` : '—';
    if (k && w.large && !op.startsWith('many')) helper += ` (≤ ${TARGETS.helperRssMiB} MiB ${tally(k.helperRss / 1024 <= TARGETS.helperRssMiB, `${w.label}, ${OP_LABEL[op]}, ${backend}: helper peak RSS ≤ ${TARGETS.helperRssMiB} MiB`)})`;
    const kmsText = k ? (kc && kc.failures.length > 0 ? `${fmtS(k.wall)} (+${kc.failures.length} failed)` : fmtS(k.wall)) : kc && kc.failures.length > 0 ? '**FAILED**' : 'not run';
    chartRows.push({ label: `${w.label}: ${OP_SHORT[op]}`, backend, ratio, ok: checks.every((c) => c.ok) && k !== undefined, hasTarget: checks.length > 0 });
    return (
      `| ${w.label} | ${OP_LABEL[op]} | ${backend} | ${ratio !== undefined ? `**${ratio.toFixed(2)}×**` : '—'} | ${plain ? fmtS(plain.wall) : '—'} | ${kmsText} | ${target} | ` +
      `${k ? k.n : 0} | ${fmtCpu(plain?.cpu)} / ${fmtCpu(k?.cpu)}${plain?.cpu && k?.cpu ? ` (${(k.cpu / plain.cpu).toFixed(2)}×)` : ''} | ${plain && plain.rss ? fmtKiB(plain.rss) : 'n/a'} | ${helper} | ` +
      `${k ? fmtCounts(k.representative.stats?.storage) : '—'} | ${k ? fmtCounts(k.representative.stats?.kms) : '—'} | ${k ? (k.representative.stats?.helpers ?? 0) : '—'} |`
    );
  };
  for (const w of workloads) {
    for (const op of OPS) {
      for (const backend of settings.backends) L.push(tableRow(w, op, backend));
    }
  }
  L.push('');

  L.push('## Bytes stored after the initial push', '');
  L.push('kmscrypt: sum of the sizes of every object in the store (local: every file under the store directory, like `du -sb`; S3: sizes from ListObjectsV2). ' +
    'Compared with git\'s packed size: the sum of the source repository\'s existing .pack files (not repacked for the benchmark). ' +
    'Plain git: every file under objects/ of the bare remote after `git push --mirror`.', '');
  L.push('| workload | backend | stored | git packed | ratio | target | plain git remote (objects/) |');
  L.push('|---|---|---:|---:|---:|---|---:|');
  for (const w of workloads) {
    const plain = stored.get(`${w.name}|plain`);
    for (const backend of settings.backends) {
      const s = stored.get(`${w.name}|${backend}`);
      const ratio = s ? s.bytes / w.packed : undefined;
      L.push(`| ${w.label} | ${backend} | ${s ? `${fmtBytes(s.bytes)}${s.objects ? ` in ${s.objects} objects` : ''}` : '—'} | ${fmtBytes(w.packed)} | ` +
        `${ratio !== undefined ? `${ratio.toFixed(3)}×` : '—'} | ${ratio !== undefined ? `≤ ${TARGETS.storedRatio.toFixed(2)}× ${tally(ratio <= TARGETS.storedRatio, `${w.label}, bytes stored, ${backend}: ≤ ${TARGETS.storedRatio.toFixed(2)}× (${ratio.toFixed(3)}×)`)}` : '—'} | ${plain ? fmtBytes(plain.bytes) : '—'} |`);
    }
  }
  L.push('');

  const express = workloads.find((w) => w.name === 'express');
  const large = workloads.find((w) => w.name === 'large');
  if (express && large && (OPS.includes('push1') || OPS.includes('fetch1'))) {
    L.push('## Cost against history size', '');
    L.push(`One-commit push and fetch on ${large.label} (${large.objects.toLocaleString('en')} objects, ${large.refs.toLocaleString('en')} refs) against express ` +
      `(${express.objects.toLocaleString('en')} objects, ${express.refs.toLocaleString('en')} refs), kmscrypt, same backend: the cost must not grow with the history ` +
      `(target ≤ ${TARGETS.growthRatio.toFixed(2)}×). Plain git's own growth is shown beside it.`, '');
    L.push('| operation | backend | express | large | large / express | target | plain git: express / large (large / express) | CPU s kmscrypt: express / large |');
    L.push('|---|---|---:|---:|---:|---|---:|---:|');
    for (const op of /** @type {Op[]} */ (['push1', 'fetch1', 'noop', 'lsremote']).filter((o) => OPS.includes(o))) {
      const pe = summary(cells.get(`express|${op}|plain`));
      const pl = summary(cells.get(`large|${op}|plain`));
      for (const backend of settings.backends) {
        const ke = summary(cells.get(`express|${op}|${backend}`));
        const kl = summary(cells.get(`large|${op}|${backend}`));
        const growth = ke && kl ? kl.wall / ke.wall : undefined;
        const governed = op === 'push1' || op === 'fetch1';
        const target = growth === undefined || !governed ? '—' : `≤ ${TARGETS.growthRatio.toFixed(2)}× ${tally(growth <= TARGETS.growthRatio, `${OP_LABEL[op]}, ${backend}: large ≤ ${TARGETS.growthRatio.toFixed(2)}× express (${growth.toFixed(2)}×)`)}`;
        L.push(`| ${OP_LABEL[op]} | ${backend} | ${ke ? fmtS(ke.wall) : '—'} | ${kl ? fmtS(kl.wall) : '—'} | ${growth !== undefined ? `**${growth.toFixed(2)}×**` : '—'} | ${target} | ` +
          `${pe ? fmtS(pe.wall) : '—'} / ${pl ? fmtS(pl.wall) : '—'}${pe && pl ? ` (${(pl.wall / pe.wall).toFixed(2)}×)` : ''} | ${fmtCpu(ke?.cpu)} / ${fmtCpu(kl?.cpu)} |`);
      }
    }
    L.push('');
  }

  if (MANY_OPS.length > 0 && express) {
    L.push(`## After ${settings.manyPushes.toLocaleString('en')} one-commit pushes without gc`, '');
    L.push(`On express (first run), after the rows above: ${settings.manyPushes.toLocaleString('en')} one-commit pushes, one after the other, each measured (a kmscrypt store gains a container ` +
      `and a manifest with each; no gc), then the mirror clone catches up on all of them, one more commit is pushed and fetched into the up-to-date clone, ` +
      'and a fresh mirror clone is made. Same targets as the one-commit rows and the full clone above. Plain git pushes to its bare repository the same way.', '');
    L.push(...header);
    for (const op of MANY_OPS) {
      for (const backend of settings.backends) L.push(tableRow(express, op, backend));
    }
    L.push('');
    // The median hides the pushes that also merge containers (a tail merge, docs/FORMAT.md §8.1).
    L.push(`The ${settings.manyPushes.toLocaleString('en')} pushes one by one (wall time): median, 90th and 99th percentile, slowest; the slowest kmscrypt pushes are those that also merged the newest containers.`, '');
    L.push('| pushes by | median | p90 | p99 | slowest |', '|---|---:|---:|---:|---:|');
    for (const [label, backend] of [['plain git', 'plain'], ...settings.backends.map((b) => [`kmscrypt ${b}`, b])]) {
      const walls = (cells.get(`${express.name}|manyPushes|${backend}`)?.samples ?? []).map((m) => m.wallS).sort((a, b) => a - b);
      if (walls.length === 0) continue;
      const at = (/** @type {number} */ q) => walls[Math.min(walls.length - 1, Math.floor(q * walls.length))];
      L.push(`| ${label} | ${fmtS(at(0.5))} | ${fmtS(at(0.9))} | ${fmtS(at(0.99))} | ${fmtS(walls[walls.length - 1])} |`);
    }
    L.push('');
  }

  if (PARTIAL_OPS.length > 0) {
    L.push('## Shallow and partial clones', '');
    L.push('`git clone --no-checkout` with `--depth 1` or `--filter=blob:none`, of the store the initial push made (plain git: of the bare repository it pushed to, ' +
      'over `file://`, with `uploadpack.allowFilter=true`). Bytes read: what every helper process of the command received from the store (KMSCRYPT_STATS), ' +
      'and its share of the bytes stored; in the clone: every file under `.git/objects`. Without a checkout no lazy fetch happens: one helper process.', '');
    L.push('| workload | clone | backend | ratio | plain git | kmscrypt | n | bytes read from the store (share of stored) | in the clone: plain git / kmscrypt | storage requests | helper peak RSS |');
    L.push('|---|---|---|---:|---:|---:|---:|---:|---:|---|---:|');
    for (const w of workloads) {
      if (w.name === 'bigfile') continue;
      for (const op of PARTIAL_OPS) {
        const plain = summary(cells.get(`${w.name}|${op}|plain`));
        for (const backend of settings.backends) {
          const kc = cells.get(`${w.name}|${op}|${backend}`);
          const k = summary(kc);
          const st = stored.get(`${w.name}|${backend}`);
          const read = k?.representative.stats?.bytesRead;
          const share = read !== undefined && st ? ` (${((100 * read) / st.bytes).toFixed(1)}%)` : '';
          const kmsText = k ? fmtS(k.wall) : kc && kc.failures.length > 0 ? '**FAILED**' : 'not run';
          L.push(`| ${w.label} | ${OP_LABEL[op]} | ${backend} | ${plain && k ? `**${(k.wall / plain.wall).toFixed(2)}×**` : '—'} | ${plain ? fmtS(plain.wall) : '—'} | ${kmsText} | ${k ? k.n : 0} | ` +
            `${read !== undefined ? fmtBytes(read) + share : '—'} | ${plain?.representative.cloneBytes !== undefined ? fmtBytes(plain.representative.cloneBytes) : '—'} / ${k?.representative.cloneBytes !== undefined ? fmtBytes(k.representative.cloneBytes) : '—'} | ` +
            `${k ? fmtCounts(k.representative.stats?.storage) : '—'} | ${k ? fmtKiB(k.helperRss) : '—'} |`);
        }
      }
    }
    L.push('');
  }

  const big = workloads.find((w) => w.name === 'bigfile');
  if (big && big.fileBytes) {
    const fileMiB = big.fileBytes / MiB;
    L.push(`## Large-object throughput (${fmtBytes(big.fileBytes)} random file)`, '');
    L.push('File size in MiB divided by the wall time of the whole command (one run). Two plain git baselines: stock git, whose remote ' +
      'explodes a push of fewer than 100 objects into loose objects (receive.unpackLimit=100: zlib over the whole file at push, and again when ' +
      'the clone packs it), and a remote set to keep the pack (receive.unpackLimit=1), which is what a hosting server does. ' +
      'The ratios in the tables above are against stock git; the last column is against the pack-keeping remote.', '');
    L.push('| operation | backend | plain git (stock) | plain git (remote keeps the pack) | kmscrypt | kmscrypt time / pack-keeping plain git time |');
    L.push('|---|---|---:|---:|---:|---:|');
    const rate = (/** @type {{ wall: number } | undefined} */ x) => (x ? `${(fileMiB / x.wall).toFixed(0)} MiB/s (${fmtS(x.wall)})` : '—');
    for (const op of /** @type {Op[]} */ (['push', 'clone'])) {
      const plain = summary(cells.get(`bigfile|${op}|plain`));
      const keep = summary(cells.get(`bigfile|${op}|plain-keep`));
      for (const backend of settings.backends) {
        const k = summary(cells.get(`bigfile|${op}|${backend}`));
        L.push(`| ${OP_LABEL[op]} | ${backend} | ${rate(plain)} | ${rate(keep)} | ${rate(k)} | ${k && keep ? `${(k.wall / keep.wall).toFixed(2)}×` : '—'} |`);
      }
    }
    L.push('');
  }

  L.push('## Targets', '');
  L.push(`${verdicts.pass} met, ${verdicts.fail} missed. The targets: initial push ≤ ${TARGETS.pushRatio}× plain git; full mirror clone ≤ ${TARGETS.cloneRatioLocal.toFixed(2)}× (local) and ` +
    `≤ ${TARGETS.cloneRatioS3.toFixed(2)}× (S3); push and fetch of one commit on express and the large repository ≤ ${TARGETS.oneCommitLocalSeconds} s and ≤ ${TARGETS.oneCommitRatio}× (local), ` +
    `≤ ${TARGETS.oneCommitS3Seconds} s (S3), and on the large repository ≤ ${TARGETS.growthRatio}× their time on express; \`git ls-remote\` ≤ ${TARGETS.lsRemoteLocalSeconds} s (local), ` +
    `≤ ${TARGETS.lsRemoteS3Seconds} s (S3); a no-op fetch ≤ ${TARGETS.noopFetchLocalSeconds} s (local); the same after ${settings.manyPushes.toLocaleString('en')} one-commit pushes without gc; ` +
    `bytes stored ≤ ${TARGETS.storedRatio}× git's packed size; helper peak RSS ≤ ${TARGETS.helperRssMiB} MiB on the large repository and the large file.`, '');
  if (missed.length > 0) L.push('Missed:', '', ...missed.map((m) => `- ${m}`), '');
  if (chartRows.length > 0) {
    L.push(`![kmscrypt time / plain git time per operation](${chartFile})`, '');
    L.push(`[${chartFile}](${chartFile}): kmscrypt time / plain git time per operation, log scale; green: every target of the row met, red: one missed, grey: no target.`, '');
  }

  if (failures.length > 0) {
    L.push('## Failures', '');
    for (const f of failures) L.push('```', f, '```', '');
  }
  L.push('## Method', '');
  L.push(
    '- Every command runs with `GIT_CONFIG_NOSYSTEM=1`, a temporary `HOME` (its config sets only `gc.auto=0` and `maintenance.auto=false`, for both plain git and kmscrypt), the project\'s `bin/` first on `PATH`, under GNU time; wall time is `process.hrtime` around the spawned command.',
    '- Pushes start from a throwaway bare repository holding the source\'s refs and borrowing its objects (objects/info/alternates); the source is never written to.',
    '- plain git: `git push --mirror file://<fresh bare repo>`, `git clone --mirror --no-local <that repo>`, `git push file://<it> <default branch>`, `git fetch` in the clone — all on local disk. ' +
      'kmscrypt: the same commands with `kmscrypt::file://<dir>` (local keyring) or `kmscrypt::s3://<bucket>/<name>` (Ceph RGW on loopback, local KMS endpoint); the S3 rows are compared with the same local-disk plain git figures.',
    '- After every clone and fetch, `git for-each-ref` of the clone must equal the pusher\'s (a mismatch is a failure).',
    '- Peak RSS from GNU time counts the pages of pack files git has mmapped (git maps packs in windows of up to 1 GiB), so git\'s own figures on the large file reach its size without that much heap; the helper\'s figure is Node\'s maxRSS of the helper process alone (not the git commands it runs).',
    `- Runs: ${settings.runs} for express (push, clone, one incremental cycle each), ${settings.largeRuns} for the large repository and the large file, with ${settings.runs} incremental cycles each; incremental rows are medians over all cycles.`,
  );
  return { report: L.join('\n') + '\n', chartRows };
}

// ---- main ------------------------------------------------------------------------------------------------

function build() {
  if (!settings.build) return 'not rebuilt (BENCH_NO_BUILD=1)';
  log('building (tsc -p tsconfig.json)');
  const res = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', path.join(ROOT, 'tsconfig.json'), '--pretty', 'false'], { cwd: ROOT, encoding: 'utf8' });
  if (res.status === 0) return 'built with tsc';
  if (!fs.existsSync(path.join(ROOT, 'dist/cli/git-remote-kmscrypt.js'))) fatal(`tsc failed and dist/ is missing:\n${res.stdout}${res.stderr}`);
  const first = `${res.stdout}${res.stderr}`.trim().split('\n').slice(0, 5).join('\n');
  log(`WARNING: tsc reported errors; dist/ was still emitted and is what gets measured:\n${first}`);
  return `built with tsc, which reported type errors: ${first.split('\n')[0]}`;
}

function ensureGnuTime() {
  if (fs.existsSync(GNU_TIME)) return;
  if (process.getuid && process.getuid() === 0) {
    log('installing GNU time (apt-get install time) for peak RSS of plain git');
    let res = spawnSync('apt-get', ['install', '-y', '-qq', 'time'], { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (res.status !== 0) {
      spawnSync('apt-get', ['update', '-qq'], { encoding: 'utf8' });
      res = spawnSync('apt-get', ['install', '-y', '-qq', 'time'], { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    }
  }
  if (!fs.existsSync(GNU_TIME)) {
    log('WARNING: /usr/bin/time (GNU time) is missing and could not be installed: peak RSS of git will show n/a');
    GNU_TIME = '';
  }
}

async function main() {
  const started = new Date();
  const loadStart = os.loadavg();
  const buildNote = build();
  ensureGnuTime();
  state.tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kmscrypt-bench-'));
  for (const d of ['home/.config', 'tmp', 'logs', 'sources', 'runs']) fs.mkdirSync(path.join(state.tmp, d), { recursive: true });
  fs.writeFileSync(path.join(state.tmp, 'home', '.gitconfig'), '[gc]\n\tauto = 0\n[maintenance]\n\tauto = false\n[init]\n\tdefaultBranch = main\n');

  const workloads = await prepareWorkloads();
  if (workloads.length === 0) fatal('no workload to run');
  /** @type {S3Services | undefined} */
  let s3;
  if (settings.backends.includes('s3')) {
    try {
      s3 = await startS3();
    } catch (err) {
      const text = err instanceof Error ? err.message : String(err);
      failures.push(`S3 backend: could not start Ceph RGW or the local KMS, so no S3 figures:\n${text}`);
      log(`S3 backend DISABLED: ${text}`);
      settings.backends = settings.backends.filter((b) => b !== 's3');
    }
  }

  for (const w of workloads) {
    log(`== ${w.label}: ${w.objects} objects, ${w.refs} refs, ${fmtBytes(w.packed)} packed; ${w.runs} run(s), ${w.cycles} incremental cycle(s) per run`);
    for (let run = 1; run <= w.runs; run++) {
      for (const backend of ['plain', ...(w.name === 'bigfile' ? ['plain-keep'] : []), ...settings.backends]) {
        try {
          await runOnce(w, backend, run, s3);
        } catch (err) {
          if (backend.startsWith('plain')) throw err;
          const text = err instanceof Error ? err.message : String(err);
          failures.push(`${w.label} / ${backend} / run ${run}:\n${text}`);
          log(`${w.name} ${backend}: FAILED: ${text}`);
        }
      }
    }
  }

  fs.mkdirSync(settings.outDir, { recursive: true });
  const stamp = started.toISOString().replace(/:/g, '').replace(/\..*$/, 'Z');
  const { report, chartRows } = render(workloads, machineLines(started, buildNote, loadStart), `${stamp}.svg`);
  const file = path.join(settings.outDir, `${stamp}.md`);
  fs.writeFileSync(file, report);
  if (chartRows.length > 0) fs.writeFileSync(path.join(settings.outDir, `${stamp}.svg`), chartSvg(chartRows, `git-remote-kmscrypt vs plain git, ${started.toISOString().slice(0, 16)}Z (${settings.size})`));
  if (s3) s3.client.destroy();
  process.stdout.write(report);
  log(`results written to ${path.relative(process.cwd(), file) || file}`);
  if (failures.length > 0) {
    log(`${failures.length} FAILURE(S): see the Failures section`);
    process.exitCode = 1;
  }
}

main().then(
  () => cleanupSync(),
  (err) => {
    log(`FAILED: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    cleanupSync();
    process.exit(1);
  },
);
