import type { Writable } from 'node:stream';
import { spawnGit } from './git-child';
import { localRepository } from './repository';
import { gitFailure } from './run-git';

export interface IndexPackRun {
  /** The pack stream goes here; honour its write() return value. */
  input: Writable;
  /** Resolves once git has verified every object's hash and stored the pack. */
  done: Promise<{ packHash: string; keepFile: string; idxFile: string }>;
  abort(): void;
}

/**
 * `git index-pack --stdin --fix-thin --keep`: git hashes every object itself, resolves deltas
 * once, and refuses a broken pack without storing anything. The .keep file protects the new pack
 * from a concurrent gc until git has updated the refs; the helper hands its path to git with `lock`.
 */
export function startIndexPack(opts: { progress: boolean; selfContained?: boolean; promisor?: string }): IndexPackRun {
  const args = ['index-pack', '--stdin', '--fix-thin', '--keep=kmscrypt fetch'];
  // A partial clone's pack: git then knows that objects it refers to but lacks are promised by the remote.
  if (opts.promisor !== undefined) args.push(`--promisor=${opts.promisor}`);
  // For a clone, as fetch-pack does: git checks every object and every link here, so the
  // separate connectivity walk after the fetch can be skipped.
  if (opts.selfContained) args.push('--check-self-contained-and-connected');
  if (opts.progress) args.push('-v');
  const child = spawnGit(args, ['pipe', 'pipe', opts.progress ? 'inherit' : 'pipe']);
  let out = '';
  let err = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  child.stdin!.on('error', () => undefined);
  const done = new Promise<{ packHash: string; keepFile: string; idxFile: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(gitFailure(['index-pack'], code, err));
      const m = /^(?:keep|pack)\t([0-9a-f]+)$/m.exec(out);
      if (!m) return reject(gitFailure(['index-pack'], code, `unexpected output ${JSON.stringify(out)}`));
      localRepository().then(
        ({ packDir }) => resolve({ packHash: m[1], keepFile: `${packDir}/pack-${m[1]}.keep`, idxFile: `${packDir}/pack-${m[1]}.idx` }),
        reject,
      );
    });
  });
  return {
    input: child.stdin!,
    done,
    abort: () => child.kill('SIGKILL'),
  };
}
