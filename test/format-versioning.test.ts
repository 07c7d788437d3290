/**
 * Versioning (docs/FORMAT.md §11): new containers and manifests are written as version 3 and new
 * descriptors as version 2; readers read versions 1, 2 and 3 of containers and manifests and
 * versions 1 and 2 of the descriptor, and refuse any other with CORRUPT and a message telling the
 * user to upgrade.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { DESCRIPTOR_VERSION, FORMAT_VERSION } from '../src/format/constants';
import { decodePreamble, encodePreamble } from '../src/format/container';
import { decodeDescriptor, Descriptor, encodeDescriptor, proveDescriptor } from '../src/format/descriptor';
import { Manifest, openManifest, parseManifestEnvelope, sealManifest } from '../src/format/manifest';
import { sealLegacyManifest } from './support/legacy-manifest';

const upgrade = /format version (0|4|255); this kmscrypt reads version 1, 2 and 3, upgrade it/;

const v1: Descriptor = {
  format: 'kmscrypt',
  version: 1,
  repositoryId: '12345678-9abc-4def-8123-456789abcdef',
  objectFormat: 'sha1',
  keyId: 'alias/kmscrypt',
  keyProvider: 'local',
  createdAt: '2024-01-01T00:00:00.000Z',
};
const dataKey = randomBytes(32);
const v2 = proveDescriptor({ ...v1, version: 2, location: 'file:///srv/repo' }, dataKey, randomBytes(40));

const manifest: Manifest = { repositoryId: v1.repositoryId, objectFormat: 'sha1', generation: 1, previous: null, createdAt: '', descriptorHash: '00'.repeat(32), keyId: 'k', head: null, refs: {}, containers: [] };
const sealed = () => sealManifest(manifest, dataKey, { keyArn: 'k', wrappedKey: randomBytes(8), history: null, endorsements: [] });

t.test('version 3 is what is written, and version 2 of the descriptor', async (t) => {
  t.equal(FORMAT_VERSION, 3);
  t.equal(DESCRIPTOR_VERSION, 2);
  const preamble = encodePreamble({ containerId: randomBytes(16), hashLength: 20, commitment: randomBytes(32), keyId: 'k', wrappedKey: randomBytes(8) });
  t.equal(preamble[4], 3);
  t.equal(sealed()[4], 3);
  t.equal(JSON.parse(encodeDescriptor(v2).toString()).version, 2);
});

t.test('versions 1, 2 and 3 of containers and manifests are read', async (t) => {
  for (const version of [1, 2] as const) {
    const preamble = encodePreamble({ version, containerId: randomBytes(16), hashLength: 20, keyId: 'k', wrappedKey: randomBytes(8) });
    t.equal(decodePreamble(preamble, 'container').preamble.version, version, `container version ${version}`);
    const legacy = sealLegacyManifest(manifest, dataKey, 'alias/kmscrypt', randomBytes(8), version);
    const env = parseManifestEnvelope(legacy, 'manifest');
    t.match(env, { version, generation: 1, keyId: 'alias/kmscrypt', commitment: null, previous: undefined, history: null, endorsements: [] }, `manifest version ${version}: no chain fields in the preamble`);
    t.same(openManifest(env, dataKey, v1.repositoryId, 'manifest'), manifest, `manifest version ${version} opens`);
  }
  const env = parseManifestEnvelope(sealed(), 'manifest');
  t.match(env, { version: 3, generation: 1, keyId: 'k', previous: null, history: null, endorsements: [] });
  t.same(openManifest(env, dataKey, v1.repositoryId, 'manifest'), manifest, 'manifest version 3 opens');
});

t.test('versions 1 and 2 of the descriptor are read', async (t) => {
  t.same(decodeDescriptor(encodeDescriptor(v1), 'kmscrypt.json'), v1);
  t.same(decodeDescriptor(encodeDescriptor(v2), 'kmscrypt.json'), v2);
});

for (const version of [0, 4, 255]) {
  t.test(`version ${version} is refused everywhere with an upgrade message`, async (t) => {
    const preamble = encodePreamble({ containerId: randomBytes(16), hashLength: 20, commitment: randomBytes(32), keyId: 'k', wrappedKey: randomBytes(8) });
    preamble[4] = version;
    t.throws(() => decodePreamble(preamble, 'container'), { code: 'CORRUPT', message: upgrade }, 'container preamble');

    const bytes = sealed();
    bytes[4] = version;
    t.throws(() => parseManifestEnvelope(bytes, 'manifest'), { code: 'CORRUPT', message: upgrade }, 'manifest preamble');
  });
}

for (const version of [0, 3, 255]) {
  t.test(`descriptor version ${version} is refused with an upgrade message`, async (t) => {
    t.throws(() => decodeDescriptor(encodeDescriptor({ ...v2, version }), 'kmscrypt.json'), {
      code: 'CORRUPT',
      message: new RegExp(`format version ${version}; this kmscrypt reads version 1 and 2, upgrade it`),
    });
  });
}

t.test('a version given as a string is not version 1', async (t) => {
  const bytes = Buffer.from(JSON.stringify({ ...v1, version: '1' }));
  t.throws(() => decodeDescriptor(bytes, 'kmscrypt.json'), { code: 'CORRUPT', message: /format version 1; this kmscrypt reads version 1 and 2/ });
});
