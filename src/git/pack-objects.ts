import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { gitFailure, runGit } from './run-git';

export interface WrittenPack {
  packPath: string;
  idxPath: string;
  /** Bytes of the pack that hold the pushed entries; a thin pack's appended bases lie beyond. */
  entriesEnd: number;
}

/**
 * Packs the objects reachable from `include` but not from `exclude` into `dir`, reusing the
 * deltas git already has (pack-objects never re-resolves them) and writing the .idx that maps
 * every entry to its object ID. Deltas name their base by offset, as git's own pushes do: a
 * smaller pack, and the container writer finds a base by offset rather than by ID.
 *
 * A pack written to a file cannot be thin (git refuses --thin there), so when the remote already
 * has objects we let pack-objects write a thin pack to stdout and `index-pack --fix-thin` index
 * it; the bases it appends are objects the remote has, and the caller skips them.
 */
export async function writePack(opts: {
  dir: string;
  include: string[];
  exclude: string[];
  thin: boolean;
  hashLength: number;
  progress: boolean;
}): Promise<WrittenPack> {
  const revs = [...opts.include, ...opts.exclude.map((oid) => `^${oid}`)].join('\n') + '\n';
  const quiet = opts.progress ? '--progress' : '-q';
  if (!opts.thin) {
    const { stdout } = await runGit(['pack-objects', '--revs', '--delta-base-offset', quiet, join(opts.dir, 'pack')], { input: revs });
    const hash = stdout.toString('utf8').trim();
    const packPath = join(opts.dir, `pack-${hash}.pack`);
    const size = (await fs.stat(packPath)).size;
    return { packPath, idxPath: join(opts.dir, `pack-${hash}.idx`), entriesEnd: size - opts.hashLength };
  }
  const packPath = join(opts.dir, 'thin.pack');
  let streamed = 0;
  await new Promise<void>((resolve, reject) => {
    const packer = spawn('git', ['pack-objects', '--revs', '--stdout', '--thin', '--delta-base-offset', quiet], { stdio: ['pipe', 'pipe', 'inherit'] });
    const indexer = spawn('git', ['index-pack', '--stdin', '--fix-thin', packPath], { stdio: ['pipe', 'ignore', 'pipe'] });
    let indexerErr = '';
    indexer.stderr!.on('data', (b: Buffer) => (indexerErr += b.toString()));
    packer.stdout!.on('data', (b: Buffer) => {
      streamed += b.length;
      if (!indexer.stdin!.write(b)) {
        packer.stdout!.pause();
        indexer.stdin!.once('drain', () => packer.stdout!.resume());
      }
    });
    packer.stdout!.on('end', () => indexer.stdin!.end());
    indexer.stdin!.on('error', () => undefined);
    let packerCode: number | null = null;
    packer.on('close', (code) => {
      packerCode = code;
      if (code !== 0) reject(gitFailure(['pack-objects'], code, ''));
    });
    indexer.on('close', (code) => {
      if (code !== 0) reject(gitFailure(['index-pack'], code, indexerErr));
      else if (packerCode === 0 || packerCode === null) resolve();
    });
    packer.on('error', reject);
    indexer.on('error', reject);
    packer.stdin!.end(revs);
  });
  return { packPath, idxPath: join(opts.dir, 'thin.idx'), entriesEnd: streamed - opts.hashLength };
}
