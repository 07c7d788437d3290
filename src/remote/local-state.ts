import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { KmscryptError } from '../errors';

/**
 * What this clone remembers about a remote repository, in $GIT_DIR/kmscrypt/<repository-id>.json:
 * the highest manifest generation it has seen (to refuse a remote that went backwards) and the
 * containers whose objects it already holds (so a fetch downloads only new ones).
 */
export interface LocalState {
  generation: number;
  manifestHash: string | null;
  fetched: string[];
  /** ARN of the KMS key this clone trusts for the repository (see RemoteRepository.trustKey). */
  trustedKey?: string;
}

export class LocalStateFile {
  private constructor(private readonly path: string | undefined) {}

  static at(stateDir: string | undefined, repositoryId: string): LocalStateFile {
    return new LocalStateFile(stateDir ? join(stateDir, `${repositoryId}.json`) : undefined);
  }

  async load(): Promise<LocalState> {
    const empty: LocalState = { generation: 0, manifestHash: null, fetched: [] };
    if (!this.path) return empty;
    let text: string;
    try {
      text = await fs.readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return empty;
      throw new KmscryptError('CORRUPT', `cannot read ${this.path}: ${(err as NodeJS.ErrnoException).code}`);
    }
    let data: Partial<LocalState>;
    try {
      data = JSON.parse(text) as Partial<LocalState>;
    } catch {
      // Silently starting over would switch off rollback detection.
      throw new KmscryptError('CORRUPT', `${this.path} is corrupt; delete it to trust the remote's current state again`);
    }
    return {
      generation: Number.isSafeInteger(data.generation) ? data.generation! : 0,
      manifestHash: typeof data.manifestHash === 'string' ? data.manifestHash : null,
      fetched: Array.isArray(data.fetched) ? data.fetched.filter((x): x is string => typeof x === 'string') : [],
      trustedKey: typeof data.trustedKey === 'string' ? data.trustedKey : undefined,
    };
  }

  /** Forgets everything remembered about the repository (`git kmscrypt forget`); true if there was anything. */
  async remove(): Promise<boolean> {
    if (!this.path) return false;
    try {
      await fs.unlink(this.path);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw new KmscryptError('STORAGE', `cannot remove ${this.path}: ${(err as NodeJS.ErrnoException).code}`);
    }
  }

  /** Merges an update: generations only go up, fetched containers only accumulate (pruned to `known`). */
  async update(change: { generation?: number; manifestHash?: string; fetched?: string[]; known?: string[]; trustedKey?: string }): Promise<void> {
    if (!this.path) return;
    const state = await this.load();
    if (change.trustedKey) state.trustedKey = change.trustedKey;
    if (change.generation !== undefined && change.generation >= state.generation) {
      state.generation = change.generation;
      state.manifestHash = change.manifestHash ?? null;
    }
    const fetched = new Set([...state.fetched, ...(change.fetched ?? [])]);
    if (change.known) {
      const known = new Set(change.known);
      for (const id of fetched) if (!known.has(id)) fetched.delete(id);
    }
    state.fetched = [...fetched];
    await fs.mkdir(join(this.path, '..'), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(state) + '\n');
    await fs.rename(tmp, this.path);
  }
}
