/**
 * What openManifest checks inside an authentic manifest (docs/FORMAT.md §7.2). Manifests are sealed
 * here by hand, following docs/FORMAT.md §7.1 (the version 1 layout, and version 3 with its key
 * commitment and chain fields), so that the JSON and the preamble can say things kmscrypt never writes.
 */
import t from 'tap';
import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import { isKmscryptError } from '../src/errors';
import { ContainerRef, Manifest, openManifest, parseManifestEnvelope, sealManifest } from '../src/format/manifest';

const dataKey = randomBytes(32);
const repositoryId = '7d6c5b4a-3928-4716-a5b4-c3d2e1f0a9b8';
const keyId = 'alias/kmscrypt';
const wrapped = randomBytes(60);

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

/** Seals an arbitrary body in the version 1 layout of docs/FORMAT.md §7.1. */
function sealBody(generation: number, body: Buffer): Buffer {
  const nonce = randomBytes(12);
  const fixed = Buffer.alloc(16);
  fixed.write('KMSC', 0, 'latin1');
  fixed[4] = 1;
  fixed[5] = 2;
  fixed.writeBigUInt64BE(BigInt(generation), 8);
  const k = Buffer.from(keyId);
  const preamble = Buffer.concat([fixed, nonce, u16(k.length), k, u16(wrapped.length), wrapped]);
  const key = Buffer.from(hkdfSync('sha256', dataKey, nonce, 'kmscrypt/1 manifest', 32));
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  const repo = Buffer.from(repositoryId);
  cipher.setAAD(Buffer.concat([Buffer.from('kmscrypt/1 manifest'), u16(repo.length), repo, preamble]));
  return Buffer.concat([preamble, cipher.update(body), cipher.final(), cipher.getAuthTag()]);
}

const sealJson = (generation: number, value: unknown) => sealBody(generation, deflateRawSync(Buffer.from(JSON.stringify(value))));

/** Seals an arbitrary body in the version 3 layout of docs/FORMAT.md §7.1; `commitKey` is the data key the preamble commits to. */
function sealV3(generation: number, value: unknown, opts: { previous?: string | null; commitKey?: Buffer } = {}): Buffer {
  const nonce = randomBytes(12);
  const fixed = Buffer.alloc(16);
  fixed.write('KMSC', 0, 'latin1');
  fixed[4] = 3;
  fixed[5] = 2;
  fixed.writeBigUInt64BE(BigInt(generation), 8);
  const commitment = Buffer.from(hkdfSync('sha256', opts.commitKey ?? dataKey, nonce, 'kmscrypt/3 commit', 32));
  const previous = opts.previous ? Buffer.from(opts.previous, 'hex') : Buffer.alloc(32);
  const history = Buffer.alloc(8 + 32);
  const arn = Buffer.from('arn:aws:kms:eu-west-1:111122223333:key/0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d');
  const preamble = Buffer.concat([fixed, nonce, commitment, previous, history, u16(arn.length), arn, u16(wrapped.length), wrapped, u16(0)]);
  const key = Buffer.from(hkdfSync('sha256', dataKey, nonce, 'kmscrypt/1 manifest', 32));
  const cipher = createCipheriv('aes-256-gcm', key, nonce);
  const repo = Buffer.from(repositoryId);
  cipher.setAAD(Buffer.concat([Buffer.from('kmscrypt/1 manifest'), u16(repo.length), repo, preamble]));
  const body = deflateRawSync(Buffer.from(JSON.stringify(value)));
  return Buffer.concat([preamble, cipher.update(body), cipher.final(), cipher.getAuthTag()]);
}

function open(bytes: Buffer): Manifest {
  return openManifest(parseManifestEnvelope(bytes, 'manifest'), dataKey, repositoryId, 'manifest');
}

function refusal(bytes: Buffer): string {
  try {
    open(bytes);
    return 'accepted';
  } catch (err) {
    return isKmscryptError(err) ? `${err.code}: ${err.message}` : `not a KmscryptError: ${String(err)}`;
  }
}

const container: ContainerRef = {
  id: '0f'.repeat(16),
  size: 500,
  indexOffset: 400,
  indexLength: 76,
  objects: 2,
  indexHash: 'aa'.repeat(32),
  preambleLength: 120,
  preambleHash: 'bb'.repeat(32),
  keyId,
  wrappedKey: wrapped.toString('base64'),
};
const good: Manifest = {
  repositoryId,
  objectFormat: 'sha256',
  generation: 3,
  previous: 'cc'.repeat(32),
  createdAt: '2024-01-01T00:00:00.000Z',
  descriptorHash: 'dd'.repeat(32),
  keyId,
  head: null,
  refs: { 'refs/heads/main': 'ee'.repeat(32) },
  containers: [container],
};

t.test('the hand-sealed manifest is read exactly as sealManifest writes it', async (t) => {
  t.same(open(sealJson(3, good)), good);
  t.same(open(sealManifest(good, dataKey, { keyArn: keyId, wrappedKey: wrapped, history: null, endorsements: [] })), good);
  t.same(open(sealV3(3, good, { previous: good.previous })), good, 'version 3, sealed by hand');
  t.same(open(sealJson(1, { ...good, generation: 1, previous: null, refs: {}, containers: [] })).refs, {}, 'an empty repository');
});

t.test('peeled targets of annotated tags are read as written', async (t) => {
  const tagged = { ...good, refs: { ...good.refs, 'refs/tags/v1': 'ab'.repeat(32) }, peeled: { 'refs/tags/v1': 'ee'.repeat(32) } };
  t.same(open(sealManifest(tagged, dataKey, { keyArn: keyId, wrappedKey: wrapped, history: null, endorsements: [] })), tagged);
});

t.test('unknown fields are accepted and kept', async (t) => {
  const m = open(sealJson(3, { ...good, future: 1, containers: [{ ...container, later: 'x' }] }));
  t.same(m, { ...good, future: 1, containers: [{ ...container, later: 'x' }] });
});

const cases: Array<[string, Buffer, RegExp]> = [
  ['a body that is not deflate', sealBody(3, Buffer.from('not deflate data at all')), /CORRUPT: .*authenticated but unreadable/],
  ['a body that is not JSON', sealBody(3, deflateRawSync(Buffer.from('{'))), /CORRUPT: .*authenticated but unreadable/],
  ['JSON that is not an object', sealJson(3, 42), /CORRUPT: .*not an object/],
  ['JSON null', sealJson(3, null), /CORRUPT: .*not an object/],
  ['another repository ID in the JSON', sealJson(3, { ...good, repositoryId: 'x' }), /CORRUPT: .*belongs to repository x/],
  ['a generation other than the stored one', sealJson(3, { ...good, generation: 4 }), /CORRUPT: .*claims generation 4 but is stored as 3/],
  ['an unknown object format', sealJson(3, { ...good, objectFormat: 'md5' }), /CORRUPT: .*unknown object format/],
  ['a bad previous hash', sealJson(3, { ...good, previous: 'CC'.repeat(32) }), /CORRUPT: .*bad previous hash/],
  ['a bad descriptor hash', sealJson(3, { ...good, descriptorHash: 'dd' }), /CORRUPT: .*bad descriptor hash/],
  ['a HEAD that is not a string', sealJson(3, { ...good, head: 5 }), /CORRUPT: .*bad HEAD/],
  ['no refs', sealJson(3, { ...good, refs: null }), /CORRUPT: .*no refs/],
  ['a ref outside refs/', sealJson(3, { ...good, refs: { HEAD: 'ee'.repeat(32) } }), /CORRUPT: .*bad ref "HEAD"/],
  ['a SHA-1 ID in a SHA-256 repository', sealJson(3, { ...good, refs: { 'refs/heads/x': 'ee'.repeat(20) } }), /CORRUPT: .*bad ref/],
  ['an uppercase object ID', sealJson(3, { ...good, refs: { 'refs/heads/x': 'EE'.repeat(32) } }), /CORRUPT: .*bad ref/],
  ['a peeled list that is not an object', sealJson(3, { ...good, peeled: 'x' }), /CORRUPT: .*bad peeled list/],
  [
    'a peeled entry for a ref that does not exist',
    sealJson(3, { ...good, peeled: { 'refs/tags/gone': 'ee'.repeat(32) } }),
    /CORRUPT: .*bad peeled entry "refs\/tags\/gone"/,
  ],
  [
    'a peeled target that is not an object ID',
    sealJson(3, { ...good, peeled: { 'refs/heads/main': 'ee'.repeat(20) } }),
    /CORRUPT: .*bad peeled entry "refs\/heads\/main"/,
  ],
  ['no container list', sealJson(3, { ...good, containers: {} }), /CORRUPT: .*no container list/],
  ['a null container', sealJson(3, { ...good, containers: [null] }), /CORRUPT: .*bad container entry/],
  ['a short container ID', sealJson(3, { ...good, containers: [{ ...container, id: 'ab' }] }), /CORRUPT: .*bad container entry/],
  ['a negative size', sealJson(3, { ...good, containers: [{ ...container, size: -1 }] }), /CORRUPT: .*bad container entry/],
  ['a fractional index offset', sealJson(3, { ...good, containers: [{ ...container, indexOffset: 1.5 }] }), /CORRUPT: .*bad container entry/],
  ['an unsafe index length', sealJson(3, { ...good, containers: [{ ...container, indexLength: 2 ** 53 }] }), /CORRUPT: .*bad container entry/],
  ['a string object count', sealJson(3, { ...good, containers: [{ ...container, objects: '2' }] }), /CORRUPT: .*bad container entry/],
  ['a bad index hash', sealJson(3, { ...good, containers: [{ ...container, indexHash: 'x' }] }), /CORRUPT: .*bad container entry/],
  ['a missing preamble length', sealJson(3, { ...good, containers: [{ ...container, preambleLength: undefined }] }), /CORRUPT: .*bad container entry/],
  ['a bad preamble hash', sealJson(3, { ...good, containers: [{ ...container, preambleHash: 'AA'.repeat(32) }] }), /CORRUPT: .*bad container entry/],
  ['a key ID that is not a string', sealJson(3, { ...good, containers: [{ ...container, keyId: 1 }] }), /CORRUPT: .*bad container entry/],
  ['no wrapped key', sealJson(3, { ...good, containers: [{ ...container, wrappedKey: undefined }] }), /CORRUPT: .*bad container entry/],
];

for (const [name, bytes, why] of cases) {
  t.test(`refused: ${name}`, async (t) => {
    t.match(refusal(bytes), why);
  });
}

const v3container: ContainerRef = { ...container, version: 3, commitment: '12'.repeat(32) };
const v3cases: Array<[string, Buffer, RegExp]> = [
  ['a version 3 container without its commitment', sealV3(3, { ...good, containers: [{ ...v3container, commitment: undefined }] }, { previous: good.previous }), /CORRUPT: .*bad container entry/],
  ['a version 3 container with a short commitment', sealV3(3, { ...good, containers: [{ ...v3container, commitment: 'ab' }] }, { previous: good.previous }), /CORRUPT: .*bad container entry/],
  ['a container of version 4', sealV3(3, { ...good, containers: [{ ...v3container, version: 4 }] }, { previous: good.previous }), /CORRUPT: .*bad container entry/],
  ['a body whose previous differs from the preamble', sealV3(3, good, { previous: 'ab'.repeat(32) }), /CORRUPT: .*body and its preamble name different previous manifests/],
  ['a preamble that names no previous for a body that does', sealV3(3, good, { previous: null }), /CORRUPT: .*different previous manifests/],
  ['a preamble committing to another data key', sealV3(3, good, { previous: good.previous, commitKey: randomBytes(32) }), /TAMPERED: .*key commitment mismatch/],
];

for (const [name, bytes, why] of v3cases) {
  t.test(`refused, version 3: ${name}`, async (t) => {
    t.match(refusal(bytes), why);
  });
}

t.test('a version 3 container entry with its commitment is accepted', async (t) => {
  t.same(open(sealV3(3, { ...good, containers: [v3container] }, { previous: good.previous })).containers, [v3container]);
});
