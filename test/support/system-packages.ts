import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/**
 * Makes sure a tool the tests need from the system is there: when `present()` is false, installs
 * the Debian package with apt-get, as scripts/rgw/start-rgw.sh installs Ceph (root on Debian
 * only); otherwise throws, so that the test fails with the reason instead of skipping.
 */
export function ensureDebianPackage(pkg: string, present: () => boolean): void {
  if (present()) return;
  const asRoot = process.getuid?.() === 0;
  if (!asRoot || !existsSync('/usr/bin/apt-get')) {
    throw new Error(`this test needs the Debian package ${pkg} (or its equivalent); install it, or run the tests as root on Debian`);
  }
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  // Another test may be running apt at the same time: wait for its lock instead of failing.
  const lock = ['-o', 'DPkg::Lock::Timeout=600'];
  for (const args of [
    ['update', '-qq', ...lock],
    ['install', '-y', '-qq', '--no-install-recommends', ...lock, pkg],
  ]) {
    const r = spawnSync('apt-get', args, { env, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`apt-get ${args.join(' ')} failed (exit ${r.status}):\n${r.stderr}`);
  }
  if (!present()) throw new Error(`apt-get installed ${pkg}, but it is still not usable`);
}

export const hasCommand =
  (name: string): (() => boolean) =>
  () =>
    spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;

/** `man`, which `git help` and `git <command> --help` run. */
export function ensureMan(): void {
  ensureDebianPackage('man-db', hasCommand('man'));
}
