/**
 * Known-answer vectors for stored format version 1 and, in format-v3.json, what version 3 added
 * (docs/FORMAT.md). The JSON files under test/vectors/ were generated once from fixed inputs and
 * cross-checked, when generated, against an independent implementation of docs/FORMAT.md written
 * with node:crypto alone (test/independent/kmscrypt-reader.ts, which test/format-independent.test.ts
 * checks against them too). They must never be regenerated to make this test pass: a failure here
 * means the stored format changed.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { containerKey, FORMAT_VERSION, GCM_LIMIT, generationOfKey, manifestKey, MAX_OBJECT_SIZE, Suite } from '../src/format/constants';
import { decodePreamble, decodeTrailer, encodePreamble, encodeTrailer, openIndex, sealIndex, sha256Hex } from '../src/format/container';
import { encodeIndex, IndexEntry } from '../src/format/container-index';
import { checkDescriptorProof, decodeDescriptor, encodeDescriptor, proofInput, proveDescriptor } from '../src/format/descriptor';
import { endorsementPlaintext } from '../src/format/endorsement';
import { encodeHistory, openHistory } from '../src/format/history';
import { keyCommitment } from '../src/format/key-commitment';
import { deriveKey, KeyPurpose } from '../src/format/key-derivation';
import { Manifest, openManifest, parseManifestEnvelope, sealManifest } from '../src/format/manifest';
import { openSchedule, parseScheduleEnvelope } from '../src/format/schedule';
import { gcmNonce, openRecord, recordAad, RecordHeader, recordKeys, sealedLength, sealRecord } from '../src/format/record';
import { serializeEncryptionContext } from '../src/keys/encryption-context';
import { EncryptionContext, repositoryContext } from '../src/keys/key-provider';
import { expectedManifestPreamble, loadFormatV3Vectors, manifestPreambleView } from './support/format-v3-vectors';

const dir = join(__dirname, 'vectors');
const load = <T>(name: string): T => JSON.parse(readFileSync(join(dir, name), 'utf8')) as T;
const hex = (s: string) => Buffer.from(s, 'hex');

interface HeaderJson {
  oid: string;
  type: number;
  size: number;
  base: string;
}
const header = (h: HeaderJson): RecordHeader => ({ oid: hex(h.oid), type: h.type, size: h.size, base: hex(h.base) });

interface HkdfVectors {
  dataKey: string;
  withContainerId: { salt: string; keys: Record<KeyPurpose, string> };
  withManifestNonce: { salt: string; purpose: KeyPurpose; key: string };
}
interface GcmVectors {
  dataKey: string;
  repositoryId: string;
  containerId: string;
  records: Array<{ name: string; seq: number; header: HeaderJson; payload: string; aad: string; nonce: string; sealed: string }>;
}
interface CbcVector {
  dataKey: string;
  repositoryId: string;
  containerId: string;
  seq: number;
  header: HeaderJson;
  payload: string;
  aad: string;
  sealed: string;
}
interface ContainerVectors {
  dataKey: string;
  repositoryId: string;
  containerId: string;
  preamble: { hashLength: number; keyId: string; wrappedKey: string; encoded: string };
  index: {
    hashLength: number;
    recordsStart: number;
    recordsEnd: number;
    entries: Array<{ oid: string; type: number; size: number; sealedLength: number; localBase?: number; externalBase?: string }>;
    aad: string;
    plain: string;
    sealed: string;
  };
  trailer: { indexOffset: number; indexLength: number; encoded: string };
}
interface ManifestVector {
  dataKey: string;
  repositoryId: string;
  generation: number;
  keyId: string;
  wrappedKey: string;
  nonce: string;
  stored: string;
  sha256: string;
  manifest: Manifest;
}
interface ContextVectors {
  cases: Array<{ context: EncryptionContext; serialized: string }>;
}

t.test('constants', async (t) => {
  t.equal(FORMAT_VERSION, 3, 'version 3 is written; the vectors but format-v3.json are of version 1, which is still read');
  t.equal(GCM_LIMIT, 6291456);
  t.equal(MAX_OBJECT_SIZE, 2147483648);
  t.equal(manifestKey(2), 'manifests/00000000000000000002');
  t.equal(manifestKey(12345678901234), 'manifests/00000012345678901234');
  t.equal(generationOfKey('manifests/00000000000000000002'), 2);
  t.equal(generationOfKey('manifests/2'), undefined, 'unpadded keys are not manifests');
  t.equal(generationOfKey('manifests/99999999999999999999'), undefined, 'beyond 2^53 is ignored');
  t.equal(containerKey('00112233445566778899aabbccddeeff'), 'containers/00112233445566778899aabbccddeeff');
});

t.test('HKDF subkeys', async (t) => {
  const v = load<HkdfVectors>('hkdf.json');
  const dataKey = hex(v.dataKey);
  for (const [purpose, key] of Object.entries(v.withContainerId.keys) as Array<[KeyPurpose, string]>) {
    t.equal(deriveKey(dataKey, purpose, hex(v.withContainerId.salt)).toString('hex'), key, purpose);
  }
  t.equal(Object.keys(v.withContainerId.keys).length, 5, 'every purpose has a vector');
  t.equal(deriveKey(dataKey, v.withManifestNonce.purpose, hex(v.withManifestNonce.salt)).toString('hex'), v.withManifestNonce.key);
  const keys = recordKeys(dataKey, 'any', hex(v.withContainerId.salt));
  t.equal(keys.gcm.toString('hex'), v.withContainerId.keys['record-gcm']);
  t.equal(keys.cbcEnc.toString('hex'), v.withContainerId.keys['record-cbc-enc']);
  t.equal(keys.cbcMac.toString('hex'), v.withContainerId.keys['record-cbc-mac']);
  t.throws(() => deriveKey(dataKey.subarray(1), 'index', hex(v.withContainerId.salt)), RangeError, 'a data key is 32 bytes');
});

t.test('version 3: commitments, subkeys, descriptor proof, preambles, endorsement, history, schedule', async (t) => {
  const v = loadFormatV3Vectors();
  const dataKey = hex(v.dataKey);
  const containerId = hex(v.containerId);
  const nonce = hex(v.nonce);
  const repository = Buffer.from(v.repositoryId);
  t.equal(keyCommitment(dataKey, containerId).toString('hex'), v.subkeys.commitment.container, "a container's commitment");
  t.equal(keyCommitment(dataKey, nonce).toString('hex'), v.subkeys.commitment.manifest, "a manifest's commitment");
  t.equal(keyCommitment(dataKey, repository).toString('hex'), v.subkeys.commitment.descriptor, "the descriptor proof's commitment");
  t.equal(deriveKey(dataKey, 'descriptor', repository).toString('hex'), v.subkeys.descriptorMacKey, 'the descriptor MAC key');
  t.equal(deriveKey(dataKey, 'schedule', nonce).toString('hex'), v.subkeys.scheduleKey, 'a gc schedule key');

  const descriptor = decodeDescriptor(Buffer.from(v.descriptor.stored), 'vector');
  t.equal(sha256Hex(Buffer.from(v.descriptor.stored)), v.descriptor.sha256, 'the descriptor vector is intact');
  t.equal(proofInput(descriptor).toString('hex'), v.descriptor.proofInput, 'proof input');
  const { proof, ...unproved } = descriptor;
  t.equal(
    encodeDescriptor(proveDescriptor(unproved, dataKey, Buffer.from(proof!.wrappedKey, 'base64'))).toString('utf8'),
    v.descriptor.stored,
    'the proof, and the stored bytes',
  );
  t.doesNotThrow(() => checkDescriptorProof(descriptor, dataKey, 'vector'), 'the proof verifies');

  const p = v.containerPreamble;
  const encoded = encodePreamble({
    version: 3,
    containerId,
    hashLength: p.hashLength,
    commitment: hex(v.subkeys.commitment.container),
    keyId: p.keyId,
    wrappedKey: hex(p.wrappedKey),
  });
  t.equal(encoded.toString('hex'), p.encoded, 'container preamble bytes');
  t.same(decodePreamble(hex(p.encoded), 'vector').length, hex(p.encoded).length, 'container preamble length');

  t.equal(endorsementPlaintext(v.repositoryId, v.endorsement.to).toString('hex'), v.endorsement.plaintext, 'endorsement plaintext');

  for (const h of v.histories) {
    t.equal(encodeHistory(h).toString('hex'), h.encoded, `history object ${h.first} to ${h.end - 1}`);
    t.same(openHistory(hex(h.encoded), { generation: h.end, hash: h.sha256 }, 'vector'), {
      first: h.first,
      end: h.end,
      previous: h.previous,
      hashes: h.hashes,
    });
  }

  const m = v.manifest;
  const stored = hex(m.stored);
  t.equal(sha256Hex(stored), m.sha256, 'the manifest vector is intact');
  const env = parseManifestEnvelope(stored, 'vector');
  t.same(manifestPreambleView(env), expectedManifestPreamble(v), 'manifest preamble fields');
  t.equal(
    JSON.stringify(openManifest(env, dataKey, v.repositoryId, 'vector')),
    JSON.stringify(m.manifest),
    'the manifest opens to the same JSON, field for field',
  );

  const s = v.schedule;
  const schedule = parseScheduleEnvelope(hex(s.stored), 'vector');
  t.same(
    { keyId: schedule.keyId, wrappedKey: schedule.wrappedKey.toString('hex'), nonce: schedule.nonce.toString('hex') },
    { keyId: s.keyArn, wrappedKey: s.wrappedKey, nonce: s.nonce },
    'schedule preamble',
  );
  t.same(openSchedule(schedule, dataKey, v.repositoryId, 'vector'), s.schedule, 'the schedule opens');
});

t.test('GCM records are deterministic', async (t) => {
  const v = load<GcmVectors>('record-gcm.json');
  const keys = recordKeys(hex(v.dataKey), v.repositoryId, hex(v.containerId));
  for (const r of v.records) {
    const h = header(r.header);
    t.ok(r.header.size < GCM_LIMIT, `${r.name}: a GCM-sized record`);
    t.equal(recordAad(keys, Suite.Gcm, r.seq, h).toString('hex'), r.aad, `${r.name}: AAD layout`);
    t.equal(gcmNonce(r.seq).toString('hex'), r.nonce, `${r.name}: nonce`);
    t.equal(sealRecord(keys, r.seq, h, hex(r.payload)).toString('hex'), r.sealed, `${r.name}: seal`);
    t.equal(openRecord(keys, r.seq, h, hex(r.sealed), r.name).toString('hex'), r.payload, `${r.name}: open`);
    t.equal(sealedLength(Suite.Gcm, hex(r.payload).length), hex(r.sealed).length, `${r.name}: sealed length`);
  }
});

t.test('CBC-HMAC record', async (t) => {
  const v = load<CbcVector>('record-cbc.json');
  const keys = recordKeys(hex(v.dataKey), v.repositoryId, hex(v.containerId));
  const h = header(v.header);
  const payload = hex(v.payload);
  const sealed = hex(v.sealed);
  t.ok(v.header.size >= GCM_LIMIT, 'a CBC-sized record');
  t.equal(recordAad(keys, Suite.CbcHmac, v.seq, h).toString('hex'), v.aad, 'AAD layout');
  t.same(openRecord(keys, v.seq, h, sealed, 'vector'), payload, 'the stored vector opens');
  t.equal(sealed.length, 16 + (Math.floor(payload.length / 16) + 1) * 16 + 32, 'IV | padded ciphertext | MAC');
  t.equal(sealedLength(Suite.CbcHmac, payload.length), sealed.length, 'sealedLength');
  for (const n of [0, 1, 15, 16, 17, 31, 32, 33]) {
    t.equal(sealedLength(Suite.CbcHmac, n), 16 + (Math.floor(n / 16) + 1) * 16 + 32, `sealedLength of ${n} bytes`);
  }
  const a = sealRecord(keys, v.seq, h, payload);
  const b = sealRecord(keys, v.seq, h, payload);
  t.equal(a.length, sealed.length, 'a new seal has the same length');
  t.not(a.subarray(0, 16).toString('hex'), b.subarray(0, 16).toString('hex'), 'every seal draws a new IV');
  t.same(openRecord(keys, v.seq, h, a, 'new'), payload, 'seal → open round trip');
  t.same(openRecord(keys, v.seq, h, b, 'new'), payload, 'seal → open round trip (second IV)');
});

t.test('container preamble, sealed index and trailer', async (t) => {
  const v = load<ContainerVectors>('container.json');
  const dataKey = hex(v.dataKey);
  const containerId = hex(v.containerId);
  const p = v.preamble;
  const encoded = encodePreamble({ version: 1, containerId, hashLength: p.hashLength, keyId: p.keyId, wrappedKey: hex(p.wrappedKey) });
  t.equal(encoded.toString('hex'), p.encoded, 'preamble bytes');
  const decoded = decodePreamble(Buffer.concat([hex(p.encoded), Buffer.from('records follow')]), 'vector');
  t.equal(decoded.length, hex(p.encoded).length, 'preamble length');
  t.equal(decoded.preamble.containerId.toString('hex'), v.containerId);
  t.equal(decoded.preamble.hashLength, p.hashLength);
  t.equal(decoded.preamble.keyId, p.keyId);
  t.equal(decoded.preamble.wrappedKey.toString('hex'), p.wrappedKey);

  const ix = v.index;
  const entries: IndexEntry[] = ix.entries.map((e) => ({
    oid: hex(e.oid),
    type: e.type,
    size: e.size,
    sealedLength: e.sealedLength,
    base: e.localBase ?? (e.externalBase === undefined ? undefined : hex(e.externalBase)),
  }));
  t.equal(encodeIndex(ix.hashLength, ix.recordsStart, entries).toString('hex'), ix.plain, 'index plaintext bytes');
  t.equal(sealIndex(dataKey, v.repositoryId, containerId, ix.hashLength, ix.recordsStart, entries, 1).toString('hex'), ix.sealed, 'sealed index bytes');

  const index = openIndex(dataKey, v.repositoryId, containerId, hex(ix.sealed), ix.recordsEnd, 'vector', 1);
  t.equal(index.hashLength, ix.hashLength);
  t.equal(index.count, ix.entries.length);
  t.equal(index.recordsStart, ix.recordsStart);
  let offset = ix.recordsStart;
  ix.entries.forEach((e, i) => {
    t.equal(index.oidHex(i), e.oid, `entry ${i} oid`);
    t.equal(index.types[i], e.type, `entry ${i} type`);
    t.equal(index.sizes[i], e.size, `entry ${i} size`);
    t.equal(index.lengths[i], e.sealedLength, `entry ${i} length`);
    t.equal(index.offsets[i], offset, `entry ${i} offset is implicit`);
    offset += e.sealedLength;
    const base = e.localBase !== undefined ? ix.entries[e.localBase].oid : (e.externalBase ?? '');
    t.equal(index.base(i).toString('hex'), base, `entry ${i} base`);
    t.equal(index.find(e.oid), i, `entry ${i} found by ID`);
  });
  t.equal(offset, ix.recordsEnd);

  const tr = v.trailer;
  t.equal(encodeTrailer(tr.indexOffset, tr.indexLength).toString('hex'), tr.encoded, 'trailer bytes');
  t.same(decodeTrailer(hex(tr.encoded), tr.indexOffset + tr.indexLength + 24, 'vector'), { indexOffset: tr.indexOffset, indexLength: tr.indexLength });
  t.equal(tr.indexOffset, ix.recordsEnd);
  t.equal(tr.indexLength, hex(ix.sealed).length);
});

t.test('sealed manifest', async (t) => {
  const v = load<ManifestVector>('manifest.json');
  const stored = hex(v.stored);
  const dataKey = hex(v.dataKey);
  t.equal(sha256Hex(stored), v.sha256, 'the vector file is intact');
  const env = parseManifestEnvelope(stored, 'vector');
  t.equal(env.generation, v.generation);
  t.equal(env.keyId, v.keyId);
  t.equal(env.wrappedKey.toString('hex'), v.wrappedKey);
  t.equal(env.nonce.toString('hex'), v.nonce);
  t.equal(env.preamble.length, 32 + Buffer.byteLength(v.keyId) + hex(v.wrappedKey).length, 'preamble length');
  t.equal(env.sealed.length, stored.length - env.preamble.length);
  const opened = openManifest(env, dataKey, v.repositoryId, 'vector');
  t.same(opened, v.manifest, 'opens to the expected JSON');
  t.equal(JSON.stringify(opened), JSON.stringify(v.manifest), 'with the same field order');

  const resealed = sealManifest(v.manifest, dataKey, { keyArn: v.keyId, wrappedKey: hex(v.wrappedKey), history: null, endorsements: [] });
  t.not(resealed.toString('hex'), v.stored, 'a new seal draws a new nonce');
  t.equal(resealed[4], 3, 'a new seal is version 3');
  t.equal(stored[4], 1, 'the vector is version 1 (still read)');
  t.same(
    [resealed.subarray(0, 4), resealed.subarray(5, 16)],
    [stored.subarray(0, 4), stored.subarray(5, 16)],
    'magic, kind, flags and generation are unchanged',
  );
  t.same(openManifest(parseManifestEnvelope(resealed, 'new'), dataKey, v.repositoryId, 'new'), v.manifest, 'seal → open round trip');
});

t.test('encryption context serialization', async (t) => {
  const v = load<ContextVectors>('encryption-context.json');
  t.equal(v.cases.length, 2);
  for (const c of v.cases) t.equal(serializeEncryptionContext(c.context).toString('hex'), c.serialized, JSON.stringify(c.context));
  t.equal(
    serializeEncryptionContext(repositoryContext(v.cases[0].context['kmscrypt:repository-id'])).toString('hex'),
    v.cases[0].serialized,
    'the repository context',
  );
  t.same(Object.keys(repositoryContext('x')), ['kmscrypt:repository-id']);
});
