/**
 * rotateKey (src/remote/rotate-key.ts) in this process, against a LocalStorage store and a
 * LocalKeyProvider over a keyring of the test's own: after a rotation every data key the newest
 * manifest names is wrapped by the new key, so the repository reads with the old key disabled.
 * test/cmd-rotate-key.test.ts drives the command through git on both backends.
 */
import t from 'tap';
import { isKmscryptError } from '../src/errors';
import { manifestKey, STORE_KEYS } from '../src/format/constants';
import { LocalKeyProvider } from '../src/keys/local-key-provider';
import { rotateKey } from '../src/remote/rotate-key';
import { createKey, localRemote, pushObjects, readObjects, setKeyState } from './support/local-remote';
import { blob } from './support/test-pack';

const one = blob('one\n'.repeat(50));
const two = blob('two\n'.repeat(50));
const twoEdited = blob('two\n'.repeat(49) + 'edited\n');
const three = blob('three\n');

/** A repository of three pushes (one of them a delta over an object of an earlier push), under alias/kmscrypt. */
async function threePushes(t: Parameters<typeof localRemote>[0]) {
  const remote = await localRemote(t);
  await pushObjects(remote.repo, [{ data: one.data }], { 'refs/heads/main': one.oid });
  await pushObjects(remote.repo, [{ data: two.data }, { data: three.data }], { 'refs/heads/main': two.oid });
  await pushObjects(remote.repo, [{ data: twoEdited.data, deltaOf: two }], { 'refs/heads/topic': twoEdited.oid });
  const before = (await remote.repo.latest()).manifest!;
  return { remote, before, oldKey: before.keyId };
}

t.test('every data key is rewrapped under the new key: the repository reads with the old key disabled', async (t) => {
  const { remote, before, oldKey } = await threePushes(t);
  const next = createKey(remote.keyring, 'alias/next');
  const report = await rotateKey(remote.repo, 'alias/next');
  t.same(
    report,
    { repositoryId: remote.repo.repositoryId, keyArn: next.arn, rewrapped: 3, alreadyUnderKey: 0, generation: before.generation + 1, previousKeys: [oldKey] },
    'three containers rewrapped, one new manifest',
  );

  setKeyState(remote.keyring, oldKey, 'Disabled');
  const again = await remote.clone('creator'); // the clone that rotated, with fresh key caches
  const snapshot = await again.latest('read');
  t.equal(snapshot.sealedBy, next.arn, 'the manifest is sealed under the new key');
  t.same(
    snapshot.manifest!.containers.map((c) => c.keyId),
    [next.arn, next.arn, next.arn],
    'every container names the new key',
  );
  t.same(
    snapshot.manifest!.containers.map((c) => c.id),
    before.containers.map((c) => c.id),
    'the same containers: object data is not rewritten',
  );
  t.same(snapshot.manifest!.refs, before.refs, 'refs unchanged');
  const objects = await readObjects(again, [one.oid, two.oid, three.oid, twoEdited.oid]);
  t.same([...objects.values()], [one.data, two.data, three.data, twoEdited.data], 'every object reads back, the delta included, with the old key disabled');

  const configured = await remote.clone('fresh', { keyId: next.arn });
  t.same([...(await readObjects(configured, [twoEdited.oid])).values()], [twoEdited.data], 'and so does a new clone configured with the new key');
});

t.test('a rerun finds the repository under the key: nothing rewrapped, nothing published', async (t) => {
  const { remote } = await threePushes(t);
  createKey(remote.keyring, 'alias/next');
  const first = await rotateKey(remote.repo, 'alias/next');
  const keys = remote.repo.config.keys as LocalKeyProvider;
  const reEncrypts = keys.calls.reEncrypt;
  const manifests = (await remote.storage.list(STORE_KEYS.manifestPrefix)).length;
  const second = await rotateKey(remote.repo, 'alias/next');
  t.equal(second.generation, null, 'no new generation');
  t.equal(second.rewrapped, 0);
  t.equal(second.alreadyUnderKey, 3);
  t.same(second.previousKeys, []);
  t.equal(keys.calls.reEncrypt, reEncrypts, 'no ReEncrypt');
  t.equal((await remote.storage.list(STORE_KEYS.manifestPrefix)).length, manifests, 'no manifest written');
  t.equal(first.generation, manifests);
});

t.test('a push after the rotation is sealed under the new key, and the rotation is followed again to a third key', async (t) => {
  const { remote, oldKey } = await threePushes(t);
  const next = createKey(remote.keyring, 'alias/next');
  await rotateKey(remote.repo, 'alias/next');
  const four = blob('four\n');
  // Without kmscrypt.keyId a push uses the repository's current key, which this clone trusts now.
  const { container } = await pushObjects(remote.repo, [{ data: four.data }], { 'refs/heads/main': four.oid });
  t.equal(container.keyId, next.arn, "the new container's data key is under the new key");

  const last = createKey(remote.keyring, 'alias/last');
  const report = await rotateKey(remote.repo, last.arn);
  t.equal(report.rewrapped, 4, 'all four containers, the one pushed under the second key too');
  t.same(report.previousKeys, [next.arn], 'only the second key was still in use');
  setKeyState(remote.keyring, oldKey, 'Disabled');
  setKeyState(remote.keyring, next.arn, 'Disabled');
  const objects = await readObjects(await remote.clone('creator'), [one.oid, four.oid, twoEdited.oid]);
  t.same([...objects.values()], [one.data, four.data, twoEdited.data], 'readable with both earlier keys disabled');
});

t.test('a rotation to a disabled key is refused before anything is written', async (t) => {
  const { remote, before } = await threePushes(t);
  const next = createKey(remote.keyring, 'alias/next');
  setKeyState(remote.keyring, next.arn, 'Disabled');
  const keys = remote.repo.config.keys as LocalKeyProvider;
  const reEncrypts = keys.calls.reEncrypt;
  const err = await rotateKey(remote.repo, 'alias/next').catch((e: unknown) => e);
  t.ok(isKmscryptError(err, 'KEY_ERROR'), 'KEY_ERROR');
  t.equal(keys.calls.reEncrypt, reEncrypts, 'no data key was rewrapped');
  t.same(
    (await remote.storage.list(STORE_KEYS.manifestPrefix)).map((o) => o.key).pop(),
    manifestKey(before.generation),
    'the newest manifest is the one before',
  );
});
