import type { ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { KmscryptError } from '../errors';
import { spawnGit } from './git-child';
import { gitFailure } from './run-git';

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
  // With progress, pack-objects writes "Enumerating/Counting/Compressing objects" straight to
  // the user's stderr from its first moment, as in a push to any git remote; without, its
  // stderr is kept for the error message.
  const quiet = opts.progress ? '--progress' : '-q';
  const packerStderr = opts.progress ? 'inherit' : 'pipe';
  if (!opts.thin) {
    const packer = spawnGit(['pack-objects', '--revs', '--delta-base-offset', quiet, join(opts.dir, 'pack')], ['pipe', 'pipe', packerStderr]);
    const done = finished(packer, 'pack-objects', { stdout: true });
    send(packer, revs);
    const { stdout } = await done;
    const hash = stdout.trim();
    const packPath = join(opts.dir, `pack-${hash}.pack`);
    const size = (await fs.stat(packPath)).size;
    return { packPath, idxPath: join(opts.dir, `pack-${hash}.idx`), entriesEnd: size - opts.hashLength };
  }
  const packPath = join(opts.dir, 'thin.pack');
  let streamed = 0;
  const packer = spawnGit(['pack-objects', '--revs', '--stdout', '--thin', '--delta-base-offset', quiet], ['pipe', 'pipe', packerStderr]);
  const indexer = spawnGit(['index-pack', '--stdin', '--fix-thin', packPath], ['pipe', 'ignore', 'pipe']);
  packer.stdout!.on('data', (b: Buffer) => {
    streamed += b.length;
    if (!indexer.stdin!.write(b)) {
      packer.stdout!.pause();
      indexer.stdin!.once('drain', () => packer.stdout!.resume());
    }
  });
  packer.stdout!.on('end', () => indexer.stdin!.end());
  indexer.stdin!.on('error', () => undefined);
  const packed = finished(packer, 'pack-objects');
  const indexed = finished(indexer, 'index-pack');
  // Whichever fails first names the failure; the other is not left running.
  packed.catch(() => indexer.kill());
  indexed.catch(() => packer.kill());
  send(packer, revs);
  await Promise.all([packed, indexed]);
  return { packPath, idxPath: join(opts.dir, 'thin.idx'), entriesEnd: streamed - opts.hashLength };
}

function send(child: ChildProcess, input: string): void {
  // A git that exits early closes its stdin; its exit status says why.
  child.stdin!.on('error', () => undefined);
  child.stdin!.end(input);
}

/** Resolves with the child's stdout (when collected) once it exits 0; git's last stderr line otherwise. */
function finished(child: ChildProcess, name: string, collect: { stdout?: boolean } = {}): Promise<{ stdout: string }> {
  let stdout = '';
  let stderr = '';
  if (collect.stdout) child.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new KmscryptError('GIT', `cannot run git: ${e.message}`, { fix: 'is git installed and on PATH?' })));
    child.on('close', (code) => (code === 0 ? resolve({ stdout }) : reject(gitFailure([name], code, stderr))));
  });
}
