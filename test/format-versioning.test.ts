/**
 * Versioning (docs/FORMAT.md §11): new containers and manifests are written as version 2; readers
 * read versions 1 and 2 of both and refuse any other with CORRUPT and a message telling the user
 * to upgrade. The descriptor's layout is unchanged and is written and read as version 1 only.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { FORMAT_VERSION } from '../src/format/constants';
import { decodePreamble, encodePreamble } from '../src/format/container';
import { decodeDescriptor, Descriptor, encodeDescriptor } from '../src/format/descriptor';
import { parseManifestEnvelope, sealManifest } from '../src/format/manifest';

const upgrade = /format version (0|3|255); this kmscrypt reads version 1 and 2, upgrade it/;

const descriptor: Descriptor = {
  format: 'kmscrypt',
  version: 1,
  repositoryId: '12345678-9abc-4def-8123-456789abcdef',
  objectFormat: 'sha1',
  keyId: 'alias/kmscrypt',
  keyProvider: 'local',
  createdAt: '2024-01-01T00:00:00.000Z',
};

const sealed = () =>
  sealManifest(
    { repositoryId: descriptor.repositoryId, objectFormat: 'sha1', generation: 1, previous: null, createdAt: '', descriptorHash: '00'.repeat(32), keyId: 'k', head: null, refs: {}, containers: [] },
    randomBytes(32),
    randomBytes(8),
  );

t.test('version 2 is what is written, except in the descriptor', async (t) => {
  t.equal(FORMAT_VERSION, 2);
  const preamble = encodePreamble({ containerId: randomBytes(16), hashLength: 20, keyId: 'k', wrappedKey: randomBytes(8) });
  t.equal(preamble[4], 2);
  t.equal(sealed()[4], 2);
  t.equal(JSON.parse(encodeDescriptor(descriptor).toString()).version, 1);
});

t.test('versions 1 and 2 of containers and manifests are read', async (t) => {
  for (const version of [1, 2]) {
    const preamble = encodePreamble({ version, containerId: randomBytes(16), hashLength: 20, keyId: 'k', wrappedKey: randomBytes(8) });
    t.equal(decodePreamble(preamble, 'container').preamble.version, version, `container version ${version}`);
    const manifest = sealed();
    manifest[4] = version;
    t.equal(parseManifestEnvelope(manifest, 'manifest').generation, 1, `manifest version ${version}`);
  }
});

for (const version of [0, 3, 255]) {
  t.test(`version ${version} is refused everywhere with an upgrade message`, async (t) => {
    t.throws(
      () => decodeDescriptor(encodeDescriptor({ ...descriptor, version }), 'kmscrypt.json'),
      { code: 'CORRUPT', message: new RegExp(`format version ${version}; this kmscrypt reads version 1, upgrade it`) },
      'descriptor',
    );

    const preamble = encodePreamble({ containerId: randomBytes(16), hashLength: 20, keyId: 'k', wrappedKey: randomBytes(8) });
    preamble[4] = version;
    t.throws(() => decodePreamble(preamble, 'container'), { code: 'CORRUPT', message: upgrade }, 'container preamble');

    const manifest = sealed();
    manifest[4] = version;
    t.throws(() => parseManifestEnvelope(manifest, 'manifest'), { code: 'CORRUPT', message: upgrade }, 'manifest preamble');
  });
}

t.test('the descriptor is read as version 1 only', async (t) => {
  t.throws(() => decodeDescriptor(encodeDescriptor({ ...descriptor, version: 2 }), 'kmscrypt.json'), { code: 'CORRUPT', message: /format version 2; this kmscrypt reads version 1, upgrade it/ });
});

t.test('a version given as a string is not version 1', async (t) => {
  const bytes = Buffer.from(JSON.stringify({ ...descriptor, version: '1' }));
  t.throws(() => decodeDescriptor(bytes, 'kmscrypt.json'), { code: 'CORRUPT', message: /format version 1; this kmscrypt reads version 1/ });
});
