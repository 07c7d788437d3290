import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { KmscryptError } from '../errors';

/**
 * Which repository ID this clone found at each URL, in $GIT_DIR/kmscrypt/remotes.json. A
 * storage operator who replaces a repository by another one (or by a new, empty one, which
 * would also reset rollback detection) is caught here.
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
    const all = await this.load();
    if (all[url] === repositoryId) return;
    all[url] = repositoryId;
    await this.save(all);
  }

  /**
   * Drops what this clone remembers about `url` (`git kmscrypt forget`), so that the next push
   * there may create a new repository and the next fetch accepts the one it finds. Returns the
   * repository ID that was remembered, and whether another URL still leads to it.
   */
  async forget(url: string): Promise<{ repositoryId: string; elsewhere: boolean } | undefined> {
    const all = await this.load();
    const repositoryId = all[url];
    if (repositoryId === undefined) return undefined;
    delete all[url];
    await this.save(all);
    return { repositoryId, elsewhere: Object.values(all).includes(repositoryId) };
  }

  /** Every URL this clone remembers a repository at. */
  async urls(): Promise<string[]> {
    return Object.keys(await this.load()).sort();
  }

  private async save(all: Record<string, string>): Promise<void> {
    if (!this.path) return;
    await fs.mkdir(join(this.path, '..'), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    await fs.writeFile(tmp, JSON.stringify(all, null, 2) + '\n');
    await fs.rename(tmp, this.path);
  }

  private async load(): Promise<Record<string, string>> {
    if (!this.path) return {};
    let text: string;
    try {
      text = await fs.readFile(this.path, 'utf8');
    } catch {
      return {};
    }
    try {
      const data = JSON.parse(text) as unknown;
      if (typeof data === 'object' && data !== null) return data as Record<string, string>;
    } catch {
      // fall through
    }
    throw new KmscryptError('CORRUPT', `${this.path} is corrupt; delete it to trust the remotes' current repositories again`);
  }
}
