import { join } from 'node:path';
import { KmscryptError } from '../errors';
import { readStateFile, updateStateFile } from './state-file';

/**
 * Which repository ID this clone found at each URL, in $GIT_DIR/kmscrypt/remotes.json. A
 * storage operator who replaces a repository by another one (or by a new, empty one, which
 * would also reset rollback detection) is caught here. A URL is remembered once the repository
 * there was adopted (see adoptRepository); changes are made under the file's lock (state-file.ts).
 */
export class KnownRemotes {
  private constructor(private readonly path: string | undefined) {}

  static in(stateDir: string | undefined): KnownRemotes {
    return new KnownRemotes(stateDir ? join(stateDir, 'remotes.json') : undefined);
  }

  async repositoryAt(url: string): Promise<string | undefined> {
    return (await this.load())[url];
  }

  async remember(url: string, repositoryId: string): Promise<void> {
    if (!this.path) return;
    await updateStateFile(this.path, (text) => {
      const all = this.parse(text);
      if (all[url] === repositoryId) return undefined;
      all[url] = repositoryId;
      return serialize(all);
    });
  }

  /**
   * Drops what this clone remembers about `url` (`git kmscrypt forget`), so that the next push
   * there may create a new repository and the next fetch accepts the one it finds. Returns the
   * repository ID that was remembered, and whether another URL still leads to it.
   */
  async forget(url: string): Promise<{ repositoryId: string; elsewhere: boolean } | undefined> {
    if (!this.path) return undefined;
    let forgotten: { repositoryId: string; elsewhere: boolean } | undefined;
    await updateStateFile(this.path, (text) => {
      const all = this.parse(text);
      const repositoryId = all[url];
      if (repositoryId === undefined) return undefined;
      delete all[url];
      forgotten = { repositoryId, elsewhere: Object.values(all).includes(repositoryId) };
      return serialize(all);
    });
    return forgotten;
  }

  /** Every URL this clone remembers a repository at. */
  async urls(): Promise<string[]> {
    return Object.keys(await this.load()).sort();
  }

  private async load(): Promise<Record<string, string>> {
    if (!this.path) return {};
    return this.parse(await readStateFile(this.path));
  }

  private parse(text: string | undefined): Record<string, string> {
    if (text === undefined) return {};
    try {
      const data = JSON.parse(text) as unknown;
      if (typeof data === 'object' && data !== null && !Array.isArray(data)) return data as Record<string, string>;
    } catch {
      // fall through
    }
    throw new KmscryptError('CORRUPT', `${this.path} is corrupt`, { fix: `delete it to trust the remotes' current repositories again` });
  }
}

function serialize(all: Record<string, string>): string {
  return JSON.stringify(all, null, 2) + '\n';
}
