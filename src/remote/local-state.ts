import { promises as fs } from 'node:fs';
import { join } from 'node:path';

/**
 * What this clone remembers about a remote repository, in $GIT_DIR/kmscrypt/<repository-id>.json:
 * the highest manifest generation it has seen (to refuse a remote that went backwards) and the
 * containers whose objects it already holds (so a fetch downloads only new ones).
 */
export interface LocalState {
  generation: number;
  manifestHash: string | null;
  fetched: string[];
}

export class LocalStateFile {
  private constructor(private readonly path: string | undefined) {}

  static at(stateDir: string | undefined, repositoryId: string): LocalStateFile {
    return new LocalStateFile(stateDir ? join(stateDir, `${repositoryId}.json`) : undefined);
  }

  async load(): Promise<LocalState> {
    const empty: LocalState = { generation: 0, manifestHash: null, fetched: [] };
    if (!this.path) return empty;
    try {
      const data = JSON.parse(await fs.readFile(this.path, 'utf8')) as Partial<LocalState>;
      return {
        generation: Number.isSafeInteger(data.generation) ? data.generation! : 0,
        manifestHash: typeof data.manifestHash === 'string' ? data.manifestHash : null,
        fetched: Array.isArray(data.fetched) ? data.fetched.filter((x): x is string => typeof x === 'string') : [],
      };
    } catch {
      return empty;
    }
  }

  /** Merges an update: generations only go up, fetched containers only accumulate (pruned to `known`). */
  async update(change: { generation?: number; manifestHash?: string; fetched?: string[]; known?: string[] }): Promise<void> {
    if (!this.path) return;
    const state = await this.load();
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
