import { verifyRepository } from '../remote/verify-repository';
import { parseCommandArgs } from './command-args';
import { openTargetRepository } from './open-remote';

export async function runVerify(args: string[]): Promise<number> {
  const parsed = parseCommandArgs('verify', args);
  const repo = await openTargetRepository(parsed.target);
  const r = await verifyRepository(repo);
  const ok = r.problems.length === 0;
  if (parsed.json) {
    process.stdout.write(JSON.stringify({ ...r, ok }) + '\n');
    return ok ? 0 : 1;
  }
  const lines = [
    `repository ${r.repositoryId} at ${r.url} (${r.objectFormat})`,
    `  manifests:  ${r.manifests} stored, newest readable generation ${r.generation}`,
    `  containers: ${r.containers} (${r.orphans.length} more not in the manifest)`,
    `  records:    ${r.records}`,
    `  bytes:      ${r.bytes}`,
    `  refs:       ${r.refs}`,
    ...r.notes.map((n) => `note: ${n}`),
    ...r.problems.map((p) => `problem: ${p}`),
    ok ? 'verify: OK: every manifest, container, object and ref checked' : `verify: ${r.problems.length} problem${r.problems.length === 1 ? '' : 's'} found`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  return ok ? 0 : 1;
}
