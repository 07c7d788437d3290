/** The plaintext repository descriptor, kmscrypt.json (docs/FORMAT.md §3). */
import t from 'tap';
import { decodeDescriptor, Descriptor, encodeDescriptor } from '../src/format/descriptor';

const descriptor: Descriptor = {
  format: 'kmscrypt',
  version: 1,
  repositoryId: '12345678-9abc-4def-8123-456789abcdef',
  objectFormat: 'sha256',
  keyId: 'arn:aws:kms:eu-west-1:111122223333:key/12345678-1234-4123-8123-123456789012',
  keyProvider: 'aws',
  createdAt: '2024-01-01T00:00:00.000Z',
};

t.test('encoding is pretty JSON with a final newline, in field order', async (t) => {
  const bytes = encodeDescriptor(descriptor);
  t.equal(bytes.toString('utf8'), JSON.stringify(descriptor, null, 2) + '\n');
  t.match(bytes.toString('utf8'), /^\{\n {2}"format": "kmscrypt",\n {2}"version": 1,\n {2}"repositoryId"/);
  t.same(decodeDescriptor(bytes, 'd'), descriptor);
});

const refused: Array<[string, string, RegExp]> = [
  ['not JSON', '{"format":', /not JSON/],
  ['not an object', '"kmscrypt"', /not an object/],
  ['null', 'null', /not an object/],
  ['another format', JSON.stringify({ ...descriptor, format: 'other' }), /not a kmscrypt repository/],
  ['a repository ID with uppercase', JSON.stringify({ ...descriptor, repositoryId: descriptor.repositoryId.toUpperCase() }), /bad repository ID/],
  ['a repository ID with a path', JSON.stringify({ ...descriptor, repositoryId: '../../../../../../../../../../etc/pw' }), /bad repository ID/],
  ['a short repository ID', JSON.stringify({ ...descriptor, repositoryId: 'abc' }), /bad repository ID/],
  ['an unknown object format', JSON.stringify({ ...descriptor, objectFormat: 'sha512' }), /unknown object format sha512/],
  ['an empty key ID', JSON.stringify({ ...descriptor, keyId: '' }), /no key ID/],
  ['an unknown key provider', JSON.stringify({ ...descriptor, keyProvider: 'gcp' }), /unknown key provider gcp/],
];

for (const [name, text, why] of refused) {
  t.test(`refused: ${name}`, async (t) => {
    t.throws(() => decodeDescriptor(Buffer.from(text), 's3://b/p'), { code: 'CORRUPT', message: why });
    t.throws(() => decodeDescriptor(Buffer.from(text), 's3://b/p'), { message: /^s3:\/\/b\/p: repository descriptor is invalid/ });
  });
}
