import { promises as fs } from 'node:fs';
import { KmscryptError } from '../errors';
import { localRepository } from './repository';

/**
 * `$GIT_DIR/shallow`: one commit ID per line, the commits of a shallow clone whose parents it
 * lacks. git's own transports write it from the `shallow`/`unshallow` lines of upload-pack
 * (fetch-pack.c); a remote helper with the `fetch` capability writes it itself, as remote-curl's
 * fetch-pack child does, before it answers the fetch.
 */
export async function readShallow(): Promise<Set<string>> {
  const { shallowFile } = await localRepository();
  const text = await fs.readFile(shallowFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw new KmscryptError('GIT', `cannot read ${shallowFile}: ${err.code ?? err.message}`);
  });
  return new Set(text.split('\n').filter((l) => /^[0-9a-f]{40,64}$/.test(l)));
}

/** A new `shallow` file being written under git's lock (`shallow.lock`), committed or rolled back. */
export interface ShallowUpdate {
  /** Replaces the file with `commits` (sorted, as git writes it), or removes it when there is none. */
  commit(commits: Set<string>): Promise<void>;
  rollback(): Promise<void>;
}

/** Takes git's lock on the shallow file, so that no other git process changes it meanwhile. */
export async function lockShallow(): Promise<ShallowUpdate> {
  const { shallowFile } = await localRepository();
  const lock = `${shallowFile}.lock`;
  const handle = await fs.open(lock, 'wx', 0o644).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EEXIST') {
      throw new KmscryptError('GIT', `Unable to create '${lock}': File exists. Another git process seems to be running in this repository`, {
        fix: 'if not, remove the file',
      });
    }
    throw new KmscryptError('GIT', `cannot create ${lock}: ${err.code ?? err.message}`);
  });
  let open = true;
  const release = async () => {
    if (!open) return;
    open = false;
    await handle.close().catch(() => undefined);
  };
  return {
    async commit(commits) {
      try {
        if (commits.size === 0) {
          await release();
          await fs.rm(shallowFile, { force: true });
          await fs.rm(lock, { force: true });
          return;
        }
        await handle.writeFile(
          [...commits]
            .sort()
            .map((c) => c + '\n')
            .join(''),
        );
        await handle.sync();
        await release();
        await fs.rename(lock, shallowFile);
      } catch (err) {
        await release();
        await fs.rm(lock, { force: true });
        throw err;
      }
    },
    async rollback() {
      await release();
      await fs.rm(lock, { force: true });
    },
  };
}
