import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { Manifest } from '../format/manifest';
import type { ManifestSnapshot } from './remote-repository';

/** What the cache file holds: the decoded manifest and what identifies the stored bytes it came from. */
interface CachedManifest {
  format: 1;
  repositoryId: string;
  generation: number;
  /** SHA-256 of the stored manifest bytes. */
  hash: string;
  /** SHA-256 of the descriptor the manifest was checked against. */
  descriptorHash: string;
  sealedBy: string | null;
  manifest: Manifest;
  history: ManifestSnapshot['chain']['history'];
  endorsements: { from: string; to: string; ciphertext: string }[];
}

/**
 * The newest manifest this clone opened and checked, decoded, in
 * $GIT_DIR/kmscrypt/<repository-id>.manifest.json: a reading session (ls-remote, a fetch with
 * nothing new) whose newest stored manifest has exactly the bytes this clone last accepted (the
 * generation and SHA-256 its state file holds) takes the refs from here instead of asking KMS to
 * unwrap the manifest's data key again (docs/performance.md).
 *
 * It is only ever used on equality: the stored bytes are read and hashed on every run, and an
 * entry is taken only when its hash, generation and descriptor hash are those of this run; any
 * other entry, or an unreadable one, is ignored and the manifest opened as usual. It holds what
 * the manifest holds (ref names, object IDs, container references with their *wrapped* data
 * keys), never a plaintext key; the clone's own refs and objects beside it hold more.
 */
export class ManifestCache {
  private constructor(
    readonly path: string | undefined,
    private readonly repositoryId: string,
  ) {}

  static at(stateDir: string | undefined, repositoryId: string): ManifestCache {
    return new ManifestCache(stateDir ? join(stateDir, `${repositoryId}.manifest.json`) : undefined, repositoryId);
  }

  /** The snapshot of the manifest whose stored bytes hash to `hash`, if this is the one the file holds. */
  async read(expected: { generation: number; hash: string; descriptorHash: string }): Promise<ManifestSnapshot | undefined> {
    if (!this.path) return undefined;
    let entry: CachedManifest;
    try {
      entry = JSON.parse(await fs.readFile(this.path, 'utf8')) as CachedManifest;
    } catch {
      return undefined;
    }
    if (
      entry?.format !== 1 ||
      entry.repositoryId !== this.repositoryId ||
      entry.generation !== expected.generation ||
      entry.hash !== expected.hash ||
      entry.descriptorHash !== expected.descriptorHash ||
      entry.manifest?.generation !== expected.generation ||
      entry.manifest.repositoryId !== this.repositoryId ||
      !Array.isArray(entry.endorsements)
    ) {
      return undefined;
    }
    return {
      manifest: entry.manifest,
      hash: entry.hash,
      sealedBy: entry.sealedBy,
      chain: {
        history: entry.history ?? null,
        endorsements: entry.endorsements.map((e) => ({ from: e.from, to: e.to, ciphertext: Buffer.from(e.ciphertext, 'base64') })),
      },
    };
  }

  /** Drops the entry (git kmscrypt forget). */
  async remove(): Promise<void> {
    if (this.path) await fs.rm(this.path, { force: true });
  }

  /** Keeps `snapshot` (opened and checked by the caller); a failure to write only costs the next run a Decrypt. */
  async write(snapshot: ManifestSnapshot, descriptorHash: string): Promise<void> {
    if (!this.path || !snapshot.manifest || !snapshot.hash) return;
    const entry: CachedManifest = {
      format: 1,
      repositoryId: this.repositoryId,
      generation: snapshot.manifest.generation,
      hash: snapshot.hash,
      descriptorHash,
      sealedBy: snapshot.sealedBy,
      manifest: snapshot.manifest,
      history: snapshot.chain.history,
      endorsements: snapshot.chain.endorsements.map((e) => ({ from: e.from, to: e.to, ciphertext: e.ciphertext.toString('base64') })),
    };
    const tmp = join(dirname(this.path), `.${basename(this.path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    try {
      await fs.writeFile(tmp, JSON.stringify(entry), { mode: 0o600, flag: 'wx' });
      await fs.rename(tmp, this.path);
    } catch {
      await fs.rm(tmp, { force: true }).catch(() => undefined);
    }
  }
}
