// @ts-check
'use strict';
/*
 * Starts and stops the servers that the tests (test/support/services.ts) and the benchmark
 * (bench/run.js) run against: a throwaway Ceph RGW (scripts/rgw/start-rgw.sh) and
 * `git kmscrypt local-kms`, both on loopback, both detached, with everything they write under
 * one directory (`root`) so that stopServices(root) undoes exactly them.
 *
 * Plain JavaScript (type-checked with checkJs) because the benchmark runs under plain node.
 */
const { spawn, spawnSync } = require('node:child_process');
const { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } = require('node:fs');
const { createServer } = require('node:net');
const { tmpdir } = require('node:os');
const { join, resolve } = require('node:path');

const PROJECT_ROOT = resolve(__dirname, '..', '..');
const OSD_PORTS = 32;

/**
 * @typedef {{ endpoint: string, accessKeyId: string, secretAccessKey: string, region: string }} S3Service
 * @typedef {{ endpoint: string, keyringPath: string, credentialsPath: string, region: string }} KmsService
 * @typedef {{ s3: S3Service, kms: KmsService, rgwDir: string, kmsPid: number }} StartedServices
 */

/**
 * One directory per `tap` run, named after the tap runner's pid: the before/after scripts and
 * every test process are its direct children, so they all agree without any shared fixed name,
 * and two runs at once (even in one tree) do not meet.
 */
function servicesRoot(runnerPid = process.ppid) {
  return join(tmpdir(), `kmscrypt-services-${runnerPid}`);
}

/** @returns {Promise<boolean>} */
function portFree(/** @type {number} */ port) {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

/** @returns {Promise<number>} */
function freePort() {
  return new Promise((done, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? done(address.port) : fail(new Error('no port'))));
    });
  });
}

/** A random range below the kernel's ephemeral ports (where freePort's come from), all free now. */
async function freeOsdRange() {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * (12000 - OSD_PORTS));
    let ok = true;
    for (let p = base; ok && p < base + OSD_PORTS; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error(`no ${OSD_PORTS} consecutive free ports between 20000 and 32000 for the Ceph OSD`);
}

function tail(/** @type {string} */ file, lines = 25) {
  return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '';
}

/** @returns {Promise<{ code: number | null, stdout: string }>} */
function run(/** @type {string} */ command, /** @type {string[]} */ args, /** @type {NodeJS.ProcessEnv} */ env, /** @type {string} */ logFile) {
  return new Promise((done, fail) => {
    const logFd = openSync(logFile, 'a');
    const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', logFd] });
    closeSync(logFd);
    let stdout = '';
    child.stdout?.on('data', (/** @type {Buffer} */ chunk) => (stdout += chunk.toString()));
    child.once('error', fail);
    child.once('close', (code) => done({ code, stdout }));
  });
}

/**
 * @param {string} root
 * @param {{ memstoreBytes?: number, startTimeoutS?: number, log: (line: string) => void }} opts
 * @returns {Promise<S3Service>}
 */
async function startRgw(root, opts) {
  const logFile = join(root, 'start-rgw.log');
  for (let attempt = 1; ; attempt++) {
    const osdBase = await freeOsdRange();
    /** @type {NodeJS.ProcessEnv} */
    const env = {
      ...process.env,
      RGW_DIR: join(root, 'rgw'),
      RGW_PORT: String(await freePort()),
      RGW_MON_PORT: String(await freePort()),
      RGW_OSD_PORT_MIN: String(osdBase),
      RGW_OSD_PORT_MAX: String(osdBase + OSD_PORTS - 1),
    };
    if (opts.startTimeoutS !== undefined) env.RGW_START_TIMEOUT = String(opts.startTimeoutS);
    if (opts.memstoreBytes !== undefined) env.RGW_MEMSTORE_BYTES = String(opts.memstoreBytes);
    opts.log(`starting Ceph RGW (scripts/rgw/start-rgw.sh, RGW_DIR=${env.RGW_DIR}, port ${env.RGW_PORT})`);
    const { code, stdout } = await run('bash', [join(PROJECT_ROOT, 'scripts/rgw/start-rgw.sh')], env, logFile);
    if (code === 0) {
      /** @type {Record<string, string>} */
      const vars = Object.fromEntries(
        stdout
          .split('\n')
          .filter((l) => l.includes('='))
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      return {
        endpoint: vars.S3_ENDPOINT,
        accessKeyId: vars.AWS_ACCESS_KEY_ID,
        secretAccessKey: vars.AWS_SECRET_ACCESS_KEY,
        region: vars.AWS_REGION || 'us-east-1',
      };
    }
    // Another run may have taken a port between our check and the daemon's bind.
    if (attempt < 3 && /already in use|timeout waiting/.test(tail(logFile, 40))) {
      opts.log(`RGW start failed (attempt ${attempt}), retrying on other ports`);
      continue;
    }
    throw new Error(`scripts/rgw/start-rgw.sh failed (exit ${code}); its log, ${logFile}:\n${tail(logFile)}`);
  }
}

/**
 * @param {string} root
 * @param {NodeJS.ProcessEnv} env
 * @returns {Promise<KmsService & { pid: number }>}
 */
async function startKms(root, env) {
  const keyringPath = join(root, 'keyring.json');
  const outFile = join(root, 'kms.out');
  const errFile = join(root, 'kms.err');
  const out = openSync(outFile, 'w');
  const err = openSync(errFile, 'w');
  // Detached, with output in files rather than pipes, so it outlives the process that started it
  // (a test process, while other test processes still use it) without holding anyone's stdio.
  const child = spawn(process.execPath, [join(PROJECT_ROOT, 'bin/git-kmscrypt'), 'local-kms', '--port', '0', '--keyring', keyringPath], {
    cwd: PROJECT_ROOT,
    env,
    detached: true,
    stdio: ['ignore', out, err],
  });
  closeSync(out);
  closeSync(err);
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not spawn node bin/git-kmscrypt local-kms');
  writeFileSync(join(root, 'kms.pid'), String(pid));
  /** @type {number | null | undefined} */
  let exited;
  child.once('exit', (code) => (exited = code));
  child.unref();
  const deadline = Date.now() + 30_000;
  for (;;) {
    // It answers only requests signed with the credentials it names (beside the keyring).
    const out = readFileSync(outFile, 'utf8');
    const endpoint = /^KMS_ENDPOINT=(\S+)$/m.exec(out);
    const credentials = /^KMS_CREDENTIALS_FILE=(\S+)$/m.exec(out);
    if (endpoint && credentials) return { endpoint: endpoint[1], keyringPath, credentialsPath: credentials[1], region: 'us-east-1', pid };
    if (exited !== undefined) throw new Error(`node bin/git-kmscrypt local-kms exited (${exited}) before printing KMS_ENDPOINT:\n${tail(errFile)}`);
    if (Date.now() > deadline) throw new Error(`node bin/git-kmscrypt local-kms printed no KMS_ENDPOINT within 30 s:\n${tail(errFile)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Starts RGW, then the local KMS, under `root` (created if missing). On failure, stops whatever
 * it started and throws with the failing daemon's log.
 * @param {string} root
 * @param {{ kmsEnv: NodeJS.ProcessEnv, memstoreBytes?: number, rgwStartTimeoutS?: number, log: (line: string) => void }} opts
 * @returns {Promise<StartedServices>}
 */
async function startServices(root, opts) {
  mkdirSync(root, { recursive: true });
  try {
    const s3 = await startRgw(root, { memstoreBytes: opts.memstoreBytes, startTimeoutS: opts.rgwStartTimeoutS, log: opts.log });
    const { pid: kmsPid, ...kms } = await startKms(root, opts.kmsEnv);
    return { s3, kms, rgwDir: join(root, 'rgw'), kmsPid };
  } catch (err) {
    stopServices(root);
    throw err;
  }
}

/** True while a process with this pid exists (even one we may not signal). */
function isAlive(/** @type {number} */ pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM';
  }
}

/** A pid is ours only while its command line still names something inside `root`. */
function runsFrom(/** @type {number} */ pid, /** @type {string} */ root) {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8')
      .split('\0')
      .some((arg) => arg.startsWith(root + '/'));
  } catch {
    return false;
  }
}

function sleepSync(/** @type {number} */ ms) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function stopKms(/** @type {string} */ root) {
  const pidFile = join(root, 'kms.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  if (!Number.isInteger(pid) || pid <= 0 || !runsFrom(pid, root)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && runsFrom(pid, root); i++) sleepSync(100);
  if (runsFrom(pid, root)) process.kill(pid, 'SIGKILL');
}

/** @returns {boolean} */
function stopRgw(/** @type {string} */ root) {
  const rgwDir = join(root, 'rgw');
  if (!existsSync(join(rgwDir, 'ceph.conf'))) return true;
  const res = spawnSync('bash', [join(PROJECT_ROOT, 'scripts/rgw/stop-rgw.sh'), '--purge'], { env: { ...process.env, RGW_DIR: rgwDir }, encoding: 'utf8' });
  if (res.status === 0) return true;
  process.stderr.write(`stop-rgw.sh failed (${res.status}); keeping ${root} and its pid files:\n${res.stdout}${res.stderr}`);
  return false;
}

/**
 * Stops the KMS and RGW started under `root` (by pid file, checked against /proc), synchronously
 * so that it can run in an exit handler. False when RGW would not stop (its files are kept).
 */
function stopServices(/** @type {string} */ root) {
  stopKms(root);
  return stopRgw(root);
}

module.exports = { PROJECT_ROOT, freePort, isAlive, servicesRoot, startServices, stopServices };
