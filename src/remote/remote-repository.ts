import { randomUUID } from 'node:crypto';
import { isKmscryptError, KmscryptError } from '../errors';
import { DESCRIPTOR_READ, DESCRIPTOR_VERSION, generationOfKey, MANIFEST_LIMIT, MANIFEST_READ, manifestKey, STORE_KEYS } from '../format/constants';
import { sha256Hex } from '../format/container';
import { decodeDescriptor, Descriptor, encodeDescriptor, proveDescriptor } from '../format/descriptor';
import type { Endorsement } from '../format/endorsement';
import { HistoryRef, Manifest, ManifestEnvelope, openManifest, parseManifestEnvelope, sealManifest } from '../format/manifest';
import type { ObjectFormat } from '../format/object-format';
import { DataKey, KeyProvider, repositoryContext } from '../keys/key-provider';
import { DEFAULT_ALIAS } from '../keys/keyring';
import type { Storage, StoredObjectInfo } from '../storage/storage';
import { DataKeyCache } from './data-keys';
import { KeyTrust } from './key-trust';
import { KnownRemotes } from './known-remotes';
import { killPoint } from './kill-point';
import { type LocalState, LocalStateFile } from './local-state';
import { ManifestCache } from './manifest-cache';
import { proveDescent } from './manifest-chain';
import { adoptRepository, Intent } from './repository-identity';
import { storeChainSource } from './store-chain-source';

export interface RemoteConfig {
  /** The store's canonical URL (s3://bucket/prefix or file:///path): messages, pins, a new descriptor's location. */
  url: string;
  storage: Storage;
  keys: KeyProvider;
  keyProvider: 'local' | 'aws';
  /** kmscrypt.keyId / KMSCRYPT_KEY_ID when set; otherwise the repository's own key, or alias/kmscrypt. */
  keyId?: string;
  /** $GIT_DIR/kmscrypt when running inside a repository. */
  stateDir?: string;
  /** The URL as given to git, when it differs from `url` (a relative path, S3 query parameters): for commands to copy. */
  userUrl?: string;
  /** Checks run once when a repository is created (e.g. that the server enforces conditional writes). */
  beforeCreate?: () => Promise<void>;
}

/** What every manifest carries forward from its predecessor in its preamble (docs/FORMAT.md §7.1). */
export interface ManifestChain {
  history: HistoryRef | null;
  endorsements: Endorsement[];
}

export interface ManifestSnapshot {
  manifest: Manifest | null;
  /** SHA-256 of the stored manifest bytes: the next manifest's `previous`. */
  hash: string | null;
  /** ARN of the KMS key that wrapped the manifest's data key; null when there is no manifest. */
  sealedBy: string | null;
  chain: ManifestChain;
}

/** The log before its first manifest. */
export const NO_MANIFEST: ManifestSnapshot = Object.freeze({
  manifest: null,
  hash: null,
  sealedBy: null,
  chain: Object.freeze({ history: null, endorsements: [] }),
});

/** An existing encrypted repository: its descriptor, its data keys, and its manifest log. */
export class RemoteRepository {
  readonly dataKeys: DataKeyCache;
  readonly state: LocalStateFile;
  readonly trust: KeyTrust;
  private readonly manifestCache: ManifestCache;

  /** Whether this process created the repository (its log is empty). */
  created = false;
  /** The manifest listing open() asked for together with the descriptor, for the first latest(). */
  private earlyListing?: EarlyListing;

  private constructor(
    readonly config: RemoteConfig,
    readonly descriptor: Descriptor,
    readonly descriptorHash: string,
    /** Whether this clone already uses the repository at this location (see adoptRepository). */
    private adopted: boolean,
  ) {
    this.dataKeys = new DataKeyCache(config.keys, repositoryContext(descriptor.repositoryId));
    this.state = LocalStateFile.at(config.stateDir, descriptor.repositoryId);
    this.trust = new KeyTrust(this);
    this.manifestCache = ManifestCache.at(config.stateDir, descriptor.repositoryId);
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
  successor(snapshot: ManifestSnapshot, content: Pick<Manifest, 'keyId' | 'head' | 'refs' | 'containers' | 'peeled'>): Manifest {
    const { peeled, containers, ...rest } = content;
    return {
      repositoryId: this.repositoryId,
      objectFormat: this.descriptor.objectFormat,
      generation: (snapshot.manifest?.generation ?? 0) + 1,
      previous: snapshot.hash,
      createdAt: new Date().toISOString(),
      descriptorHash: this.descriptorHash,
      ...rest,
      // A tag's target never changes: a ref that kept its value keeps its peeled entry.
      peeled: peeled ?? keptPeeled(snapshot.manifest, content.refs),
      containers,
    };
  }

  /**
   * The repository at the configured location, or undefined when there is none. A location this
   * clone has used before must still hold the repository it found there (KnownRemotes); a
   * location it has not used is adopted only by the first latest(), once something only a
   * principal allowed to use the repository's key could have made has been checked.
   *
   * `listFor`: the caller (the helper's list) reads the newest manifest next, to read or to
   * write; the listing and the key questions latest() will need are asked for meanwhile (see
   * earlyListing and KeyTrust.prefetch).
   */
  static async open(config: RemoteConfig, opts: { listFor?: Intent } = {}): Promise<RemoteRepository | undefined> {
    const descriptorRead = config.storage.get(STORE_KEYS.descriptor, DESCRIPTOR_READ);
    descriptorRead.catch(() => undefined); // awaited below
    const expected = await KnownRemotes.in(config.stateDir).repositoryAt(config.url);
    // This clone's state of the repository pinned here, read once for the early listing and the
    // key prefetch; one that cannot be read is latest()'s to report, as it would be without them.
    const pinnedState =
      opts.listFor && expected !== undefined
        ? await LocalStateFile.at(config.stateDir, expected)
            .load()
            .catch(() => undefined)
        : undefined;
    const early = opts.listFor ? earlyListing(config, expected, pinnedState, opts.listFor) : undefined;
    const bytes = await descriptorRead;
    if (!bytes) {
      if (expected) {
        throw new KmscryptError('TAMPERED', `repository ${expected} that this clone used at ${config.url} is gone from the store`, {
          fix: `if it was deliberately removed: git kmscrypt forget ${config.url}`,
        });
      }
      return undefined;
    }
    const descriptor = decodeDescriptor(bytes, config.url);
    if (expected && expected !== descriptor.repositoryId) {
      throw new KmscryptError(
        'TAMPERED',
        `${config.url} now holds repository ${descriptor.repositoryId}, not ${expected} that this clone used: it was replaced`,
        { unchanged: 'no ref was changed', fix: `if it was replaced deliberately: git kmscrypt forget ${config.url}` },
      );
    }
    const repo = new RemoteRepository(config, descriptor, sha256Hex(bytes), expected !== undefined);
    if (opts.listFor) {
      repo.earlyListing = early;
      repo.trust.prefetch(pinnedState);
    }
    return repo;
  }

  static async openExisting(config: RemoteConfig): Promise<RemoteRepository> {
    const repo = await RemoteRepository.open(config);
    if (!repo) {
      throw new KmscryptError('NO_REPOSITORY', `no kmscrypt repository at ${config.url}`, { fix: 'check the URL, or push to it to create one' });
    }
    return repo;
  }

  /**
   * Creates the repository with a create-only write of its descriptor, which carries the location
   * and a proof made with a data key of the repository's key (docs/FORMAT.md §3). When another
   * process created it first, theirs is opened (and adopted only by latest()): there is never
   * more than one repository ID per location.
   */
  static async create(config: RemoteConfig, objectFormat: ObjectFormat): Promise<RemoteRepository> {
    const existing = await RemoteRepository.open(config);
    if (existing) return existing;
    await config.beforeCreate?.();
    const key = await config.keys.ensureKey(config.keyId ?? DEFAULT_ALIAS, config.keyId === undefined || config.keyId === DEFAULT_ALIAS);
    const repositoryId = randomUUID();
    const dataKey = await config.keys.generateDataKey(key.arn, repositoryContext(repositoryId));
    let descriptor: Descriptor;
    try {
      descriptor = proveDescriptor(
        {
          format: 'kmscrypt',
          version: DESCRIPTOR_VERSION,
          repositoryId,
          objectFormat,
          keyId: dataKey.keyId,
          keyProvider: config.keyProvider,
          createdAt: new Date().toISOString(),
          location: config.url,
        },
        dataKey.plaintext,
        dataKey.wrapped,
      );
    } finally {
      dataKey.plaintext.fill(0);
    }
    const bytes = encodeDescriptor(descriptor);
    if (await config.storage.putIfAbsent(STORE_KEYS.descriptor, bytes)) {
      killPoint('create-descriptor');
      await KnownRemotes.in(config.stateDir).remember(config.url, descriptor.repositoryId);
      const repo = new RemoteRepository(config, descriptor, sha256Hex(bytes), true);
      await repo.trust.remember(dataKey.keyId);
      repo.created = true;
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
    if (this.config.keyId === undefined && !(await this.trust.isTrusted(keyId))) throw await this.trust.untrusted(keyId);
    return this.config.keys.generateDataKey(keyId, repositoryContext(this.repositoryId));
  }

  /**
   * Reads the newest manifest of the append-only log and checks it against what this clone has
   * seen before: a lower generation, or the same generation with other bytes, is refused. On
   * first contact with this location the repository is adopted first (adoptRepository); `intent`
   * says whether the caller is about to write to it (a push) or only read it. `kept`: a reader
   * (the helper's list) that may take the manifest this clone kept (ManifestCache) when the
   * stored one is byte for byte the one it last opened; commands that check the store (doctor,
   * verify) open it every time.
   */
  async latest(intent: Intent = 'write', opts: { kept?: boolean } = {}): Promise<ManifestSnapshot> {
    const kept = intent === 'read' && opts.kept === true;
    const seen = await this.state.load();
    const startAfter = listingStart(seen);
    const keys = (await (this.takeEarlyListing(startAfter) ?? this.storage.list(STORE_KEYS.manifestPrefix, startAfter)))
      .map((o) => ({ key: o.key, generation: generationOfKey(o.key) }))
      .filter((o): o is { key: string; generation: number } => o.generation !== undefined);
    const newest = keys.length ? keys[keys.length - 1] : undefined;
    if (!newest) {
      if (seen.generation > 0) throw this.rollback(undefined, seen.generation);
      await this.adopt(NO_MANIFEST, intent);
      return NO_MANIFEST;
    }
    const bytes = await this.storage.get(newest.key, MANIFEST_READ);
    if (!bytes) throw new KmscryptError('STORAGE', `${this.config.url}: manifest ${newest.generation} disappeared while being read`, { fix: 'try again' });
    if (kept && this.adopted && newest.generation === seen.generation && seen.manifestHash === sha256Hex(bytes)) {
      // Exactly the bytes this clone opened and checked last time (every check below would pass
      // as it did then): the decoded manifest kept then, instead of another Decrypt.
      const kept = await this.manifestCache.read({ generation: newest.generation, hash: seen.manifestHash, descriptorHash: this.descriptorHash });
      if (kept) return kept;
    }
    const snapshot = await this.openManifestBytes(bytes, newest.generation);
    if (newest.generation < seen.generation) throw this.rollback(newest.generation, seen.generation);
    if (newest.generation === seen.generation + 1 && seen.manifestHash && snapshot.manifest!.previous !== seen.manifestHash) {
      throw new KmscryptError(
        'TAMPERED',
        `${this.config.url}: manifest ${newest.generation} does not follow the manifest ${seen.generation} this clone saw: the history was rewritten`,
        { unchanged: 'no ref was changed' },
      );
    }
    if (newest.generation === seen.generation && seen.manifestHash && seen.manifestHash !== snapshot.hash) {
      throw new KmscryptError('TAMPERED', `${this.config.url}: manifest ${newest.generation} is not the one this clone saw before: it was replaced`, {
        unchanged: 'no ref was changed',
      });
    }
    if (newest.generation > seen.generation + 1 && seen.manifestHash) {
      await this.proveContinuity({ generation: seen.generation, hash: seen.manifestHash }, snapshot, new Set(keys.map((k) => k.generation)));
    }
    await this.adopt(snapshot, intent);
    await this.state.update({ generation: newest.generation, manifestHash: snapshot.hash ?? undefined });
    if (kept) await this.manifestCache.write(snapshot, this.descriptorHash);
    return snapshot;
  }

  /**
   * The newest manifest is more than one generation past the one this clone saw: it must descend
   * from it (docs/FORMAT.md §9.1), or the store forked the history while this clone was away.
   */
  private async proveContinuity(seen: { generation: number; hash: string }, newest: ManifestSnapshot, stored: ReadonlySet<number>): Promise<void> {
    const manifest = newest.manifest!;
    const link = { hash: newest.hash!, previous: manifest.previous, history: newest.chain.history };
    const source = storeChainSource(this, stored, seen.generation + 1, manifest.generation - 1);
    const descent = await proveDescent(seen, { generation: manifest.generation, link }, source);
    if (descent.proved) return;
    const head = `${this.config.url}: manifest ${manifest.generation} does not descend from the manifest ${seen.generation} this clone saw`;
    if (descent.reason === 'fork') {
      throw new KmscryptError('TAMPERED', `${head}: the history was forked (at manifest ${descent.at})`, {
        reason: 'fork',
        at: descent.at,
        unchanged: 'no ref was changed',
      });
    }
    throw new KmscryptError('TAMPERED', `${head} as far as the store can show: manifest ${descent.at} is gone and no history object attests it`, {
      reason: 'unattested',
      at: descent.at,
      unchanged: 'no ref was changed',
      fix: `if an earlier kmscrypt's gc removed it and you trust the store, delete ${this.state.path ?? "this clone's state file"} to accept its current state`,
    });
  }

  /** The listing open() started, once, if it starts where this one must (the state did not move meanwhile). */
  private takeEarlyListing(startAfter: string | undefined): Promise<StoredObjectInfo[]> | undefined {
    const early = this.earlyListing;
    this.earlyListing = undefined;
    return early && early.startAfter === startAfter ? early.listing : undefined;
  }

  private async adopt(snapshot: ManifestSnapshot, intent: Intent): Promise<void> {
    if (this.adopted) return;
    await adoptRepository(this, snapshot, intent);
    this.adopted = true;
  }

  async openManifestBytes(bytes: Buffer, generation: number): Promise<ManifestSnapshot> {
    const what = `${this.config.url}: manifest ${generation}`;
    const env = parseManifestEnvelope(bytes, what);
    if (env.generation !== generation) {
      throw new KmscryptError('TAMPERED', `${what} is stored under the wrong generation (${env.generation}): an old manifest was put back`, {
        unchanged: 'no ref was changed',
      });
    }
    let key: { plaintext: Buffer; keyId: string };
    if (env.version >= 3) {
      // The preamble names the key's ARN and the endorsements that lead to it: the key is
      // accepted (or refused) before KMS is asked anything about it.
      await this.trust.accept(env.keyId, env.endorsements);
      key = await this.dataKeys.unwrapWithKeyId(env.wrappedKey, env.keyId).catch((err: unknown) => {
        const kmsError = isKmscryptError(err, 'KEY_ERROR') ? err.data.kmsError : undefined;
        if (kmsError !== 'IncorrectKeyException' && kmsError !== 'InvalidCiphertextException') throw err;
        throw new KmscryptError(
          'TAMPERED',
          `${what}: its wrapped data key does not unwrap under ${env.keyId}, the key its preamble names, for this repository (${kmsError}): it was altered or belongs to another repository`,
          { unchanged: 'no ref was changed' },
        );
      });
    } else {
      key = await this.unwrapLegacy(env);
      await this.trust.remember(key.keyId);
    }
    const manifest = openManifest(env, key.plaintext, this.repositoryId, what);
    if (manifest.descriptorHash !== this.descriptorHash) {
      throw new KmscryptError('TAMPERED', `${this.config.url}: the repository descriptor (kmscrypt.json) was altered or replaced`, {
        unchanged: 'no ref was changed',
      });
    }
    if (manifest.objectFormat !== this.descriptor.objectFormat) {
      throw new KmscryptError('TAMPERED', `${what} is for ${manifest.objectFormat} objects but the descriptor says ${this.descriptor.objectFormat}`);
    }
    return { manifest, hash: sha256Hex(bytes), sealedBy: key.keyId, chain: { history: env.history, endorsements: env.endorsements } };
  }

  /** The data key of a manifest of version 1 or 2 (see KeyTrust.legacyKeyId). */
  async unwrapLegacyManifestKey(env: ManifestEnvelope): Promise<Buffer> {
    return (await this.unwrapLegacy(env)).plaintext;
  }

  private async unwrapLegacy(env: ManifestEnvelope): Promise<{ plaintext: Buffer; keyId: string }> {
    try {
      return await this.dataKeys.unwrapWithKeyId(env.wrappedKey, await this.trust.legacyKeyId(env.keyId));
    } catch (err) {
      if (isKmscryptError(err, 'KEY_ERROR') && err.data.kmsError === 'IncorrectKeyException') throw await this.trust.untrusted(env.keyId);
      throw err;
    }
  }

  /**
   * Create-only publication of the next manifest: false when another publisher got that
   * generation first. `chain` is what its preamble carries forward (usually the predecessor's).
   * `snapshot`: the log as it is once this manifest is the newest (when published).
   */
  async publish(manifest: Manifest, dataKey: DataKey, chain: ManifestChain): Promise<{ published: boolean; hash: string; snapshot: ManifestSnapshot }> {
    const bytes = sealManifest(manifest, dataKey.plaintext, { keyArn: dataKey.keyId, wrappedKey: dataKey.wrapped, ...chain });
    if (bytes.length > MANIFEST_LIMIT) {
      throw new KmscryptError(
        'TOO_LARGE',
        `${this.config.url}: the next manifest would be ${bytes.length} bytes, over the ${MANIFEST_LIMIT}-byte limit readers accept`,
        { unchanged: 'nothing was published', fix: 'run git kmscrypt gc, or keep fewer refs' },
      );
    }
    const hash = sha256Hex(bytes);
    const published = await this.storage.putIfAbsent(manifestKey(manifest.generation), bytes);
    if (published) await this.state.update({ generation: manifest.generation, manifestHash: hash });
    return { published, hash, snapshot: { manifest, hash, sealedBy: dataKey.keyId, chain } };
  }

  private rollback(found: number | undefined, seen: number): KmscryptError {
    const what = found === undefined ? `it has no manifest of generation ${seen} or later` : `its newest manifest is generation ${found}`;
    return new KmscryptError(
      'ROLLBACK',
      `${this.config.url} went backwards: ${what} but this clone has seen generation ${seen}; the newest manifests were deleted or withheld`,
      { unchanged: 'no ref was changed' },
    );
  }
}

/** The peeled entries of `base` whose refs still have the same value in `refs`. */
function keptPeeled(base: Manifest | null, refs: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [name, target] of Object.entries(base?.peeled ?? {})) if (base?.refs[name] === refs[name]) kept[name] = target;
  return kept;
}

interface EarlyListing {
  startAfter: string | undefined;
  listing: Promise<StoredObjectInfo[]>;
}

/** Where the listing of manifests starts for a clone that saw `seen`: at the one before it (a rollback to it must show). */
function listingStart(seen: { generation: number }): string | undefined {
  return seen.generation > 1 ? manifestKey(seen.generation - 1) : undefined;
}

/**
 * Which manifests latest() lists depends only on this clone's state of the repository, so the
 * listing is asked for while the descriptor is read: one round trip fewer for every ls-remote,
 * fetch and push. At a location this clone has used, from the state of the repository pinned
 * there; at a new one, from the start, but only to read: a push may be about to create the
 * repository, and listing an empty location would be a request more. The listing is used only if
 * the descriptor names that repository (open() refuses any other at a pinned location) and the
 * state of the repository read starts the listing at the same place when latest() runs.
 * `pinnedState`: that state as open() read it (none when it could not be read: no early listing).
 */
function earlyListing(config: RemoteConfig, pinned: string | undefined, pinnedState: LocalState | undefined, intent: Intent): EarlyListing | undefined {
  if (pinned === undefined ? intent === 'write' : pinnedState === undefined) return undefined;
  const startAfter = listingStart(pinnedState ?? { generation: 0 });
  const listing = config.storage.list(STORE_KEYS.manifestPrefix, startAfter);
  listing.catch(() => undefined); // awaited by latest(), or dropped with a descriptor open() refuses
  return { startAfter, listing };
}
