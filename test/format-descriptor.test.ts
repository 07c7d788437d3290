/** The plaintext repository descriptor, kmscrypt.json (docs/FORMAT.md §3), versions 1 and 2. */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { isKmscryptError } from '../src/errors';
import { checkDescriptorProof, decodeDescriptor, Descriptor, encodeDescriptor, proofInput, proveDescriptor } from '../src/format/descriptor';

const descriptor: Descriptor = {
  format: 'kmscrypt',
  version: 1,
  repositoryId: '12345678-9abc-4def-8123-456789abcdef',
  objectFormat: 'sha256',
  keyId: 'arn:aws:kms:eu-west-1:111122223333:key/12345678-1234-4123-8123-123456789012',
  keyProvider: 'aws',
  createdAt: '2024-01-01T00:00:00.000Z',
};
const dataKey = randomBytes(32);
const wrapped = randomBytes(60);
const v2 = proveDescriptor({ ...descriptor, version: 2, location: 's3://bucket/team/repo' }, dataKey, wrapped);

t.test('encoding is pretty JSON with a final newline, in field order', async (t) => {
  const bytes = encodeDescriptor(descriptor);
  t.equal(bytes.toString('utf8'), JSON.stringify(descriptor, null, 2) + '\n');
  t.match(bytes.toString('utf8'), /^\{\n {2}"format": "kmscrypt",\n {2}"version": 1,\n {2}"repositoryId"/);
  t.same(decodeDescriptor(bytes, 'd'), descriptor);
  const text = encodeDescriptor(v2).toString('utf8');
  t.match(text, /"createdAt": "2024-01-01T00:00:00.000Z",\n {2}"location": "s3:\/\/bucket\/team\/repo",\n {2}"proof": \{\n {4}"wrappedKey": "[A-Za-z0-9+/=]+",\n {4}"commitment": "[0-9a-f]{64}",\n {4}"mac": "[0-9a-f]{64}"\n {2}\}\n\}\n$/);
  t.same(decodeDescriptor(Buffer.from(text), 'd'), v2);
});

t.test('the proof verifies with its data key and names every field', async (t) => {
  t.equal(v2.proof!.wrappedKey, wrapped.toString('base64'));
  checkDescriptorProof(v2, dataKey, 'd');
  t.pass('an untouched descriptor verifies');
  const code = (d: Descriptor, key = dataKey) => {
    try {
      checkDescriptorProof(d, key, 'd');
      return 'verified';
    } catch (err) {
      return isKmscryptError(err) ? `${err.code} ${err.message}` : String(err);
    }
  };
  t.match(code(v2, randomBytes(32)), /^TAMPERED .*key commitment mismatch/, 'another data key fails the commitment before the MAC');
  const changes: Array<[string, Partial<Descriptor>]> = [
    ['location', { location: 's3://bucket/elsewhere' }],
    ['repository ID', { repositoryId: '12345678-9abc-4def-8123-456789abcdee' }],
    ['object format', { objectFormat: 'sha1' }],
    ['key', { keyId: 'arn:aws:kms:eu-west-1:111122223333:key/other' }],
    ['key provider', { keyProvider: 'local' }],
    ['creation time', { createdAt: '2025-01-01T00:00:00.000Z' }],
    ['version', { version: 3 }],
  ];
  for (const [what, change] of changes) {
    t.match(code({ ...v2, ...change }), /^TAMPERED /, `a changed ${what} is refused`);
  }
  t.match(code({ ...v2, proof: { ...v2.proof!, wrappedKey: randomBytes(60).toString('base64') } }), /^TAMPERED .*does not verify/, 'another wrapped key');
  t.match(code({ ...v2, proof: { ...v2.proof!, mac: '00'.repeat(32) } }), /^TAMPERED .*does not verify/, 'another MAC');
  t.not(proofInput({ ...v2, location: 'ab', createdAt: 'c' }).toString('hex'), proofInput({ ...v2, location: 'a', createdAt: 'bc' }).toString('hex'), 'fields are length-prefixed: no two descriptors share an input');
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
  ['version 2 without a location', JSON.stringify({ ...v2, location: undefined }), /no location/],
  ['version 2 with a relative location', JSON.stringify({ ...v2, location: 'bucket/repo' }), /no location/],
  ['version 2 without a proof', JSON.stringify({ ...v2, proof: undefined }), /malformed proof/],
  ['version 2 with a short MAC', JSON.stringify({ ...v2, proof: { ...v2.proof, mac: 'ab' } }), /malformed proof/],
  ['version 2 with a wrapped key that is not base64', JSON.stringify({ ...v2, proof: { ...v2.proof, wrappedKey: 'not base64!' } }), /malformed proof/],
];

for (const [name, text, why] of refused) {
  t.test(`refused: ${name}`, async (t) => {
    t.throws(() => decodeDescriptor(Buffer.from(text), 's3://b/p'), { code: 'CORRUPT', message: why });
    t.throws(() => decodeDescriptor(Buffer.from(text), 's3://b/p'), { message: /^s3:\/\/b\/p: repository descriptor is invalid/ });
  });
}
