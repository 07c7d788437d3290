import { randomUUID } from 'node:crypto';
import { KmscryptError } from '../errors';
import { DESCRIPTOR_VERSION, generationOfKey, manifestKey, STORE_KEYS } from '../format/constants';
import { sha256Hex } from '../format/container';
import { decodeDescriptor, Descriptor, encodeDescriptor } from '../format/descriptor';
import { Manifest, openManifest, parseManifestEnvelope, sealManifest } from '../format/manifest';
import type { ObjectFormat } from '../format/object-format';
import { DataKey, KeyProvider, repositoryContext } from '../keys/key-provider';
import { DEFAULT_ALIAS } from '../keys/keyring';
import type { Storage } from '../storage/storage';
import { DataKeyCache } from './data-keys';
import { KnownRemotes } from './known-remotes';
import { killPoint } from './kill-point';
import { LocalStateFile } from './local-state';

export interface RemoteConfig {
  /** The URL as the user wrote it, for messages. */
  url: string;
  storage: Storage;
  keys: KeyProvider;
  keyProvider: 'local' | 'aws';
  /** kmscrypt.keyId / KMSCRYPT_KEY_ID when set; otherwise the repository's own key, or alias/kmscrypt. */
  keyId?: string;
  /** $GIT_DIR/kmscrypt when running inside a repository. */
  stateDir?: string;
  /** Checks run once when a repository is created (e.g. that the server enforces conditional writes). */
  beforeCreate?: () => Promise<void>;
}

export interface ManifestSnapshot {
  manifest: Manifest | null;
  /** SHA-256 of the stored manifest bytes: the next manifest's `previous`. */
  hash: string | null;
}

/** An existing encrypted repository: its descriptor, its data keys, and its manifest log. */
export class RemoteRepository {
  readonly dataKeys: DataKeyCache;
  readonly state: LocalStateFile;

  private constructor(
    readonly config: RemoteConfig,
    readonly descriptor: Descriptor,
    readonly descriptorHash: string,
  ) {
    this.dataKeys = new DataKeyCache(config.keys, repositoryContext(descriptor.repositoryId));
    this.state = LocalStateFile.at(config.stateDir, descriptor.repositoryId);
  }

  get repositoryId(): string {
    return this.descriptor.repositoryId;
  }

  get storage(): Storage {
    return this.config.storage;
  }

  /**
   * The manifest that follows `snapshot` in the log: the chain fields (generation, previous hash,
   * descriptor hash, time) filled in here, for every writer alike; the content is the caller's.
   */
  successor(snapshot: ManifestSnapshot, content: Pick<Manifest, 'keyId' | 'head' | 'refs' | 'containers'>): Manifest {
    return {
      repositoryId: this.repositoryId,
      objectFormat: this.descriptor.objectFormat,
      generation: (snapshot.manifest?.generation ?? 0) + 1,
      previous: snapshot.hash,
      createdAt: new Date().toISOString(),
      descriptorHash: this.descriptorHash,
      ...content,
    };
  }

  static async open(config: RemoteConfig): Promise<RemoteRepository | undefined> {
    const bytes = await config.storage.get(STORE_KEYS.descriptor);
    const known = KnownRemotes.in(config.stateDir);
    const expected = await known.repositoryAt(config.url);
    if (!bytes) {
      if (expected) {
        throw new KmscryptError(
          'TAMPERED',
          `repository ${expected} that this clone used at ${config.url} is gone from the store; if it was deliberately removed: git kmscrypt forget ${config.url}`,
        );
      }
      return undefined;
    }
    const descriptor = decodeDescriptor(bytes, config.url);
    if (expected && expected !== descriptor.repositoryId) {
      throw new KmscryptError(
        'TAMPERED',
        `${config.url} now holds repository ${descriptor.repositoryId}, not ${expected} that this clone used: it was replaced; no ref was changed; if it was replaced deliberately: git kmscrypt forget ${config.url}`,
      );
    }
    await known.remember(config.url, descriptor.repositoryId);
    return new RemoteRepository(config, descriptor, sha256Hex(bytes));
  }

  static async openExisting(config: RemoteConfig): Promise<RemoteRepository> {
    const repo = await RemoteRepository.open(config);
    if (!repo) {
      throw new KmscryptError('NO_REPOSITORY', `no kmscrypt repository at ${config.url}; check the URL, or push to it to create one`);
    }
    return repo;
  }

  /**
   * Creates the repository with a create-only write of its descriptor. When another process
   * created it first, theirs is used: there is never more than one repository ID per location.
   */
  static async create(config: RemoteConfig, objectFormat: ObjectFormat): Promise<RemoteRepository> {
    const existing = await RemoteRepository.open(config);
    if (existing) return existing;
    await config.beforeCreate?.();
    const key = await config.keys.ensureKey(config.keyId ?? DEFAULT_ALIAS, config.keyId === undefined || config.keyId === DEFAULT_ALIAS);
    const descriptor: Descriptor = {
      format: 'kmscrypt',
      version: DESCRIPTOR_VERSION,
      repositoryId: randomUUID(),
      objectFormat,
      keyId: key.arn,
      keyProvider: config.keyProvider,
      createdAt: new Date().toISOString(),
    };
    const bytes = encodeDescriptor(descriptor);
    if (await config.storage.putIfAbsent(STORE_KEYS.descriptor, bytes)) {
      killPoint('create-descriptor');
      await KnownRemotes.in(config.stateDir).remember(config.url, descriptor.repositoryId);
      const repo = new RemoteRepository(config, descriptor, sha256Hex(bytes));
      await repo.state.update({ trustedKey: key.arn });
      return repo;
    }
    return RemoteRepository.openExisting(config);
  }

  /** The key new data is wrapped with: the configured one, else the repository's current one. */
  keyIdFor(manifest: Manifest | null): string {
    return this.config.keyId ?? manifest?.keyId ?? this.descriptor.keyId;
  }

  /**
   * A data key for new data. Without kmscrypt.keyId, the repository's own key is used only if
   * this clone trusts it: otherwise whoever can write to the store could name a key of their
   * own in the descriptor and read everything pushed afterwards.
   */
  async generateDataKey(manifest: Manifest | null): Promise<DataKey> {
    const keyId = this.keyIdFor(manifest);
    if (this.config.keyId === undefined) await this.trustKey(keyId);
    return this.config.keys.generateDataKey(keyId, repositoryContext(this.repositoryId));
  }

  /**
   * Refuses a KMS key the user has not chosen. Trusted are: the key this clone already trusts
   * for the repository, kmscrypt.keyId, and the user's own alias/kmscrypt. A key trusted once is
   * remembered, so DescribeKey is asked only on first contact.
   */
  async trustKey(keyArn: string): Promise<void> {
    const state = await this.state.load();
    if (state.trustedKey === keyArn) return;
    const candidates = [this.config.keyId, DEFAULT_ALIAS].filter((k): k is string => k !== undefined);
    for (const candidate of candidates) {
      if (candidate === keyArn) break;
      const described = await this.config.keys.describeKey(candidate).catch(() => undefined);
      if (described?.arn === keyArn) {
        await this.state.update({ trustedKey: keyArn });
        return;
      }
    }
    if (candidates.includes(keyArn)) {
      await this.state.update({ trustedKey: keyArn });
      return;
    }
    throw new KmscryptError(
      'KEY_ERROR',
      `${this.config.url} is protected by KMS key ${keyArn}, which is neither kmscrypt.keyId, your alias/kmscrypt, nor the key this clone trusted before; if you trust it: git config kmscrypt.keyId ${keyArn}`,
    );
  }

  /**
   * Reads the newest manifest of the append-only log and checks it against what this clone has
   * seen before: a lower generation, or the same generation with other bytes, is refused.
   */
  async latest(): Promise<ManifestSnapshot> {
    const seen = await this.state.load();
    const startAfter = seen.generation > 1 ? manifestKey(seen.generation - 1) : undefined;
    const keys = (await this.storage.list(STORE_KEYS.manifestPrefix, startAfter))
      .map((o) => ({ key: o.key, generation: generationOfKey(o.key) }))
      .filter((o): o is { key: string; generation: number } => o.generation !== undefined);
    const newest = keys.length ? keys[keys.length - 1] : undefined;
    if (!newest) {
      if (seen.generation > 0) throw this.rollback(undefined, seen.generation);
      return { manifest: null, hash: null };
    }
    const bytes = await this.storage.get(newest.key);
    if (!bytes) throw new KmscryptError('STORAGE', `${this.config.url}: manifest ${newest.generation} disappeared while being read; try again`);
    const snapshot = await this.openManifestBytes(bytes, newest.generation);
    if (newest.generation < seen.generation) throw this.rollback(newest.generation, seen.generation);
    if (newest.generation === seen.generation + 1 && seen.manifestHash && snapshot.manifest!.previous !== seen.manifestHash) {
      throw new KmscryptError('TAMPERED', `${this.config.url}: manifest ${newest.generation} does not follow the manifest ${seen.generation} this clone saw: the history was rewritten; no ref was changed`);
    }
    if (newest.generation === seen.generation && seen.manifestHash && seen.manifestHash !== snapshot.hash) {
      throw new KmscryptError('TAMPERED', `${this.config.url}: manifest ${newest.generation} is not the one this clone saw before: it was replaced; no ref was changed`);
    }
    await this.state.update({ generation: newest.generation, manifestHash: snapshot.hash ?? undefined });
    return snapshot;
  }

  async openManifestBytes(bytes: Buffer, generation: number): Promise<ManifestSnapshot> {
    const what = `${this.config.url}: manifest ${generation}`;
    const env = parseManifestEnvelope(bytes, what);
    if (env.generation !== generation) {
      throw new KmscryptError('TAMPERED', `${what} is stored under the wrong generation (${env.generation}): an old manifest was put back; no ref was changed`);
    }
    const key = await this.dataKeys.unwrapWithKeyId(env.wrappedKey);
    await this.trustKey(key.keyId);
    const manifest = openManifest(env, key.plaintext, this.repositoryId, what);
    if (manifest.descriptorHash !== this.descriptorHash) {
      throw new KmscryptError('TAMPERED', `${this.config.url}: the repository descriptor (kmscrypt.json) was altered or replaced; no ref was changed`);
    }
    if (manifest.objectFormat !== this.descriptor.objectFormat) {
      throw new KmscryptError('TAMPERED', `${what} is for ${manifest.objectFormat} objects but the descriptor says ${this.descriptor.objectFormat}`);
    }
    return { manifest, hash: sha256Hex(bytes) };
  }

  /** Create-only publication of the next manifest: false when another publisher got that generation first. */
  async publish(manifest: Manifest, dataKey: DataKey): Promise<{ published: boolean; hash: string }> {
    const bytes = sealManifest(manifest, dataKey.plaintext, dataKey.wrapped);
    const published = await this.storage.putIfAbsent(manifestKey(manifest.generation), bytes);
    if (published) await this.state.update({ generation: manifest.generation, manifestHash: sha256Hex(bytes) });
    return { published, hash: sha256Hex(bytes) };
  }

  private rollback(found: number | undefined, seen: number): KmscryptError {
    const what = found === undefined ? `it has no manifest of generation ${seen} or later` : `its newest manifest is generation ${found}`;
    return new KmscryptError(
      'ROLLBACK',
      `${this.config.url} went backwards: ${what} but this clone has seen generation ${seen}; the newest manifests were deleted or withheld; no ref was changed`,
    );
  }
}
