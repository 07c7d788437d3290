// tap `after` script: stops what services-start started for this run, and only that.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { servicesRoot } from '../support/services';

const PROJECT_ROOT = resolve(__dirname, '..', '..');

/** A pid is ours only while its command line still names something inside `root`. */
function runsFrom(pid: number, root: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.startsWith(root + '/'));
  } catch {
    return false;
  }
}

async function stopKms(root: string): Promise<void> {
  const pidFile = join(root, 'kms.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8'));
  if (!Number.isInteger(pid) || pid <= 0 || !runsFrom(pid, root)) return;
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 50 && runsFrom(pid, root); i++) await new Promise((r) => setTimeout(r, 100));
  if (runsFrom(pid, root)) process.kill(pid, 'SIGKILL');
}

function stopRgw(root: string): boolean {
  const rgwDir = join(root, 'rgw');
  if (!existsSync(join(rgwDir, 'ceph.conf'))) return true;
  const res = spawnSync('bash', [join(PROJECT_ROOT, 'scripts/rgw/stop-rgw.sh'), '--purge'], { env: { ...process.env, RGW_DIR: rgwDir }, encoding: 'utf8' });
  if (res.status === 0) return true;
  process.stderr.write(`services-stop: stop-rgw.sh failed (${res.status}); keeping ${root} and its pid files:\n${res.stdout}${res.stderr}`);
  return false;
}

/** Stops the KMS and RGW started under `root` (by pid file, checked against /proc) and removes `root`. */
export async function stopServicesIn(root: string): Promise<boolean> {
  await stopKms(root);
  if (!stopRgw(root)) return false;
  rmSync(root, { recursive: true, force: true });
  return true;
}

if (require.main === module) {
  stopServicesIn(servicesRoot(process.ppid)).then((stopped) => {
    if (!stopped) process.exitCode = 1;
  }, (err: unknown) => {
    process.stderr.write(`services-stop: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
