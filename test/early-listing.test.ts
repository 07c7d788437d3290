import { join } from 'node:path';
import t from 'tap';
import { DESCRIPTOR_READ, manifestKey, STORE_KEYS } from '../src/format/constants';
import { LocalKeyProvider } from '../src/keys/local-key-provider';
import { LocalStateFile } from '../src/remote/local-state';
import { type RemoteConfig, RemoteRepository } from '../src/remote/remote-repository';
import type { ReadLimit, Storage } from '../src/storage/storage';
import { localRemote, publishManifest, type LocalRemote } from './support/local-remote';
import { overriding } from './support/overriding';

/**
 * The helper's `list` asks for the manifest listing while the descriptor is read
 * (RemoteRepository.open with `listFor`): one round trip fewer per ls-remote, fetch and push.
 * The store here answers the descriptor only when the test says so, and records what was asked
 * meanwhile. That the requests stay the same end to end, with git and RGW, is
 * test/request-counts.test.ts.
 */

interface Gate {
  storage: Storage;
  /** Storage calls in order, as "get <key>" or "list <startAfter>". */
  calls: string[];
  /** Lets the held descriptor read answer. */
  release(): void;
}

/** The remote's store, holding every read of the descriptor until release(). */
function gatedStorage(inner: Storage): Gate {
  const calls: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  const storage = overriding(inner, {
    get: async (key: string, limit: ReadLimit) => {
      calls.push(`get ${key}`);
      if (key === STORE_KEYS.descriptor) await released;
      return inner.get(key, limit);
    },
    list: (prefix: string, startAfter?: string) => {
      calls.push(`list ${startAfter ?? '(start)'}`);
      return inner.list(prefix, startAfter);
    },
  });
  return { storage, calls, release };
}

function cloneConfig(remote: LocalRemote, name: string, storage: Storage): RemoteConfig {
  return {
    url: `file://${join(remote.dir, 'store')}`,
    storage,
    keys: new LocalKeyProvider(remote.keyring),
    keyProvider: 'local',
    stateDir: join(remote.dir, name),
  };
}

/** Waits until `done()` or `ms` have passed: time for the file reads open() makes and for a request to be sent. */
async function settle(done: () => boolean = () => false, ms = 300): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
}

async function remoteWithManifests(t: Parameters<typeof localRemote>[0], count: number): Promise<LocalRemote> {
  const remote = await localRemote(t);
  for (let i = 0; i < count; i++) await publishManifest(remote.repo, (m) => ({ refs: { ...(m?.refs ?? {}), [`refs/heads/b${i}`]: 'a'.repeat(40) } }));
  return remote;
}

/**
 * Clone 'c' reads the location once (first contact pins it to the repository and records the
 * newest generation), then opens it again through a gated store, for the helper's list.
 */
async function reopenThroughGate(remote: LocalRemote): Promise<{ gate: Gate; opening: Promise<RemoteRepository | undefined> }> {
  await (await RemoteRepository.open(cloneConfig(remote, 'c', remote.storage), { listFor: 'read' }))!.latest('read');
  const gate = gatedStorage(remote.storage);
  const opening = RemoteRepository.open(cloneConfig(remote, 'c', gate.storage), { listFor: 'read' });
  await settle(() => gate.calls.length >= 2, 5000);
  return { gate, opening };
}

t.test('a clone that has used the location: the listing is asked before the descriptor answers, and used', async (t) => {
  const remote = await remoteWithManifests(t, 3);
  const { gate, opening } = await reopenThroughGate(remote);
  t.same(
    gate.calls,
    [`get ${STORE_KEYS.descriptor}`, `list ${manifestKey(2)}`],
    'the listing from the manifest before the one seen, while the descriptor is read',
  );
  gate.release();
  const repo = (await opening)!;
  const snapshot = await repo.latest('read');
  t.equal(snapshot.manifest?.generation, 3, 'the newest manifest');
  t.same(
    gate.calls.filter((c) => c.startsWith('list')),
    [`list ${manifestKey(2)}`],
    'one listing in all: latest() took the one asked for early',
  );
  await publishManifest(remote.repo, () => ({}));
  t.equal((await repo.latest('read')).manifest?.generation, 4, 'a later latest() lists again and sees a newer manifest');
});

t.test('the state moved between open and latest (another git process of the clone fetched): the early listing is not used', async (t) => {
  const remote = await remoteWithManifests(t, 2);
  const { gate, opening } = await reopenThroughGate(remote);
  gate.release();
  const repo = (await opening)!;
  // Meanwhile another process of this clone saw generation 3.
  const third = await publishManifest(remote.repo, () => ({}));
  await LocalStateFile.at(join(remote.dir, 'c'), repo.repositoryId).update({ generation: 3, manifestHash: third.hash! });
  const snapshot = await repo.latest('read');
  t.equal(snapshot.manifest?.generation, 3, 'the manifest the state now names');
  t.same(
    gate.calls.filter((c) => c.startsWith('list')),
    [`list ${manifestKey(1)}`, `list ${manifestKey(2)}`],
    'listed again from where the state now starts',
  );
});

t.test('a first read of a location: listed from the start while the descriptor is read', async (t) => {
  const remote = await remoteWithManifests(t, 2);
  const gate = gatedStorage(remote.storage);
  const opening = RemoteRepository.open(cloneConfig(remote, 'fresh', gate.storage), { listFor: 'read' });
  await settle(() => gate.calls.length >= 2, 5000);
  t.same(gate.calls, [`get ${STORE_KEYS.descriptor}`, 'list (start)'], 'the whole listing, asked with the descriptor');
  gate.release();
  const snapshot = await (await opening)!.latest('read');
  t.equal(snapshot.manifest?.generation, 2, 'the newest manifest');
  t.equal(gate.calls.filter((c) => c.startsWith('list')).length, 1, 'one listing in all');
});

t.test('a first push to a location, and callers that do not ask for it: no listing before latest()', async (t) => {
  const remote = await remoteWithManifests(t, 1);
  for (const [what, listFor] of [
    ['a location this clone has not used, to write (the push may be about to create the repository)', 'write'],
    ['open() without listFor', undefined],
  ] as const) {
    if (!listFor) await (await RemoteRepository.open(cloneConfig(remote, 'used', remote.storage)))!.latest('read');
    const gate = gatedStorage(remote.storage);
    const opening = RemoteRepository.open(cloneConfig(remote, listFor ? 'fresh' : 'used', gate.storage), { listFor });
    await settle();
    t.same(gate.calls, [`get ${STORE_KEYS.descriptor}`], `${what}: only the descriptor is read`);
    gate.release();
    await opening;
  }
});

t.test('the descriptor names another repository: refused as before, and the early listing is dropped without an unhandled rejection', async (t) => {
  const remote = await remoteWithManifests(t, 1);
  const first = (await RemoteRepository.open(cloneConfig(remote, 'c', remote.storage), { listFor: 'read' }))!;
  await first.latest('read');
  const other = await localRemote(t);
  const descriptor = await other.storage.get(STORE_KEYS.descriptor, DESCRIPTOR_READ);
  const swapped = overriding(remote.storage, {
    get: (key: string, limit: ReadLimit) => (key === STORE_KEYS.descriptor ? Promise.resolve(descriptor) : remote.storage.get(key, limit)),
    list: () => Promise.reject(new Error('the store refused the listing')),
  });
  await t.rejects(RemoteRepository.open(cloneConfig(remote, 'c', swapped), { listFor: 'read' }), { message: /now holds repository .* it was replaced/ });
  await settle();
});

t.test("a first read of a location: the user's own key is described while the manifest is read; not by a clone that trusts a key already", async (t) => {
  const remote = await remoteWithManifests(t, 1);
  const described: string[] = [];
  const keys = new LocalKeyProvider(remote.keyring);
  const watched = overriding(keys, {
    describeKey: (keyId: string) => {
      described.push(keyId);
      return keys.describeKey(keyId);
    },
  });
  let releaseManifest!: () => void;
  const manifestHeld = new Promise<void>((resolve) => (releaseManifest = resolve));
  const storage = overriding(remote.storage, {
    get: async (key: string, limit: ReadLimit) => {
      if (key.startsWith(STORE_KEYS.manifestPrefix)) await manifestHeld;
      return remote.storage.get(key, limit);
    },
  });
  const config = { ...cloneConfig(remote, 'fresh', storage), keys: watched };
  const reading = RemoteRepository.open(config, { listFor: 'read' }).then((repo) => repo!.latest('read'));
  await settle(() => described.length > 0, 5000);
  t.same(described, ['alias/kmscrypt'], 'alias/kmscrypt described before the manifest has arrived');
  releaseManifest();
  t.equal((await reading).manifest?.generation, 1, 'the manifest read, its key trusted as the user’s own');
  t.same(described, ['alias/kmscrypt'], 'described once');

  described.length = 0;
  const again = (await RemoteRepository.open(config, { listFor: 'read' }))!;
  await again.latest('read');
  await settle();
  t.same(described, [], 'the same clone again: it trusts the key already, nothing is described');
});
