import { join } from 'node:path';
import { KmscryptError } from '../errors';
import { readStateFile, removeStateFile, updateStateFile } from './state-file';

/**
 * What this clone remembers about a remote repository, in $GIT_DIR/kmscrypt/<repository-id>.json
 * (docs/FORMAT.md §8.4): the highest manifest generation it has seen and that manifest's hash
 * (to refuse a remote that went backwards or forked), the containers whose objects it already
 * holds (so a fetch downloads only new ones), and the KMS keys it accepts for the repository.
 */
export interface LocalState {
  generation: number;
  manifestHash: string | null;
  fetched: string[];
  /** ARNs of the KMS keys this clone accepts for the repository (see KeyTrust), oldest first. */
  trustedKeys: string[];
}

export interface LocalStateChange {
  generation?: number;
  manifestHash?: string;
  fetched?: string[];
  /** The containers the current manifest lists: `fetched` is pruned to them. */
  known?: string[];
  /** A key to add to `trustedKeys`. */
  trustedKey?: string;
}

export class LocalStateFile {
  private constructor(readonly path: string | undefined) {}

  static at(stateDir: string | undefined, repositoryId: string): LocalStateFile {
    return new LocalStateFile(stateDir ? join(stateDir, `${repositoryId}.json`) : undefined);
  }

  async load(): Promise<LocalState> {
    if (!this.path) return emptyState();
    return this.parse(await readStateFile(this.path));
  }

  /**
   * Merges an update under the state file's lock: generations only go up (with their hash),
   * fetched containers only accumulate (pruned to `known`), trusted keys only accumulate.
   */
  async update(change: LocalStateChange): Promise<void> {
    const path = this.path;
    if (!path) return;
    await updateStateFile(path, (text) => {
      const state = this.parse(text);
      const before = JSON.stringify(state);
      if (change.trustedKey && !state.trustedKeys.includes(change.trustedKey)) state.trustedKeys.push(change.trustedKey);
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
      // Unchanged (a fetch with nothing new): no write, no fsync.
      return text !== undefined && JSON.stringify(state) === before ? undefined : JSON.stringify(state) + '\n';
    });
  }

  private parse(text: string | undefined): LocalState {
    if (text === undefined) return emptyState();
    let data: Partial<LocalState> & { trustedKey?: unknown };
    try {
      data = JSON.parse(text) as Partial<LocalState>;
    } catch {
      // Silently starting over would switch off rollback detection.
      throw new KmscryptError('CORRUPT', `${this.path} is corrupt`, { fix: `delete it to trust the remote's current state again` });
    }
    const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
    const trustedKeys = strings(data.trustedKeys);
    // Written by earlier versions: one key.
    if (typeof data.trustedKey === 'string' && !trustedKeys.includes(data.trustedKey)) trustedKeys.unshift(data.trustedKey);
    return {
      generation: Number.isSafeInteger(data.generation) ? data.generation! : 0,
      manifestHash: typeof data.manifestHash === 'string' ? data.manifestHash : null,
      fetched: strings(data.fetched),
      trustedKeys,
    };
  }

  /** Forgets everything remembered about the repository (`git kmscrypt forget`); true if there was anything. */
  async remove(): Promise<boolean> {
    return this.path ? removeStateFile(this.path) : false;
  }
}

function emptyState(): LocalState {
  return { generation: 0, manifestHash: null, fetched: [], trustedKeys: [] };
}
