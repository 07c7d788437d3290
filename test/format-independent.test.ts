/**
 * The stored format read by a second implementation (test/independent/kmscrypt-reader.ts,
 * node:crypto and node:zlib only, nothing from src/): it reproduces every known-answer vector of
 * test/vectors/, and it reads, byte for byte, what the helper writes today (version 2) and what
 * the last version 1 release wrote (test/fixtures/format-v1): git's index-pack accepts the
 * objects it decrypts and their IDs and the refs are exactly the source repository's.
 * Format version 3 (key commitment, being added) is not covered yet: extend the reader when it
 * lands.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import {
  type ContainerRef,
  encryptionContextBytes,
  gcmSeal,
  indexAad,
  openCbc,
  openContainer,
  openManifest,
  type OpenedRecord,
  packOf,
  parseIndex,
  parseManifest,
  recordAad,
  recordNonce,
  subkey,
  unwrapLocal,
} from './independent/kmscrypt-reader';
import { Sandbox } from './support/sandbox';

const vectors = join(__dirname, 'vectors');
const load = <T>(name: string): T => JSON.parse(readFileSync(join(vectors, name), 'utf8')) as T;
const hex = (s: string) => Buffer.from(s, 'hex');
interface HeaderJson {
  oid: string;
  type: number;
  size: number;
  base: string;
}

t.test('the known-answer vectors, reproduced by the independent implementation', async (t) => {
  const hkdf = load<{ dataKey: string; withContainerId: { salt: string; keys: Record<string, string> }; withManifestNonce: { salt: string; purpose: string; key: string } }>('hkdf.json');
  for (const [purpose, key] of Object.entries(hkdf.withContainerId.keys)) t.equal(subkey(hex(hkdf.dataKey), purpose, hex(hkdf.withContainerId.salt)).toString('hex'), key, `subkey ${purpose}`);
  t.equal(subkey(hex(hkdf.dataKey), hkdf.withManifestNonce.purpose, hex(hkdf.withManifestNonce.salt)).toString('hex'), hkdf.withManifestNonce.key, 'manifest subkey');

  const gcm = load<{ dataKey: string; repositoryId: string; containerId: string; records: Array<{ name: string; seq: number; header: HeaderJson; payload: string; aad: string; nonce: string; sealed: string }> }>('record-gcm.json');
  t.ok(gcm.records.length > 0, 'GCM record vectors present');
  for (const r of gcm.records) {
    const aad = recordAad(gcm.repositoryId, hex(gcm.containerId), { seq: r.seq, type: r.header.type, size: r.header.size, oid: hex(r.header.oid), base: hex(r.header.base) });
    t.equal(aad.toString('hex'), r.aad, `${r.name}: record AAD`);
    t.equal(recordNonce(r.seq).toString('hex'), r.nonce, `${r.name}: nonce`);
    t.equal(gcmSeal(subkey(hex(gcm.dataKey), 'record-gcm', hex(gcm.containerId)), recordNonce(r.seq), aad, hex(r.payload)).toString('hex'), r.sealed, `${r.name}: sealed bytes`);
  }

  const cbc = load<{ dataKey: string; repositoryId: string; containerId: string; seq: number; header: HeaderJson; payload: string; aad: string; sealed: string }>('record-cbc.json');
  const cbcHeader = { seq: cbc.seq, type: cbc.header.type, size: cbc.header.size, oid: hex(cbc.header.oid), base: hex(cbc.header.base) };
  t.equal(recordAad(cbc.repositoryId, hex(cbc.containerId), cbcHeader).toString('hex'), cbc.aad, 'CBC record AAD');
  t.equal(openCbc(hex(cbc.dataKey), cbc.repositoryId, hex(cbc.containerId), cbcHeader, hex(cbc.sealed)).toString('hex'), cbc.payload, 'CBC record: MAC verifies, opens to the payload');

  const c = load<{
    dataKey: string;
    repositoryId: string;
    containerId: string;
    preamble: { hashLength: number; keyId: string; wrappedKey: string; encoded: string };
    index: { hashLength: number; recordsStart: number; entries: Array<{ oid: string; type: number; size: number; sealedLength: number; localBase?: number; externalBase?: string }>; plain: string; sealed: string };
    trailer: { indexOffset: number; indexLength: number; encoded: string };
  }>('container.json');
  const p = hex(c.preamble.encoded);
  const k = p.readUInt16BE(25);
  t.same(
    { magic: p.subarray(0, 4).toString('latin1'), version: p[4], kind: p[5], id: p.subarray(8, 24).toString('hex'), hashLength: p[24], keyId: p.subarray(27, 27 + k).toString('utf8'), wrapped: p.subarray(29 + k).toString('hex') },
    { magic: 'KMSC', version: 1, kind: 1, id: c.containerId, hashLength: c.preamble.hashLength, keyId: c.preamble.keyId, wrapped: c.preamble.wrappedKey },
    'container preamble fields',
  );
  const cid = hex(c.containerId);
  t.equal(gcmSeal(subkey(hex(c.dataKey), 'index', cid), Buffer.alloc(12), indexAad(1, c.repositoryId, cid), hex(c.index.plain)).toString('hex'), c.index.sealed, 'sealed index bytes');
  const index = parseIndex(hex(c.index.plain));
  t.same({ h: index.hashLength, start: index.recordsStart }, { h: c.index.hashLength, start: c.index.recordsStart }, 'index header');
  t.same(
    index.entries.map((e) => ({ oid: e.oid.toString('hex'), type: e.type, size: e.size, sealedLength: e.length, base: e.base.toString('hex') })),
    c.index.entries.map((e) => ({ oid: e.oid, type: e.type, size: e.size, sealedLength: e.sealedLength, base: e.localBase !== undefined ? c.index.entries[e.localBase].oid : e.externalBase ?? '' })),
    'index entries, local bases resolved',
  );
  const trailer = hex(c.trailer.encoded);
  t.same([Number(trailer.readBigUInt64BE(0)), Number(trailer.readBigUInt64BE(8)), trailer.subarray(16).toString('latin1')], [c.trailer.indexOffset, c.trailer.indexLength, 'KMSCEND1'], 'trailer');

  const m = load<{ dataKey: string; repositoryId: string; generation: number; keyId: string; wrappedKey: string; nonce: string; stored: string; sha256: string; manifest: unknown }>('manifest.json');
  const env = parseManifest(hex(m.stored));
  t.same({ version: env.version, generation: env.generation, keyId: env.keyId, wrapped: env.wrappedKey.toString('hex'), nonce: env.nonce.toString('hex') }, { version: 1, generation: m.generation, keyId: m.keyId, wrapped: m.wrappedKey, nonce: m.nonce }, 'manifest preamble fields');
  t.equal(JSON.stringify(openManifest(env, hex(m.dataKey), m.repositoryId)), JSON.stringify(m.manifest), 'the manifest opens to the same JSON, field for field');

  const ctx = load<{ cases: Array<{ context: Record<string, string>; serialized: string }> }>('encryption-context.json');
  t.ok(ctx.cases.length > 0, 'encryption context vectors present');
  for (const x of ctx.cases) t.equal(encryptionContextBytes(x.context).toString('hex'), x.serialized, JSON.stringify(x.context));
});

/** Reads a local store with the independent implementation: its newest manifest and every record. */
function readStore(dir: string, keyringPath: string) {
  const keyring = JSON.parse(readFileSync(keyringPath, 'utf8')) as { keys: Array<{ keyId: string; material: string }> };
  const descriptorBytes = readFileSync(join(dir, 'kmscrypt.json'));
  const descriptor = JSON.parse(descriptorBytes.toString('utf8')) as { repositoryId: string; objectFormat: 'sha1' | 'sha256' };
  const newest = readdirSync(join(dir, 'manifests')).sort().pop()!;
  const env = parseManifest(readFileSync(join(dir, 'manifests', newest)));
  const manifest = openManifest(env, unwrapLocal(keyring, env.wrappedKey, descriptor.repositoryId), descriptor.repositoryId) as {
    generation: number;
    descriptorHash: string;
    refs: Record<string, string>;
    containers: Array<ContainerRef & { keyId: string }>;
  };
  const records: OpenedRecord[] = [];
  for (const ref of manifest.containers) {
    const dataKey = unwrapLocal(keyring, Buffer.from(ref.wrappedKey, 'base64'), descriptor.repositoryId);
    records.push(...openContainer(readFileSync(join(dir, 'containers', ref.id)), ref, descriptor.repositoryId, dataKey));
  }
  return { descriptor, descriptorHash: createHash('sha256').update(descriptorBytes).digest('hex'), env, manifest, records };
}

/** git index-pack checks every decrypted object's ID; the refs then come from the manifest. */
function rebuild(sb: Sandbox, name: string, store: ReturnType<typeof readStore>): string {
  const dir = sb.path(name);
  sb.run('git', ['init', '-q', '--bare', `--object-format=${store.descriptor.objectFormat}`, dir]);
  const pack = sb.path(`${name}.pack`);
  writeFileSync(pack, packOf(store.records, store.descriptor.objectFormat));
  sb.run('git', ['index-pack', '--strict', '--stdin'], { cwd: dir, input: readFileSync(pack) });
  for (const [ref, oid] of Object.entries(store.manifest.refs)) sb.git(dir, 'update-ref', ref, oid);
  return dir;
}

t.test('a store the helper writes now (format version 2) is read by the independent implementation', async (t) => {
  const sb = new Sandbox(t);
  const src = sb.repo('src');
  const text = Array.from({ length: 400 }, (_, i) => `line ${i} of a file that changes a little between commits\n`).join('');
  sb.commit(src, { 'notes.txt': text, 'README': 'readme\n' }, 'first');
  const url = `kmscrypt::file://${sb.path('store')}`;
  sb.git(src, 'push', '-q', url, 'main');
  const big = Buffer.alloc(7 << 20);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32BE((i * 2654435761) >>> 0, i);
  sb.commit(src, { 'notes.txt': text + 'one more line\n', 'big.bin': big }, 'second: a delta and a 7 MiB object');
  sb.git(src, 'tag', '-a', 'v1', '-m', 'an annotated tag');
  sb.git(src, 'branch', 'topic');
  sb.git(src, 'push', '-q', url, 'main', 'topic', 'v1');

  const store = readStore(sb.path('store'), sb.env.KMSCRYPT_KEYRING!);
  t.equal(store.env.version, 2, 'the newest manifest is version 2');
  t.same(store.manifest.containers.map((c) => c.version), [2, 2], 'two containers, both version 2');
  t.equal(store.manifest.generation, 2, 'generation 2');
  t.equal(store.manifest.descriptorHash, store.descriptorHash, 'the manifest binds the descriptor bytes');
  t.ok(store.records.some((r) => r.size >= 6 << 20), 'a CBC record was read');
  t.ok(store.records.some((r) => r.type === 7), 'a delta record was read');
  t.ok(store.records.some((r) => r.segmentEnd), 'segments were read');
  const rebuilt = rebuild(sb, 'rebuilt.git', store);
  t.same(sb.refs(rebuilt), sb.refs(src), 'the refs are the source repository\'s');
  t.same(sb.objects(rebuilt), sb.objects(src), 'the objects are exactly the source repository\'s');
  sb.git(rebuilt, 'fsck', '--strict', '--no-dangling');
});

t.test('the version 1 fixture is read by the independent implementation', async (t) => {
  const sb = new Sandbox(t);
  const fixture = join(__dirname, 'fixtures', 'format-v1');
  const store = readStore(join(fixture, 'store'), join(fixture, 'keyring.json'));
  t.equal(store.env.version, 1, 'a version 1 manifest');
  t.same(store.manifest.containers.map((c) => c.version ?? 1), [1, 1], 'two version 1 containers');
  const expected = new Map(
    readFileSync(join(fixture, 'refs.txt'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(' ').reverse() as [string, string]),
  );
  const rebuilt = rebuild(sb, 'v1.git', store);
  t.same(sb.refs(rebuilt), expected, 'every ref of the version 1 repository');
  sb.git(rebuilt, 'fsck', '--strict', '--no-dangling');
});
