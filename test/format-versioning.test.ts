/**
 * Versioning (docs/FORMAT.md §11): readers refuse every version other than 1 — in the descriptor, a
 * container preamble and a manifest preamble — with CORRUPT and a message telling the user to upgrade.
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { FORMAT_VERSION } from '../src/format/constants';
import { decodePreamble, encodePreamble } from '../src/format/container';
import { decodeDescriptor, Descriptor, encodeDescriptor } from '../src/format/descriptor';
import { parseManifestEnvelope, sealManifest } from '../src/format/manifest';

const upgrade = /format version (0|2|255); this kmscrypt reads version 1, upgrade it/;

const descriptor: Descriptor = {
  format: 'kmscrypt',
  version: 1,
  repositoryId: '12345678-9abc-4def-8123-456789abcdef',
  objectFormat: 'sha1',
  keyId: 'alias/kmscrypt',
  keyProvider: 'local',
  createdAt: '2024-01-01T00:00:00.000Z',
};

t.test('version 1 is what is written', async (t) => {
  t.equal(FORMAT_VERSION, 1);
  const preamble = encodePreamble({ containerId: randomBytes(16), hashLength: 20, keyId: 'k', wrappedKey: randomBytes(8) });
  t.equal(preamble[4], 1);
  const manifest = sealManifest(
    { repositoryId: descriptor.repositoryId, objectFormat: 'sha1', generation: 1, previous: null, createdAt: '', descriptorHash: '00'.repeat(32), keyId: 'k', head: null, refs: {}, containers: [] },
    randomBytes(32),
    randomBytes(8),
  );
  t.equal(manifest[4], 1);
  t.equal(JSON.parse(encodeDescriptor(descriptor).toString()).version, 1);
});

for (const version of [0, 2, 255]) {
  t.test(`version ${version} is refused everywhere with an upgrade message`, async (t) => {
    t.throws(() => decodeDescriptor(encodeDescriptor({ ...descriptor, version }), 'kmscrypt.json'), { code: 'CORRUPT', message: upgrade }, 'descriptor');

    const preamble = encodePreamble({ containerId: randomBytes(16), hashLength: 20, keyId: 'k', wrappedKey: randomBytes(8) });
    preamble[4] = version;
    t.throws(() => decodePreamble(preamble, 'container'), { code: 'CORRUPT', message: upgrade }, 'container preamble');

    const manifest = sealManifest(
      { repositoryId: descriptor.repositoryId, objectFormat: 'sha1', generation: 1, previous: null, createdAt: '', descriptorHash: '00'.repeat(32), keyId: 'k', head: null, refs: {}, containers: [] },
      randomBytes(32),
      randomBytes(8),
    );
    manifest[4] = version;
    t.throws(() => parseManifestEnvelope(manifest, 'manifest'), { code: 'CORRUPT', message: upgrade }, 'manifest preamble');
  });
}

t.test('a version given as a string is not version 1', async (t) => {
  const bytes = Buffer.from(JSON.stringify({ ...descriptor, version: '1' }));
  t.throws(() => decodeDescriptor(bytes, 'kmscrypt.json'), { code: 'CORRUPT', message: /format version 1; this kmscrypt reads version 1/ });
});
