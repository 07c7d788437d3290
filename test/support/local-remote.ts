/**
 * A kmscrypt repository in a temporary directory, driven in this process: LocalStorage, and
 * LocalKeyProvider over a keyring of its own. Pushes are made here too (storeContainer over a
 * pack written by test-pack.ts, then a create-only publication), so the tests of gc, rotate-key
 * and fetch planning run against real stores without git.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerRef, Manifest } from '../../src/format/manifest';
import type { WrittenPack } from '../../src/git/pack-objects';
import type { DataKey } from '../../src/keys/key-provider';
import { Keyring, KeyringKey } from '../../src/keys/keyring';
import { localKeyArn, LocalKeyProvider } from '../../src/keys/local-key-provider';
import { openContainers } from '../../src/remote/container-reader';
import { storeContainer } from '../../src/remote/container-writer';
import { RemoteObjects } from '../../src/remote/remote-objects';
import { ManifestSnapshot, RemoteConfig, RemoteRepository } from '../../src/remote/remote-repository';
import { LocalStorage } from '../../src/storage/local-storage';
import { TestObject, writeTestPack } from './test-pack';

export interface LocalRemote {
  dir: string;
  keyring: Keyring;
  storage: LocalStorage;
  /** The repository as the clone that created it sees it (its own state directory). */
  repo: RemoteRepository;
  /** What another clone sees: its own state directory and a fresh key provider (no cached data keys). */
  clone(name: string, over?: Partial<RemoteConfig>): Promise<RemoteRepository>;
}

/** A new, empty repository (SHA-1 objects) under the keyring's alias/kmscrypt, removed at teardown. */
export async function localRemote(t: { teardown(fn: () => void): void }): Promise<LocalRemote> {
  const dir = mkdtempSync(join(tmpdir(), 'kmscrypt-local-remote-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keyring = new Keyring(join(dir, 'keyring.json'));
  keyring.update(() => undefined); // an empty keyring file: no notice that one was created
  const storage = new LocalStorage(join(dir, 'store'));
  const config = (name: string, over: Partial<RemoteConfig> = {}): RemoteConfig => ({
    url: `file://${join(dir, 'store')}`,
    storage,
    keys: new LocalKeyProvider(keyring),
    keyProvider: 'local',
    stateDir: join(dir, name),
    ...over,
  });
  const repo = await RemoteRepository.create(config('creator'), 'sha1');
  return { dir, keyring, storage, repo, clone: (name, over) => RemoteRepository.openExisting(config(name, over)) };
}

/** A new key of the keyring, with its ARN as manifests name it. */
export function createKey(keyring: Keyring, alias: string): KeyringKey & { arn: string } {
  const key = keyring.createKey(`test key ${alias}`, { alias });
  return { ...key, arn: localKeyArn(key.keyId) };
}

/** Sets a key's state in the keyring, as `git kmscrypt keys disable` would. */
export function setKeyState(keyring: Keyring, arn: string, state: KeyringKey['state']): void {
  keyring.update((file) => {
    const key = file.keys.find((k) => arn.endsWith(`:key/${k.keyId}`));
    if (!key) throw new Error(`no key ${arn} in the keyring`);
    key.state = state;
  });
}

/**
 * What a push does, without git: the objects sealed into one new container, then the next manifest
 * with the refs changed as given (null deletes) and the container added, published create-only.
 */
export async function pushObjects(
  repo: RemoteRepository,
  objects: TestObject[],
  refs: Record<string, string | null>,
): Promise<{ container: ContainerRef; oids: string[]; snapshot: ManifestSnapshot }> {
  const work = mkdtempSync(join(tmpdir(), 'kmscrypt-test-push-'));
  try {
    const { pack, oids } = writeTestPack(work, 'pack', objects);
    return { ...(await pushPack(repo, pack, refs)), oids };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The same with a pack written elsewhere (by git, in the local-tier tests). */
export async function pushPack(
  repo: RemoteRepository,
  pack: WrittenPack,
  refs: Record<string, string | null>,
): Promise<{ container: ContainerRef; snapshot: ManifestSnapshot }> {
  const snapshot = await repo.latest();
  const dataKey = await repo.generateDataKey(snapshot.manifest);
  try {
    const container = await sealAndStore(repo, pack, dataKey);
    const published = await publish(repo, snapshot, dataKey, (m) => ({
      refs: applyRefs(m?.refs ?? {}, refs),
      containers: [...(m?.containers ?? []), container],
    }));
    return { container, snapshot: published };
  } finally {
    dataKey.plaintext.fill(0);
  }
}

/** A container stored and listed by no manifest: a push interrupted before it published, or still under way. */
export async function storeObjects(repo: RemoteRepository, objects: TestObject[]): Promise<ContainerRef> {
  const work = mkdtempSync(join(tmpdir(), 'kmscrypt-test-push-'));
  const dataKey = await repo.generateDataKey((await repo.latest()).manifest);
  try {
    return await sealAndStore(repo, writeTestPack(work, 'pack', objects).pack, dataKey);
  } finally {
    dataKey.plaintext.fill(0);
    rmSync(work, { recursive: true, force: true });
  }
}

async function sealAndStore(repo: RemoteRepository, pack: WrittenPack, dataKey: DataKey): Promise<ContainerRef> {
  const container = await storeContainer(repo.storage, {
    pack,
    hashLength: 20,
    outPath: `${pack.packPath}.container`,
    dataKey,
    repositoryId: repo.repositoryId,
    progress: false,
  });
  if (!container) throw new Error('the pack held no object');
  return container;
}

/** Publishes the manifest after the newest with `change` applied to its refs or containers (an earlier gc's, say). */
export async function publishManifest(
  repo: RemoteRepository,
  change: (m: Manifest | null) => Partial<Pick<Manifest, 'refs' | 'containers'>>,
): Promise<ManifestSnapshot> {
  const snapshot = await repo.latest();
  const dataKey = await repo.generateDataKey(snapshot.manifest);
  try {
    return await publish(repo, snapshot, dataKey, change);
  } finally {
    dataKey.plaintext.fill(0);
  }
}

/**
 * The objects as a reader gets them from the containers the newest manifest lists: decrypted,
 * rebuilt and checked against their IDs (RemoteObjects); an object no container holds is absent.
 */
export async function readObjects(repo: RemoteRepository, oids: string[]): Promise<Map<string, Buffer>> {
  const { manifest } = await repo.latest('read');
  const objects = new RemoteObjects(repo, await openContainers(repo, manifest?.containers ?? []));
  const located = oids.flatMap((oid) => {
    const loc = objects.locate(oid);
    return loc ? [{ oid, loc }] : [];
  });
  const rebuilt = await objects.objects(located.map((l) => l.loc));
  return new Map(located.map(({ oid, loc }) => [oid, rebuilt.get(loc)!.data]));
}

async function publish(
  repo: RemoteRepository,
  snapshot: ManifestSnapshot,
  dataKey: DataKey,
  change: (m: Manifest | null) => Partial<Pick<Manifest, 'refs' | 'containers'>>,
): Promise<ManifestSnapshot> {
  const base = snapshot.manifest;
  const next = repo.successor(snapshot, {
    keyId: dataKey.keyId,
    head: base?.head ?? 'refs/heads/main',
    refs: base?.refs ?? {},
    containers: base?.containers ?? [],
    ...change(base),
  });
  const { published, snapshot: publishedSnapshot } = await repo.publish(next, dataKey, snapshot.chain);
  if (!published) throw new Error(`generation ${next.generation} was taken`);
  return publishedSnapshot;
}

function applyRefs(refs: Record<string, string>, changes: Record<string, string | null>): Record<string, string> {
  const out = { ...refs };
  for (const [name, oid] of Object.entries(changes)) {
    if (oid === null) delete out[name];
    else out[name] = oid;
  }
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}
