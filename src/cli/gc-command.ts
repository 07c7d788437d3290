import { KmscryptError } from '../errors';
import { collectGarbage } from '../remote/gc';
import { openTargetRepository } from './open-remote';

export async function runGc(args: string[]): Promise<number> {
  let target: string | undefined;
  let graceMs = 3_600_000;
  let progress = process.stderr.isTTY === true;
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--json') json = true;
    else if (a === '--progress') progress = true;
    else if (a === '-q' || a === '--quiet') progress = false;
    else if (a === '--grace') graceMs = parseDuration(args[++i]);
    else if (a.startsWith('--grace=')) graceMs = parseDuration(a.slice('--grace='.length));
    else if (a.startsWith('-')) throw new KmscryptError('USAGE', `unknown option ${a}`, { fix: `see 'git kmscrypt gc --help'` });
    else if (target === undefined) target = a;
    else throw new KmscryptError('USAGE', `unexpected argument ${a}`, { fix: `see 'git kmscrypt gc --help'` });
  }
  if (!target) throw new KmscryptError('USAGE', 'missing <remote-or-url>', { fix: "see 'git kmscrypt gc --help'" });
  const repo = await openTargetRepository(target, { inRepository: false });
  const r = await collectGarbage(repo, { graceMs, progress });
  if (json) {
    process.stdout.write(JSON.stringify(r) + '\n');
  } else {
    process.stdout.write(
      (r.containersBefore > 1
        ? `gc: generation ${r.generation}: ${r.containersBefore} containers, ${r.objectsBefore} records, ${r.bytesBefore} bytes -> 1 container, ${r.objectsAfter} objects, ${r.bytesAfter} bytes\n`
        : `gc: generation ${r.generation}: ${r.containersBefore} container, nothing to consolidate\n`) +
        `gc: scheduled ${r.scheduled} container(s) for deletion; deleted ${r.deletedContainers} container(s) and ${r.deletedManifests} manifest(s) past the grace period\n`,
    );
  }
  return 0;
}

export function parseDuration(value: string | undefined): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(value ?? '');
  if (!m) throw new KmscryptError('USAGE', `--grace takes a duration such as 0, 30s, 10m, 2h or 1d, not ${JSON.stringify(value)}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] ?? 's']!;
  return Number(m[1]) * unit;
}
