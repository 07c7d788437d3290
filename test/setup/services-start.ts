// tap `before` script: starts, once per test run, the services the tests share (a Ceph RGW for
// S3 and `git kmscrypt local-kms`) and writes test/support/services.ts's JSON file. Fails the
// run when they cannot start: tests that need them must fail, not skip.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { type ServicesFile, servicesFilePath, servicesRoot } from '../support/services';
import { stopServicesIn } from './services-stop';

const PROJECT_ROOT = resolve(__dirname, '..', '..');
const OSD_PORTS = 32;

function log(line: string): void {
  process.stderr.write(`services-start: ${line}\n`);
}

function portFree(port: number): Promise<boolean> {
  return new Promise((done) => {
    const server = createServer();
    server.once('error', () => done(false));
    server.listen(port, '127.0.0.1', () => server.close(() => done(true)));
  });
}

function freePort(): Promise<number> {
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
async function freeOsdRange(): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 20000 + Math.floor(Math.random() * (12000 - OSD_PORTS));
    let ok = true;
    for (let p = base; ok && p < base + OSD_PORTS; p++) ok = await portFree(p);
    if (ok) return base;
  }
  throw new Error(`no ${OSD_PORTS} consecutive free ports between 20000 and 32000 for the Ceph OSD`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Runs interrupted before their `after` script (Ctrl-C, a killed runner) leave daemons behind. */
async function stopAbandonedRuns(): Promise<void> {
  for (const name of readdirSync(tmpdir())) {
    const m = /^kmscrypt-services-(\d+)$/.exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    log(`stopping services left by an interrupted run (${name})`);
    await stopServicesIn(join(tmpdir(), name));
  }
}

function run(command: string, args: string[], env: NodeJS.ProcessEnv, logFile: string): Promise<{ code: number | null; stdout: string }> {
  return new Promise((done, fail) => {
    const logFd = openSync(logFile, 'a');
    const child = spawn(command, args, { cwd: PROJECT_ROOT, env, stdio: ['ignore', 'pipe', logFd] });
    closeSync(logFd);
    let stdout = '';
    child.stdout?.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.once('error', fail);
    child.once('close', (code) => done({ code, stdout }));
  });
}

function tail(file: string, lines = 25): string {
  return existsSync(file) ? readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n') : '';
}

async function startRgw(root: string): Promise<ServicesFile['s3']> {
  const logFile = join(root, 'start-rgw.log');
  for (let attempt = 1; ; attempt++) {
    const env = {
      ...process.env,
      RGW_DIR: join(root, 'rgw'),
      RGW_PORT: String(await freePort()),
      RGW_MON_PORT: String(await freePort()),
      RGW_START_TIMEOUT: '60',
    };
    const osdBase = await freeOsdRange();
    Object.assign(env, { RGW_OSD_PORT_MIN: String(osdBase), RGW_OSD_PORT_MAX: String(osdBase + OSD_PORTS - 1) });
    const { code, stdout } = await run('bash', [join(PROJECT_ROOT, 'scripts/rgw/start-rgw.sh')], env, logFile);
    if (code === 0) {
      const vars = Object.fromEntries(stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      return { endpoint: vars.S3_ENDPOINT, accessKeyId: vars.AWS_ACCESS_KEY_ID, secretAccessKey: vars.AWS_SECRET_ACCESS_KEY, region: vars.AWS_REGION };
    }
    // Another run may have taken a port between our check and the daemon's bind.
    if (attempt < 3 && /already in use|timeout waiting/.test(tail(logFile, 40))) {
      log(`RGW start failed (attempt ${attempt}), retrying on other ports`);
      continue;
    }
    throw new Error(`scripts/rgw/start-rgw.sh failed (exit ${code}); its log, ${logFile}:\n${tail(logFile)}`);
  }
}

/** True when every src/**.ts has a dist/**.js at least as new. */
function distIsFresh(dir = join(PROJECT_ROOT, 'src')): boolean {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (!distIsFresh(path)) return false;
    } else if (entry.name.endsWith('.ts')) {
      const built = join(PROJECT_ROOT, 'dist', relative(join(PROJECT_ROOT, 'src'), path)).replace(/\.ts$/, '.js');
      if (!existsSync(built) || statSync(built).mtimeMs < statSync(path).mtimeMs) return false;
    }
  }
  return true;
}

/** bin/git-kmscrypt runs dist/, so the tests exercise what the sources say only after a build. */
async function buildDist(root: string): Promise<void> {
  if (distIsFresh()) return;
  const logFile = join(root, 'tsc.log');
  const { code } = await run(process.execPath, [join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(PROJECT_ROOT, 'tsconfig.json'), '--pretty', 'false'], process.env, logFile);
  // tsc emits despite type errors; typechecking is `npm run typecheck`'s job, so report and go on.
  if (code !== 0) log(`tsc reported errors (dist/ was still written):\n${tail(logFile, 15)}`);
}

async function startKms(root: string): Promise<ServicesFile['kms'] & { pid: number }> {
  const keyringPath = join(root, 'keyring.json');
  const outFile = join(root, 'kms.out');
  const errFile = join(root, 'kms.err');
  const out = openSync(outFile, 'w');
  const err = openSync(errFile, 'w');
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('KMSCRYPT_')));
  // Detached, with output in files rather than pipes, so it outlives this script without holding tap's stdio.
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
  let exited: number | null | undefined;
  child.once('exit', (code) => (exited = code));
  child.unref();
  const deadline = Date.now() + 30_000;
  for (;;) {
    const m = /^KMS_ENDPOINT=(\S+)$/m.exec(readFileSync(outFile, 'utf8'));
    if (m) return { endpoint: m[1], keyringPath, pid };
    if (exited !== undefined) throw new Error(`node bin/git-kmscrypt local-kms exited (${exited}) before printing KMS_ENDPOINT:\n${tail(errFile)}`);
    if (Date.now() > deadline) throw new Error(`node bin/git-kmscrypt local-kms printed no KMS_ENDPOINT within 30 s:\n${tail(errFile)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const runnerPid = process.ppid;
  await stopAbandonedRuns();
  const root = servicesRoot(runnerPid);
  await stopServicesIn(root);
  mkdirSync(root, { recursive: true });
  try {
    const [s3] = await Promise.all([startRgw(root), buildDist(root)]);
    const { pid: kmsPid, ...kms } = await startKms(root);
    const file: ServicesFile = { runnerPid, root, rgwDir: join(root, 'rgw'), kmsPid, s3, kms };
    const path = servicesFilePath(runnerPid);
    writeFileSync(`${path}.tmp`, JSON.stringify(file, null, 2) + '\n');
    renameSync(`${path}.tmp`, path);
    log(`S3 (Ceph RGW) ${s3.endpoint}, KMS ${kms.endpoint}, ready in ${((Date.now() - started) / 1000).toFixed(1)} s (${path})`);
  } catch (err) {
    await stopServicesIn(root);
    throw err;
  }
}

main().catch((err: unknown) => {
  log(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
