import t from 'tap';
import { containerKey } from '../src/format/constants';
import { LocalKeyProvider } from '../src/keys/local-key-provider';
import { openContainers } from '../src/remote/container-reader';
import { RemoteRepository } from '../src/remote/remote-repository';
import type { ByteRange } from '../src/storage/storage';
import { localRemote, pushObjects } from './support/local-remote';
import { overriding } from './support/overriding';
import { blob } from './support/test-pack';

/**
 * Opening a container asks KMS for its data key while its index is read (the wrapped key comes
 * from the authenticated manifest): a clone of a store with many containers, each under its own
 * data key, waits for one round trip per container rather than two. The store's bytes are still
 * checked first: a tampered index is reported as such, whatever KMS answers.
 */
t.test("a container's data key is asked for while its index is read", async (t) => {
  const remote = await localRemote(t);
  const first = await pushObjects(remote.repo, [blob('one')], {});
  await pushObjects(remote.repo, [blob('two')], {});
  const unwrapped: string[] = [];
  const keys = new LocalKeyProvider(remote.keyring);
  const watched = overriding(keys, {
    decryptDataKey: (...args: Parameters<LocalKeyProvider['decryptDataKey']>) => {
      unwrapped.push(args[0].toString('base64'));
      return keys.decryptDataKey(...args);
    },
  });
  let releaseIndex!: () => void;
  const indexHeld = new Promise<void>((resolve) => (releaseIndex = resolve));
  const storage = overriding(remote.storage, {
    getRange: async (key: string, range: ByteRange) => {
      if (key === containerKey(first.container.id)) await indexHeld;
      return remote.storage.getRange(key, range);
    },
  });
  const repo = await remote.clone('reader', { storage, keys: watched });
  const { manifest } = await repo.latest('read');
  const ref = manifest!.containers.find((c) => c.id === first.container.id)!;
  unwrapped.length = 0;
  const opening = openContainers(repo, [ref]);
  const deadline = Date.now() + 5000;
  while (unwrapped.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
  t.same(unwrapped, [ref.wrappedKey], "the container's own data key was asked for before its index arrived");
  releaseIndex();
  const [opened] = await opening;
  t.equal(opened.index.count, 1, 'the index opened');
});

t.test('a tampered index is reported as tampered, not as whatever KMS said', async (t) => {
  const remote = await localRemote(t);
  const first = await pushObjects(remote.repo, [blob('one')], {});
  await pushObjects(remote.repo, [blob('two')], {});
  const failing = overriding(new LocalKeyProvider(remote.keyring), { decryptDataKey: () => Promise.reject(new Error('KMS is down')) });
  const storage = overriding(remote.storage, {
    getRange: async (key: string, range: ByteRange) => {
      const bytes = await remote.storage.getRange(key, range);
      if (key === containerKey(first.container.id)) bytes[0] ^= 1;
      return bytes;
    },
  });
  const reader = await remote.clone('reader');
  const { manifest } = await reader.latest('read');
  const ref = manifest!.containers.find((c) => c.id === first.container.id)!;
  const repo = (await RemoteRepository.open({ ...reader.config, storage, keys: failing }))!;
  await t.rejects(openContainers(repo, [ref]), { message: /does not match the manifest: it was altered or replaced/ });
});
