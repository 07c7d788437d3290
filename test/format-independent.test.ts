/**
 * The stored format read by a second implementation (test/independent/kmscrypt-reader.ts,
 * node:crypto and node:zlib only, nothing from src/): it reproduces every known-answer vector of
 * test/vectors/ (version 1, and version 3's in format-v3.json), and it reads, byte for byte, what the helper writes today (version 3: the
 * descriptor's proof, key commitments, the manifest preamble's hash chain, rotation endorsements,
 * history objects and gc schedules) and what the last version 1 release wrote
 * (test/fixtures/format-v1): git's index-pack accepts the objects it decrypts and their IDs and
 * the refs are exactly the source repository's.
 */
import { cpSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync } from 'node:zlib';
import t from 'tap';
import {
  checkDescriptorProof,
  encryptionContextBytes,
  endorsementPlaintext,
  gcmSeal,
  indexAad,
  keyCommitment,
  type LocalKeyring,
  localKeyArn,
  openCbc,
  openManifest,
  openSchedule,
  packOf,
  parseContainerPreamble,
  parseDescriptor,
  parseHistory,
  parseIndex,
  parseManifest,
  parseSchedule,
  proofInput,
  readRepository,
  type RepositoryRead,
  sha256,
  recordAad,
  recordNonce,
  type StoreFiles,
  subkey,
  unwrapLocal,
} from './independent/kmscrypt-reader';
import { expectedManifestPreamble, loadFormatV3Vectors, manifestPreambleView } from './support/format-v3-vectors';
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
  const hkdf = load<{
    dataKey: string;
    withContainerId: { salt: string; keys: Record<string, string> };
    withManifestNonce: { salt: string; purpose: string; key: string };
  }>('hkdf.json');
  for (const [purpose, key] of Object.entries(hkdf.withContainerId.keys)) {
    t.equal(subkey(hex(hkdf.dataKey), purpose, hex(hkdf.withContainerId.salt)).toString('hex'), key, `subkey ${purpose}`);
  }
  t.equal(
    subkey(hex(hkdf.dataKey), hkdf.withManifestNonce.purpose, hex(hkdf.withManifestNonce.salt)).toString('hex'),
    hkdf.withManifestNonce.key,
    'manifest subkey',
  );

  const gcm = load<{
    dataKey: string;
    repositoryId: string;
    containerId: string;
    records: Array<{ name: string; seq: number; header: HeaderJson; payload: string; aad: string; nonce: string; sealed: string }>;
  }>('record-gcm.json');
  t.ok(gcm.records.length > 0, 'GCM record vectors present');
  for (const r of gcm.records) {
    const aad = recordAad(gcm.repositoryId, hex(gcm.containerId), {
      seq: r.seq,
      type: r.header.type,
      size: r.header.size,
      oid: hex(r.header.oid),
      base: hex(r.header.base),
    });
    t.equal(aad.toString('hex'), r.aad, `${r.name}: record AAD`);
    t.equal(recordNonce(r.seq).toString('hex'), r.nonce, `${r.name}: nonce`);
    t.equal(
      gcmSeal(subkey(hex(gcm.dataKey), 'record-gcm', hex(gcm.containerId)), recordNonce(r.seq), aad, hex(r.payload)).toString('hex'),
      r.sealed,
      `${r.name}: sealed bytes`,
    );
  }

  const cbc = load<{
    dataKey: string;
    repositoryId: string;
    containerId: string;
    seq: number;
    header: HeaderJson;
    payload: string;
    aad: string;
    sealed: string;
  }>('record-cbc.json');
  const cbcHeader = { seq: cbc.seq, type: cbc.header.type, size: cbc.header.size, oid: hex(cbc.header.oid), base: hex(cbc.header.base) };
  t.equal(recordAad(cbc.repositoryId, hex(cbc.containerId), cbcHeader).toString('hex'), cbc.aad, 'CBC record AAD');
  t.equal(
    openCbc(hex(cbc.dataKey), cbc.repositoryId, hex(cbc.containerId), cbcHeader, hex(cbc.sealed)).toString('hex'),
    cbc.payload,
    'CBC record: MAC verifies, opens to the payload',
  );

  const c = load<{
    dataKey: string;
    repositoryId: string;
    containerId: string;
    preamble: { hashLength: number; keyId: string; wrappedKey: string; encoded: string };
    index: {
      hashLength: number;
      recordsStart: number;
      entries: Array<{ oid: string; type: number; size: number; sealedLength: number; localBase?: number; externalBase?: string }>;
      plain: string;
      sealed: string;
    };
    trailer: { indexOffset: number; indexLength: number; encoded: string };
  }>('container.json');
  const p = hex(c.preamble.encoded);
  const k = p.readUInt16BE(25);
  t.same(
    {
      magic: p.subarray(0, 4).toString('latin1'),
      version: p[4],
      kind: p[5],
      id: p.subarray(8, 24).toString('hex'),
      hashLength: p[24],
      keyId: p.subarray(27, 27 + k).toString('utf8'),
      wrapped: p.subarray(29 + k).toString('hex'),
    },
    { magic: 'KMSC', version: 1, kind: 1, id: c.containerId, hashLength: c.preamble.hashLength, keyId: c.preamble.keyId, wrapped: c.preamble.wrappedKey },
    'container preamble fields',
  );
  const cid = hex(c.containerId);
  t.equal(
    gcmSeal(subkey(hex(c.dataKey), 'index', cid), Buffer.alloc(12), indexAad(1, c.repositoryId, cid), hex(c.index.plain)).toString('hex'),
    c.index.sealed,
    'sealed index bytes',
  );
  const index = parseIndex(hex(c.index.plain));
  t.same({ h: index.hashLength, start: index.recordsStart }, { h: c.index.hashLength, start: c.index.recordsStart }, 'index header');
  t.same(
    index.entries.map((e) => ({ oid: e.oid.toString('hex'), type: e.type, size: e.size, sealedLength: e.length, base: e.base.toString('hex') })),
    c.index.entries.map((e) => ({
      oid: e.oid,
      type: e.type,
      size: e.size,
      sealedLength: e.sealedLength,
      base: e.localBase !== undefined ? c.index.entries[e.localBase].oid : (e.externalBase ?? ''),
    })),
    'index entries, local bases resolved',
  );
  const trailer = hex(c.trailer.encoded);
  t.same(
    [Number(trailer.readBigUInt64BE(0)), Number(trailer.readBigUInt64BE(8)), trailer.subarray(16).toString('latin1')],
    [c.trailer.indexOffset, c.trailer.indexLength, 'KMSCEND1'],
    'trailer',
  );

  const m = load<{
    dataKey: string;
    repositoryId: string;
    generation: number;
    keyId: string;
    wrappedKey: string;
    nonce: string;
    stored: string;
    sha256: string;
    manifest: unknown;
  }>('manifest.json');
  const env = parseManifest(hex(m.stored));
  t.same(
    { version: env.version, generation: env.generation, keyId: env.keyId, wrapped: env.wrappedKey.toString('hex'), nonce: env.nonce.toString('hex') },
    { version: 1, generation: m.generation, keyId: m.keyId, wrapped: m.wrappedKey, nonce: m.nonce },
    'manifest preamble fields',
  );
  t.equal(
    JSON.stringify(openManifest(env, hex(m.dataKey), m.repositoryId)),
    JSON.stringify(m.manifest),
    'the manifest opens to the same JSON, field for field',
  );

  const ctx = load<{ cases: Array<{ context: Record<string, string>; serialized: string }> }>('encryption-context.json');
  t.ok(ctx.cases.length > 0, 'encryption context vectors present');
  for (const x of ctx.cases) t.equal(encryptionContextBytes(x.context).toString('hex'), x.serialized, JSON.stringify(x.context));
});

t.test('the version 3 known-answer vectors (test/vectors/format-v3.json), reproduced by the independent implementation', async (t) => {
  const v = loadFormatV3Vectors();
  const dataKey = hex(v.dataKey);
  const containerId = hex(v.containerId);
  const nonce = hex(v.nonce);
  const repository = Buffer.from(v.repositoryId);
  t.same(
    {
      container: keyCommitment(dataKey, containerId).toString('hex'),
      manifest: keyCommitment(dataKey, nonce).toString('hex'),
      descriptor: keyCommitment(dataKey, repository).toString('hex'),
    },
    v.subkeys.commitment,
    'key commitments: salt = container ID, manifest nonce, repository ID',
  );
  t.equal(subkey(dataKey, 'descriptor', repository).toString('hex'), v.subkeys.descriptorMacKey, 'the descriptor MAC key');
  t.equal(subkey(dataKey, 'schedule', nonce).toString('hex'), v.subkeys.scheduleKey, 'a gc schedule key');

  const descriptor = parseDescriptor(Buffer.from(v.descriptor.stored));
  t.equal(sha256(Buffer.from(v.descriptor.stored)), v.descriptor.sha256, 'the descriptor vector is intact');
  t.equal(proofInput(descriptor).toString('hex'), v.descriptor.proofInput, 'proof input');
  t.doesNotThrow(() => checkDescriptorProof(descriptor, dataKey), 'the proof commits to the data key and its MAC verifies');
  t.throws(
    () => checkDescriptorProof({ ...descriptor, location: 's3://another-bucket/repos/project' }, dataKey),
    /MAC mismatch/,
    'the proof covers the location',
  );

  const p = parseContainerPreamble(hex(v.containerPreamble.encoded));
  t.same(
    {
      version: p.version,
      id: p.containerId.toString('hex'),
      hashLength: p.hashLength,
      commitment: p.commitment?.toString('hex'),
      keyId: p.keyId,
      wrapped: p.wrappedKey.toString('hex'),
      length: p.length,
    },
    {
      version: 3,
      id: v.containerId,
      hashLength: v.containerPreamble.hashLength,
      commitment: v.subkeys.commitment.container,
      keyId: v.containerPreamble.keyId,
      wrapped: v.containerPreamble.wrappedKey,
      length: hex(v.containerPreamble.encoded).length,
    },
    'container preamble fields',
  );

  t.equal(endorsementPlaintext(v.repositoryId, v.endorsement.to).toString('hex'), v.endorsement.plaintext, 'endorsement plaintext');

  const [older, newer] = v.histories;
  for (const h of v.histories) {
    t.same(
      parseHistory(hex(h.encoded), { generation: h.end, hash: h.sha256 }),
      { first: h.first, end: h.end, previous: h.previous, hashes: h.hashes },
      `history object ${h.first} to ${h.end - 1}`,
    );
  }
  t.same(
    parseHistory(hex(older.encoded), { generation: newer.first, hash: newer.previous! }).hashes,
    older.hashes,
    "the newer history object links to the older one: its previous is the older one's hash, its first the older one's end",
  );

  const m = v.manifest;
  const env = parseManifest(hex(m.stored));
  t.same(manifestPreambleView(env), expectedManifestPreamble(v), 'manifest preamble fields');
  t.equal(JSON.stringify(openManifest(env, dataKey, v.repositoryId)), JSON.stringify(m.manifest), 'the manifest opens to the same JSON, field for field');
  t.throws(
    () => openManifest(env, subkey(dataKey, 'index', containerId), v.repositoryId),
    { message: 'manifest 7: key commitment mismatch' },
    'another data key fails the commitment first',
  );

  const s = v.schedule;
  const schedule = parseSchedule(hex(s.stored));
  t.same(
    { keyId: schedule.keyId, wrappedKey: schedule.wrappedKey.toString('hex'), nonce: schedule.nonce.toString('hex') },
    { keyId: s.keyArn, wrappedKey: s.wrappedKey, nonce: s.nonce },
    'schedule preamble',
  );
  t.same(openSchedule(schedule, dataKey, v.repositoryId), s.schedule, 'the schedule opens');
  const aad = Buffer.concat([Buffer.from('kmscrypt/3 schedule'), Buffer.from([0, repository.length]), repository, schedule.preamble]);
  t.equal(
    gcmSeal(subkey(dataKey, 'schedule', schedule.nonce), schedule.nonce, aad, Buffer.from(JSON.stringify(s.schedule))).toString('hex'),
    schedule.sealed.toString('hex'),
    'and seals again to the same bytes (its JSON is not compressed)',
  );
});

/** A local store's objects, for the independent implementation. */
function storeFiles(dir: string): StoreFiles {
  return {
    get: (key) => (existsSync(join(dir, key)) ? readFileSync(join(dir, key)) : undefined),
    list: (prefix) => (existsSync(join(dir, prefix)) ? readdirSync(join(dir, prefix)).sort() : []).map((name) => prefix + name),
  };
}

const loadKeyring = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as LocalKeyring & { aliases: Record<string, string> };
/** The user's own key (alias/kmscrypt), which a clone trusts as is (FORMAT.md §7.3). */
const ownKey = (keyring: LocalKeyring & { aliases: Record<string, string> }) => localKeyArn(keyring.aliases['alias/kmscrypt']);

/** The generation and hash of a stored manifest, as a clone remembers what it saw. */
function seenNow(store: string, generation: number) {
  return { generation, hash: sha256(readFileSync(join(store, 'manifests', String(generation).padStart(20, '0')))) };
}

/** git index-pack checks every decrypted object's ID; the refs then come from the manifest. */
function rebuild(sb: Sandbox, name: string, read: RepositoryRead): string {
  const dir = sb.path(name);
  const objectFormat = read.descriptor.objectFormat;
  sb.run('git', ['init', '-q', '--bare', `--object-format=${objectFormat}`, dir]);
  const pack = sb.path(`${name}.pack`);
  writeFileSync(pack, packOf(read.records, objectFormat));
  sb.run('git', ['index-pack', '--strict', '--stdin'], { cwd: dir, input: readFileSync(pack) });
  for (const [ref, oid] of Object.entries(read.newest!.manifest.refs)) sb.git(dir, 'update-ref', ref, oid);
  return dir;
}

/** What a second implementation says when it refuses, or '' when it reads. */
function refusal(read: () => unknown): string {
  try {
    read();
    return '';
  } catch (err) {
    return (err as Error).message;
  }
}

t.test('a store the helper writes now (format version 3) is read by the independent implementation', async (t) => {
  const sb = new Sandbox(t);
  const src = sb.repo('src');
  const store = sb.path('store');
  const text = Array.from({ length: 400 }, (_, i) => `line ${i} of a file that changes a little between commits\n`).join('');
  sb.commit(src, { 'notes.txt': text, README: 'readme\n' }, 'first');
  const url = `kmscrypt::file://${store}`;
  sb.git(src, 'push', '-q', url, 'main');
  const seen = seenNow(store, 1);
  const big = Buffer.alloc(7 << 20);
  for (let i = 0; i < big.length; i += 4) big.writeUInt32BE((i * 2654435761) >>> 0, i);
  sb.commit(src, { 'notes.txt': text + 'one more line\n', 'big.bin': big }, 'second: a delta and a 7 MiB object');
  sb.git(src, 'tag', '-a', 'v1', '-m', 'an annotated tag');
  sb.git(src, 'branch', 'topic');
  sb.git(src, 'push', '-q', url, 'main', 'topic', 'v1');
  sb.commit(src, { 'third.txt': 'three\n' }, 'third');
  sb.git(src, 'push', '-q', url, 'main');

  const keyring = loadKeyring(sb.env.KMSCRYPT_KEYRING!);
  const read = readRepository(storeFiles(store), keyring, { trusted: [ownKey(keyring)], seen });
  const { env, manifest } = read.newest!;
  t.same(
    { version: read.descriptor.version, location: read.descriptor.location, keyId: read.descriptor.keyId, proofVerified: read.proofVerified },
    { version: 2, location: `file://${store}`, keyId: ownKey(keyring), proofVerified: true },
    'a version 2 descriptor: where it was created, and a proof made with the key, which verifies',
  );
  t.same(
    { version: env.version, generation: env.generation, keyId: env.keyId, history: env.history, endorsements: env.endorsements, previous: env.previous },
    { version: 3, generation: 3, keyId: ownKey(keyring), history: null, endorsements: [], previous: seenNow(store, 2).hash },
    "the newest manifest is version 3: its preamble names the key that sealed it and the previous manifest's hash",
  );
  t.ok(read.descended, "the reader that saw generation 1 proved by the preambles' hash chain that generation 3 descends from it");
  t.same(
    manifest.containers.map((c) => c.version),
    [3, 3, 3],
    'three containers, all version 3',
  );
  t.same(
    read.containers.map((c) => c.commitment?.toString('hex')),
    manifest.containers.map((c) => c.commitment),
    'each container preamble commits to the data key its ContainerRef commits to (and that key matched before it opened anything)',
  );
  t.equal(manifest.descriptorHash, read.descriptorHash, 'the manifest binds the descriptor bytes');
  t.ok(
    read.records.some((r) => r.size >= 6 << 20),
    'a CBC record was read',
  );
  t.ok(
    read.records.some((r) => r.type === 7),
    'a delta record was read',
  );
  t.ok(
    read.records.some((r) => r.segmentEnd),
    'segments were read',
  );
  const rebuilt = rebuild(sb, 'rebuilt.git', read);
  t.same(sb.refs(rebuilt), sb.refs(src), "the refs are the source repository's");
  t.same(sb.objects(rebuilt), sb.objects(src), "the objects are exactly the source repository's");
  sb.git(rebuilt, 'fsck', '--strict', '--no-dangling');
});

t.test('what the independent implementation refuses in a version 3 store, as FORMAT.md says a reader must', async (t) => {
  const sb = new Sandbox(t);
  const src = sb.repo('src');
  const store = sb.path('store');
  const url = `kmscrypt::file://${store}`;
  sb.commit(src, { 'a.txt': 'a\n' }, 'first');
  sb.git(src, 'push', '-q', url, 'main');
  const seen = seenNow(store, 1);
  sb.commit(src, { 'b.txt': 'b\n' }, 'second');
  sb.git(src, 'push', '-q', url, 'main');
  sb.commit(src, { 'c.txt': 'c\n' }, 'third');
  sb.git(src, 'push', '-q', url, 'main');
  const keyring = loadKeyring(sb.env.KMSCRYPT_KEYRING!);
  const trusted = [ownKey(keyring)];
  t.equal(
    refusal(() => readRepository(storeFiles(store), keyring, { trusted, seen })),
    '',
    'the store as the helper wrote it is read',
  );

  const descriptor = JSON.parse(readFileSync(join(store, 'kmscrypt.json'), 'utf8')) as {
    repositoryId: string;
    location: string;
    proof: { wrappedKey: string };
  };
  const newestKey = join('manifests', '00000000000000000003');
  const newest = readFileSync(join(store, newestKey));
  const env = parseManifest(newest);
  const dataKey = unwrapLocal(keyring, env.wrappedKey, descriptor.repositoryId, env.keyId);
  const proofKey = Buffer.from(descriptor.proof.wrappedKey, 'base64');
  t.equal(proofKey.length, env.wrappedKey.length, "the proof's wrapped data key is as long as the manifest's (same key, same context)");

  const altered = (name: string, change: (dir: string) => void) => {
    const dir = sb.path(name);
    cpSync(store, dir, { recursive: true });
    change(dir);
    return refusal(() => readRepository(storeFiles(dir), keyring, { trusted, seen }));
  };
  t.match(
    altered('moved', (dir) => writeFileSync(join(dir, 'kmscrypt.json'), JSON.stringify({ ...descriptor, location: 'file:///elsewhere' }, null, 2) + '\n')),
    /^descriptor proof: MAC mismatch$/,
    'a descriptor whose location was edited: its proof does not verify',
  );
  t.match(
    altered('swapped-manifest-key', (dir) => {
      const swapped = Buffer.from(newest);
      proofKey.copy(swapped, env.preamble.length - 2 - proofKey.length); // the wrapped key ends where the endorsement count (0) begins
      writeFileSync(join(dir, newestKey), swapped);
    }),
    /^manifest 3: key commitment mismatch$/,
    "the manifest's wrapped key swapped for another data key of the repository (it unwraps): refused by the key commitment, before the tag is tried",
  );
  const m = openManifest(env, dataKey, descriptor.repositoryId);
  t.match(
    altered('swapped-container-key', (dir) => {
      // A writer (GenerateDataKey on the key) re-seals the body with the newest container's wrapped key swapped for the first's.
      const forged = { ...m, containers: [m.containers[0], m.containers[1], { ...m.containers[2], wrappedKey: m.containers[0].wrappedKey }] };
      const repo = Buffer.from(descriptor.repositoryId);
      const aad = Buffer.concat([Buffer.from('kmscrypt/1 manifest'), Buffer.from([0, repo.length]), repo, env.preamble]);
      const resealed = Buffer.concat([env.preamble, gcmSeal(subkey(dataKey, 'manifest', env.nonce), env.nonce, aad, deflateRawSync(JSON.stringify(forged)))]);
      t.same(openManifest(parseManifest(resealed), dataKey, descriptor.repositoryId), forged, 'the re-sealed manifest authenticates');
      writeFileSync(join(dir, newestKey), resealed);
    }),
    new RegExp(`^container ${m.containers[2].id}: key commitment mismatch$`),
    "a ContainerRef whose wrapped key was swapped for another container's: refused by its commitment before its index is opened",
  );
  t.match(
    altered('forked', (dir) => {
      const second = readFileSync(join(dir, 'manifests', '00000000000000000002'));
      second[second.length - 1] ^= 1;
      writeFileSync(join(dir, 'manifests', '00000000000000000002'), second);
    }),
    /^manifest 3 does not descend from manifest 1: forked at 2$/,
    'manifest 2 replaced: a reader that saw generation 1 finds the fork without opening it',
  );
  t.match(
    refusal(() => readRepository(storeFiles(store), keyring, { trusted: [localKeyArn('00000000-0000-4000-8000-000000000000')] })),
    /^key arn:\S+ is neither trusted nor endorsed by a trusted key$/,
    'a reader that trusts another key asks nothing of this one',
  );
});

t.test(
  'rotation, gc and its history object, read by the independent implementation: the endorsement followed, continuity proved past removed manifests, the schedule opened',
  async (t) => {
    const sb = new Sandbox(t);
    const src = sb.repo('src');
    const store = sb.path('store');
    sb.git(src, 'remote', 'add', 'origin', `kmscrypt::file://${store}`);
    sb.commit(src, { 'a.txt': 'a\n' }, 'first');
    sb.git(src, 'push', '-q', 'origin', 'main');
    const seen = seenNow(store, 1);
    sb.commit(src, { 'b.txt': 'b\n' }, 'second');
    sb.git(src, 'push', '-q', 'origin', 'main');
    const first = loadKeyring(sb.env.KMSCRYPT_KEYRING!);
    const k1 = ownKey(first);
    const k2 = (JSON.parse(sb.run('git', ['kmscrypt', 'keys', 'create', '--json']).stdout) as { arn: string }).arn;
    sb.run('git', ['kmscrypt', 'rotate-key', 'origin', '--to', k2], { cwd: src });
    sb.commit(src, { 'c.txt': 'c\n' }, 'third, under the new key');
    sb.git(src, 'push', '-q', 'origin', 'main');
    const keyring = loadKeyring(sb.env.KMSCRYPT_KEYRING!);
    t.equal(ownKey(keyring), k1, 'alias/kmscrypt still names the first key: the reader trusts only it');

    const rotated = readRepository(storeFiles(store), keyring, { trusted: [k1], seen });
    t.same(rotated.endorsed, [k2], "the newest manifest is sealed under the second key, accepted through the first key's endorsement");
    t.same(
      rotated.newest!.env.endorsements.map((e) => [e.from, e.to]),
      [[k1, k2]],
      'the preamble carries the endorsement',
    );
    t.same(
      rotated.newest!.manifest.containers.map((c) => c.keyId),
      [k2, k2, k2],
      "every ContainerRef's data key is wrapped under the second key",
    );
    t.same(
      rotated.containers.map((c) => c.keyId),
      [k1, k1, k2],
      "the containers' own preambles keep the wrapping they were written with; readers go by the manifest",
    );
    t.same(readRepository(storeFiles(store), keyring, { trusted: [k2] }).endorsed, [], 'a reader that trusts the second key needs no endorsement');

    const newestKey = join('manifests', '00000000000000000004');
    const forge = (name: string, change: (bytes: Buffer) => void) => {
      const dir = sb.path(name);
      cpSync(store, dir, { recursive: true });
      const bytes = readFileSync(join(dir, newestKey));
      change(bytes);
      writeFileSync(join(dir, newestKey), bytes);
      return refusal(() => readRepository(storeFiles(dir), keyring, { trusted: [k1], seen }));
    };
    const ciphertext = rotated.newest!.env.endorsements[0].ciphertext;
    t.match(
      forge('altered-endorsement', (bytes) => {
        bytes[bytes.indexOf(ciphertext) + ciphertext.length - 1] ^= 1;
      }),
      new RegExp(`^the endorsement of ${k2} by ${k1} does not verify$`),
      'an altered endorsement is refused before the second key is asked anything',
    );
    const k3 = (JSON.parse(sb.run('git', ['kmscrypt', 'keys', 'create', '--json']).stdout) as { arn: string }).arn;
    t.match(
      forge('retargeted-endorsement', (bytes) => {
        // The same length: the preamble's key and the endorsement's `to` both now name a third key.
        const preamble = rotated.newest!.env.preamble.length;
        for (let at = bytes.indexOf(k2); at >= 0 && at < preamble; at = bytes.indexOf(k2, at + 1)) bytes.write(k3, at);
      }),
      new RegExp(`^the endorsement of ${k3} by ${k1} does not verify$`),
      "the first key's endorsement of the second, made to name a third key: its plaintext binds the key it endorses",
    );

    sb.run('git', ['kmscrypt', 'gc', 'origin'], { cwd: src });
    const collected = readRepository(storeFiles(store), keyring, { trusted: [k1], seen });
    const history = collected.newest!.env.history!;
    t.same(
      { generation: collected.newest!.env.generation, historyGeneration: history.generation, stored: readdirSync(join(store, 'history')) },
      { generation: 5, historyGeneration: 5, stored: [history.hash] },
      'gc published generation 5, whose preamble names the history object it stored',
    );
    t.equal(collected.schedules.length, 1, 'one gc schedule');
    const [schedule] = collected.schedules;
    t.same(
      { keyId: schedule.keyId, generation: schedule.generation, containers: [...schedule.containers].sort() },
      { keyId: k2, generation: 5, containers: rotated.newest!.manifest.containers.map((c) => c.id).sort() },
      'the schedule, sealed under the second key, opens: the three consolidated containers, and the manifests below generation 5',
    );
    t.ok(Date.parse(schedule.createdAt) <= Date.now(), 'its authenticated time');

    sb.run('git', ['kmscrypt', 'gc', 'origin', '--grace', '0'], { cwd: src });
    t.same(readdirSync(join(store, 'manifests')), ['00000000000000000005'], 'the second gc removed manifests 1 to 4');
    const swept = readRepository(storeFiles(store), keyring, { trusted: [k1], seen });
    t.ok(swept.descended, 'the reader that saw generation 1 proved through the history object that generation 5 descends from it');
    t.same(swept.endorsed, [k2], 'still accepting the second key through the first');
    t.same(swept.schedules, [], 'the schedule was acted on and removed');
    const rebuilt = rebuild(sb, 'rebuilt.git', swept);
    t.same(sb.objects(rebuilt), sb.objects(src), "the consolidated container holds exactly the source repository's objects");
    t.same(sb.refs(rebuilt), new Map([['refs/heads/main', sb.git(src, 'rev-parse', 'main').trim()]]), 'and its ref');

    const tampered = sb.path('tampered-history');
    cpSync(store, tampered, { recursive: true });
    const historyPath = join(tampered, 'history', history.hash);
    const historyBytes = readFileSync(historyPath);
    historyBytes[56] ^= 1; // the hash it attests for manifest 1, the one the reader saw
    writeFileSync(historyPath, historyBytes);
    t.match(
      refusal(() => readRepository(storeFiles(tampered), keyring, { trusted: [k1], seen })),
      /^history object of manifest 5: hash mismatch$/,
      'an altered history object is not the one the manifest names',
    );
  },
);

t.test(
  "an empty repository is adopted by the independent implementation on its descriptor's proof alone; one made by git kmscrypt init is read with its HEAD",
  async (t) => {
    const sb = new Sandbox(t);
    // A descriptor and no manifest: a first push interrupted right after it created the repository.
    const store = sb.path('store');
    const src = sb.repo('src');
    sb.commit(src, { 'a.txt': 'a\n' }, 'A');
    sb.run('git', ['push', '-q', `kmscrypt::file://${store}`, 'main'], {
      cwd: src,
      env: { KMSCRYPT_TEST_KILL_POINT: 'create-descriptor' },
      expectFailure: true,
    });
    const keyring = loadKeyring(sb.env.KMSCRYPT_KEYRING!);
    const read = readRepository(storeFiles(store), keyring, { trusted: [ownKey(keyring)] });
    t.same(
      { manifests: read.newest, proofVerified: read.proofVerified, keyId: read.descriptor.keyId },
      { manifests: null, proofVerified: true, keyId: ownKey(keyring) },
      'no manifest; the proof verifies under the trusted key',
    );
    t.match(
      refusal(() => readRepository(storeFiles(store), keyring, { trusted: [localKeyArn('00000000-0000-4000-8000-000000000000')] })),
      /^a descriptor without manifests is adopted only on a proof made with a trusted key$/,
      'not by a reader that does not trust its key',
    );
    // git kmscrypt init records HEAD, as git init --bare does, in a first manifest without refs.
    const made = sb.path('made');
    sb.run('git', ['kmscrypt', 'init', '--initial-branch', 'trunk', `kmscrypt::file://${made}`]);
    const init = readRepository(storeFiles(made), keyring, { trusted: [ownKey(keyring)] });
    t.same(
      { proofVerified: init.proofVerified, generation: init.newest?.manifest.generation, head: init.newest?.manifest.head, refs: init.newest?.manifest.refs },
      { proofVerified: true, generation: 1, head: 'refs/heads/trunk', refs: {} },
      "init's repository: generation 1 names HEAD and holds no ref",
    );
  },
);

t.test('the version 1 fixture is read by the independent implementation', async (t) => {
  const sb = new Sandbox(t);
  const fixture = join(__dirname, 'fixtures', 'format-v1');
  const keyring = loadKeyring(join(fixture, 'keyring.json'));
  const store = join(fixture, 'store');
  const read = readRepository(storeFiles(store), keyring, { trusted: [ownKey(keyring)], seen: seenNow(store, 1) });
  t.same(
    { descriptor: read.descriptor.version, proofVerified: read.proofVerified },
    { descriptor: 1, proofVerified: false },
    'a version 1 descriptor: no location, no proof',
  );
  t.equal(read.newest!.env.version, 1, 'a version 1 manifest');
  t.ok(read.descended, 'its previous (inside the encrypted body in version 1) is the hash of manifest 1');
  t.same(
    read.newest!.manifest.containers.map((c) => c.version ?? 1),
    [1, 1],
    'two version 1 containers',
  );
  const expected = new Map(
    readFileSync(join(fixture, 'refs.txt'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(' ').reverse() as [string, string]),
  );
  const rebuilt = rebuild(sb, 'v1.git', read);
  t.same(sb.refs(rebuilt), expected, 'every ref of the version 1 repository');
  sb.git(rebuilt, 'fsck', '--strict', '--no-dangling');
});
