// tap `before` script: what every test of a run needs, and nothing more. It stops services that
// an interrupted run left behind and brings dist/ up to date. The servers themselves (Ceph RGW,
// the local KMS) start only when a test asks for them (test/support/services.ts).
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { servicesRoot } from './service-daemons';
import { stopAbandonedRuns, stopServicesIn } from './services-stop';

const PROJECT_ROOT = resolve(__dirname, '..', '..');

function log(line: string): void {
  process.stderr.write(`before-run: ${line}\n`);
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
async function buildDist(): Promise<void> {
  if (distIsFresh()) return;
  const tsc = join(PROJECT_ROOT, 'node_modules/typescript/bin/tsc');
  const child = spawn(process.execPath, [tsc, '-p', join(PROJECT_ROOT, 'tsconfig.json'), '--pretty', 'false'], {
    cwd: PROJECT_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const code = await new Promise<number | null>((done, fail) => {
    child.once('error', fail);
    child.once('close', done);
  });
  // tsc emits despite type errors; typechecking is `npm run typecheck`'s job, so report and go on.
  if (code !== 0) log(`tsc reported errors (dist/ was still written):\n${output.trimEnd().split('\n').slice(-15).join('\n')}`);
}

async function main(): Promise<void> {
  stopAbandonedRuns();
  // A directory of this run's name is left from an earlier runner with the same pid.
  if (!stopServicesIn(servicesRoot(process.ppid))) throw new Error(`could not stop the services left in ${servicesRoot(process.ppid)}`);
  await buildDist();
}

main().catch((err: unknown) => {
  log(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
