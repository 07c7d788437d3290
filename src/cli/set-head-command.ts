import { KmscryptError } from '../errors';
import { setHead } from '../remote/set-head';
import { parseCommandArgs } from './command-args';
import { openTargetRepository } from './open-remote';

/** `git kmscrypt set-head <remote-or-url> <branch>`; its manual entry is in help/git-kmscrypt-manual.ts. */
export async function runSetHead(args: string[]): Promise<number> {
  // The branch is the last positional argument; the rest is parsed as for every command.
  const positional = args.map((a, i) => ({ a, i })).filter(({ a }) => !a.startsWith('-'));
  const branchAt = positional.length >= 2 ? positional[positional.length - 1].i : -1;
  const parsed = parseCommandArgs(
    'set-head',
    args.filter((_, i) => i !== branchAt),
  );
  if (branchAt < 0) throw new KmscryptError('USAGE', 'missing <branch> (the branch HEAD should point at)', { fix: "see 'git kmscrypt set-head --help'" });
  const r = await setHead(await openTargetRepository(parsed.target), args[branchAt]);
  if (parsed.json) process.stdout.write(JSON.stringify(r) + '\n');
  else if (r.generation === null) process.stdout.write(`HEAD of repository ${r.repositoryId} already points at ${r.head}\n`);
  else
    process.stdout.write(
      `HEAD of repository ${r.repositoryId} now points at ${r.head} (was ${r.previous ?? 'unset'}); published manifest generation ${r.generation}\n`,
    );
  return 0;
}
