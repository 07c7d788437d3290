// tap `after` script: stops the services that a test of this run started (test/support/services.ts),
// and only those; with before-run.ts, also what interrupted runs left behind.
import { readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isAlive, servicesRoot, stopServices } from './service-daemons';

/** Stops the KMS and RGW started under `root`, if any, and removes `root`. */
export function stopServicesIn(root: string): boolean {
  if (!stopServices(root)) return false;
  rmSync(root, { recursive: true, force: true });
  return true;
}

/** Runs interrupted before their `after` script (Ctrl-C, a killed runner) leave daemons behind. */
export function stopAbandonedRuns(): void {
  for (const name of readdirSync(tmpdir())) {
    const m = /^kmscrypt-services-(\d+)$/.exec(name);
    if (!m || isAlive(Number(m[1]))) continue;
    process.stderr.write(`services-stop: stopping services left by an interrupted run (${name})\n`);
    stopServicesIn(join(tmpdir(), name));
  }
}

if (require.main === module) {
  try {
    if (!stopServicesIn(servicesRoot(process.ppid))) process.exitCode = 1;
  } catch (err) {
    process.stderr.write(`services-stop: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  }
}
