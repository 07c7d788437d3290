import { spawnGit } from './git-child';
import { gitFailure } from './run-git';

/**
 * The lines of `git rev-list <args> --stdin --not --all` over `tips`, streamed: what `tips` reach
 * that no local ref reaches (with `--objects`, each line an object ID and perhaps a path). Memory
 * stays flat however many objects the walk prints.
 */
export async function* revListNew(args: string[], tips: string[]): AsyncGenerator<string> {
  const child = spawnGit(['rev-list', ...args, '--stdin', '--not', '--all'], ['pipe', 'pipe', 'pipe']);
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', resolve);
  });
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(tips.join('\n') + '\n');
  let rest = '';
  try {
    for await (const chunk of child.stdout!) {
      const lines = (rest + (chunk as Buffer).toString('utf8')).split('\n');
      rest = lines.pop() ?? '';
      yield* lines;
    }
  } finally {
    if (child.exitCode === null) child.kill();
  }
  if (rest) yield rest;
  const code = await exited;
  if (code !== 0) throw gitFailure(['rev-list'], code, err);
}
