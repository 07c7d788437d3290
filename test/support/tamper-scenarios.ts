import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { deflateRawSync, deflateSync, inflateSync } from 'node:zlib';
import type { Test } from 'tap';
import type { ErrorCode } from '../../src/errors';
import { openContainer } from '../../src/remote/container-reader';
import { RemoteConfig, RemoteRepository } from '../../src/remote/remote-repository';
import { Sandbox } from './sandbox';
import type { StoreAccess } from './store-access';
import { scenarioSandbox, type ScenarioBackend } from './git-scenarios';

export interface TamperBackend extends ScenarioBackend {
  /** The product's own view of a store, to locate records inside a container. */
  remoteConfig(sb: Sandbox, store: StoreAccess): RemoteConfig;
  /** A new KMS key of this backend's key provider (not any alias); its ARN. */
  createKey(sb: Sandbox, description: string): Promise<string>;
}

const SECRETS = {
  branch: 'refs/heads/secret-branch-name-qwerty',
  tag: 'secret-tag-name-asdfgh',
  message: 'secret commit message xyzzy plugh',
  content: 'SECRET FILE CONTENT: the launch code is 0000-1111-2222-3333\n',
  fileName: 'secret-file-name-zxcvbn.txt',
};

/** Every way a storage operator could alter the store must stop the fetch before git sees anything. */
/** Figures for `npm run test:reliability`: tamper cases tried and detected, per scenario. */
export type TamperReport = (name: string, figures: { tamperTried: number; tamperDetected: number }) => void;

export function tamperScenarios(t: Test, backend: TamperBackend, report?: TamperReport): void {
  const tally = { tamperTried: 0, tamperDetected: 0 };
  /** Counts one tamper case; it is detected when every check about it passed. */
  const counted = (tt: Test, checks: () => void) => {
    const failedBefore = tt.counts.fail;
    checks();
    tally.tamperTried++;
    if (tt.counts.fail === failedBefore) tally.tamperDetected++;
  };
  const reportScenario = (name: string) => {
    report?.(name, { ...tally });
    tally.tamperTried = 0;
    tally.tamperDetected = 0;
  };
  const published = async (tt: Test) => {
    const sb = scenarioSandbox(tt, backend);
    const store = await backend.newStore(sb, 'store');
    const src = sb.repo('src');
    sb.commit(src, { [SECRETS.fileName]: SECRETS.content, 'other.txt': 'other\n' }, SECRETS.message);
    sb.commit(src, { 'more.txt': 'more content here\n' }, 'second commit');
    sb.git(src, 'tag', '-a', SECRETS.tag, '-m', 'annotated secret tag');
    sb.git(src, 'push', '-q', store.url, `main:${SECRETS.branch}`, 'main', SECRETS.tag);
    return { sb, store, src };
  };

  /** Fetches into a fresh repository: it must fail as failsWith says, and create no ref and no object. */
  const expectRefused = (tt: Test, sb: Sandbox, store: StoreAccess, label: string, code: ErrorCode) =>
    counted(tt, () => {
      const dst = sb.path(`fetch-${Math.random().toString(36).slice(2)}`);
      sb.run('git', ['init', '-q', '--bare', dst]);
      failsWith(tt, sb, dst, ['fetch', store.url, 'refs/*:refs/*'], label, code);
      tt.equal(sb.git(dst, 'for-each-ref').trim(), '', `${label}: no ref was created`);
      tt.equal(sb.git(dst, 'count-objects', '-v').match(/^in-pack: (\d+)/m)?.[1] ?? '0', '0', `${label}: no object was stored`);
    });

  t.test('the store holds no ref name, message, file name, content or object ID, in plain or compressed form', async (tt) => {
    const { sb, store, src } = await published(tt);
    const keys = await store.keys();
    tt.same(keys.map(kindOfKey).sort(), ['container', 'descriptor', 'manifest'], 'the store holds a descriptor, a manifest and a container');
    const needles = plaintextNeedles(sb, src);
    // The detectors fire on the same repository unencrypted: git's own pack of it.
    sb.git(src, 'repack', '-adq');
    const packDir = join(src, '.git', 'objects', 'pack');
    const pack = readFileSync(join(packDir, readdirSync(packDir).find((f) => f.endsWith('.pack'))!));
    const found = inflatableStreams(pack);
    tt.ok(found.length >= sb.objects(src).length, `control: ${found.length} zlib streams inflate in git's unencrypted pack of the repository`);
    tt.ok(found.some((f) => f.inflated.includes(Buffer.from(SECRETS.content))), 'control: one of them is the secret file');
    tt.ok(needles.some(([, needle]) => pack.includes(needle)), 'control: the compressed forms searched for are found in the pack');
    let leaks = 0;
    for (const key of keys) {
      const bytes = await store.read(key);
      for (const [what, needle] of needles) {
        if (bytes.includes(needle) || Buffer.from(key).includes(needle)) {
          leaks++;
          tt.fail(`${key} contains ${what}`);
        }
      }
      if (key === 'kmscrypt.json') continue;
      // git compresses every object with zlib: an unencrypted pack or loose object holds streams that inflate.
      const streams = inflatableStreams(bytes);
      tt.same(streams, [], `no zlib stream inflates at any offset of ${key}`);
      const part = sealedPart(kindOfKey(key), bytes);
      const sealed = bytes.subarray(part.start, part.end);
      const ratio = deflateRawSync(sealed, { level: 9 }).length / sealed.length;
      tt.ok(ratio > 0.99, `${key}: the ${sealed.length} bytes after the plaintext preamble (all but the plaintext preamble and trailer) do not compress (ratio ${ratio.toFixed(3)})`);
    }
    tt.ok(needles.length > 40, `${needles.length} needles searched`);
    tt.equal(leaks, 0, `none of ${needles.length} secrets appears in ${keys.length} stored objects or their names`);
  });

  t.test('a flipped byte in every field of every stored object is refused with the error its field calls for', async (tt) => {
    const { sb, store } = await published(tt);
    const keys = await store.keys();
    tt.same(keys.map(kindOfKey).sort(), ['container', 'descriptor', 'manifest'], 'the store holds a descriptor, a manifest and a container');
    let planned = 0;
    for (const key of keys) {
      const original = await store.read(key);
      const cases = flipCases(kindOfKey(key), original);
      planned += cases.length;
      for (const c of cases) {
        const bad = Buffer.from(original);
        bad[c.at] ^= c.mask ?? 0x01;
        await store.write(key, bad);
        expectRefused(tt, sb, store, `${key} byte ${c.at}/${original.length} (${c.field})`, c.code);
      }
      await store.write(key, original);
    }
    tt.equal(planned, FLIPPED_BYTE_CASES, `${FLIPPED_BYTE_CASES} flipped-byte cases: descriptor, manifest and container fields`);
    tt.equal(tally.tamperTried, planned, 'every planned case was tried');
    reportScenario('flipped bytes');
  });

  t.test('swapped records, a truncated or missing container, and a container or descriptor from another repository are refused', async (tt) => {
    const { sb, store, src } = await published(tt);
    const repo = (await RemoteRepository.open(backend.remoteConfig(sb, store)))!;
    const { manifest } = await repo.latest();
    const ref = manifest!.containers[0];
    const key = `containers/${ref.id}`;
    const original = await store.read(key);
    const { index } = await openContainer(repo, ref);
    tt.ok(index.count >= 2, 'the container holds several records');

    const [o0, l0, o1, l1] = [index.offsets[0], index.lengths[0], index.offsets[1], index.lengths[1]];
    const swapped = Buffer.concat([original.subarray(0, o0), original.subarray(o1, o1 + l1), original.subarray(o0, o0 + l0), original.subarray(o1 + l1)]);
    await store.write(key, swapped);
    expectRefused(tt, sb, store, 'records 0 and 1 swapped', 'TAMPERED');

    // The manifest records each container's length: a shorter one fails the ranged read (STORAGE).
    await store.write(key, original.subarray(0, original.length - 100));
    expectRefused(tt, sb, store, 'container truncated', 'STORAGE');
    await store.write(key, original.subarray(0, Math.floor(original.length / 2)));
    expectRefused(tt, sb, store, 'container cut in half', 'STORAGE');
    await store.remove(key);
    expectRefused(tt, sb, store, 'container deleted', 'STORAGE');
    await store.write(key, original);

    // A second repository with the same key and content: its pieces must not fit the first.
    const other = await backend.newStore(sb, 'other');
    sb.git(src, 'push', '-q', other.url, `main:${SECRETS.branch}`, 'main', SECRETS.tag);
    const otherRepo = (await RemoteRepository.open(backend.remoteConfig(sb, other)))!;
    const otherRef = (await otherRepo.latest()).manifest!.containers[0];
    const foreign = await other.read(`containers/${otherRef.id}`);
    tt.equal(foreign.length, original.length, 'the same objects make a container of the same length: it is its bytes that are refused');
    await store.write(key, foreign);
    expectRefused(tt, sb, store, 'container from another repository', 'TAMPERED');
    await store.write(key, original);

    const descriptor = await store.read('kmscrypt.json');
    await store.write('kmscrypt.json', await other.read('kmscrypt.json'));
    expectRefused(tt, sb, store, "another repository's descriptor", 'TAMPERED');
    tt.equal(tally.tamperTried, 6, 'six structural cases were tried');
    reportScenario('swapped, truncated, deleted and foreign objects');
    await store.write('kmscrypt.json', descriptor);
    sb.run('git', ['clone', '-q', '--mirror', store.url.replace(/^kmscrypt::/, 'kmscrypt::'), sb.path('restored.git')]);
    tt.pass('restored store is readable again');
  });

  t.test('a clone refuses a remote whose newest manifest was deleted or replaced by an older one', async (tt) => {
    const { sb, store, src } = await published(tt);
    sb.commit(src, { 'later.txt': 'later\n' }, 'later commit');
    sb.git(src, 'push', '-q', store.url, 'main');
    sb.run('git', ['clone', '-q', store.url, sb.path('watcher')]);
    const watcher = sb.path('watcher');
    const before = sb.git(watcher, 'rev-parse', 'origin/main').trim();
    const manifests = (await store.keys()).filter((k) => k.startsWith('manifests/'));
    const newest = manifests[manifests.length - 1];
    const newestBytes = await store.read(newest);

    await store.remove(newest);
    counted(tt, () => {
      failsWith(tt, sb, watcher, ['fetch', 'origin'], 'deletion of the newest manifest is a rollback', 'ROLLBACK');
      tt.equal(sb.git(watcher, 'rev-parse', 'origin/main').trim(), before, 'no ref moved');
    });

    await store.write(newest, await store.read(manifests[0]));
    counted(tt, () => {
      // Continuity would refuse it too; the line must name the first check that sees it.
      failsWith(tt, sb, watcher, ['fetch', 'origin'], 'an old manifest under a new name is refused', 'TAMPERED', /manifest \d+ is stored under the wrong generation \(\d+\): an old manifest was put back/);
      tt.equal(sb.git(watcher, 'rev-parse', 'origin/main').trim(), before, 'no ref moved');
    });
    tt.equal(tally.tamperTried, 2, 'two rollback cases were tried');
    reportScenario('rollback');
    await store.write(newest, newestBytes);
    sb.git(watcher, 'fetch', '-q', 'origin');
    tt.pass('the genuine manifest is accepted again');
  });

  t.test('a clone refuses a store whose repository was replaced by another one or removed', async (tt) => {
    const { sb, store } = await published(tt);
    sb.run('git', ['clone', '-q', store.url, sb.path('knower')]);
    const knower = sb.path('knower');
    const saved = new Map<string, Buffer>();
    for (const key of await store.keys()) saved.set(key, await store.read(key));
    for (const key of saved.keys()) await store.remove(key);
    counted(tt, () => {
      failsWith(tt, sb, knower, ['fetch', 'origin'], 'a removed repository is reported, not taken for a new one', 'TAMPERED');
    });
    const attacker = sb.repo('attacker');
    sb.commit(attacker, { 'evil.txt': 'evil\n' }, 'a different repository');
    sb.git(attacker, 'push', '-q', store.url, 'main');
    counted(tt, () => {
      failsWith(tt, sb, knower, ['fetch', 'origin'], 'a new repository at the same place is refused', 'TAMPERED');
    });
    tt.equal(tally.tamperTried, 2, 'two cases were tried: removed, replaced');
    reportScenario('repository removed or replaced');
  });
}

type StoredKind = 'descriptor' | 'manifest' | 'container';

function kindOfKey(key: string): StoredKind | 'other' {
  if (key === 'kmscrypt.json') return 'descriptor';
  if (/^manifests\/\d{20}$/.test(key)) return 'manifest';
  if (/^containers\/[0-9a-f]{32}$/.test(key)) return 'container';
  return 'other';
}

/** Where the sealed part of a stored object lies (docs/FORMAT.md §6.1, §7.1: version 3). */
function sealedPart(kind: StoredKind | 'other', bytes: Buffer): { start: number; end: number } {
  if (kind === 'manifest') {
    const { endorsements } = manifestLayout(bytes);
    return { start: endorsementsEnd(bytes, endorsements), end: bytes.length };
  }
  if (kind === 'container') {
    const k = bytes.readUInt16BE(57);
    return { start: 61 + k + bytes.readUInt16BE(59 + k), end: bytes.length - 24 };
  }
  return { start: bytes.length, end: bytes.length };
}

/** A version 3 manifest's variable-length fields (§7.1): key ARN at 134, wrapped key after it, then the endorsement count. */
function manifestLayout(bytes: Buffer): { k: number; w: number; endorsements: number } {
  const k = bytes.readUInt16BE(132);
  const w = bytes.readUInt16BE(134 + k);
  return { k, w, endorsements: 136 + k + w };
}

function endorsementsEnd(bytes: Buffer, at: number): number {
  let p = at + 2;
  for (let i = 0; i < bytes.readUInt16BE(at); i++) for (let f = 0; f < 3; f++) p += 2 + bytes.readUInt16BE(p);
  return p;
}

/** The flipped-byte cases of the published store (41: 13 + 15 + 13). */
const FLIPPED_BYTE_CASES = 41;

/**
 * One byte flipped (xor 1, or the given mask) in each field of a stored object, with the error
 * code that field's check gives (docs/FORMAT.md, version 3): the descriptor is parsed (CORRUPT)
 * and bound by the manifest's descriptor hash (TAMPERED); its repository ID is the KMS encryption
 * context, and a manifest whose wrapped key does not unwrap under the key its preamble names for
 * this repository is TAMPERED; a key ARN the clone does not trust is refused before KMS is asked
 * (KEY_ERROR). A manifest's structure is CORRUPT, its key commitment and preamble are checked
 * before and by the tag (TAMPERED); a container's preamble is bound by the manifest, its records
 * and index by their tags (TAMPERED), its trailer is checked against its size (CORRUPT).
 */
function flipCases(kind: StoredKind | 'other', bytes: Buffer): Array<{ field: string; at: number; code: ErrorCode; mask?: number }> {
  const n = bytes.length;
  if (kind === 'descriptor') {
    const text = bytes.toString('latin1');
    const valueAt = (field: string) => text.indexOf(`"${field}": "`) + field.length + 5;
    const digitIn = (from: number) => from + [...text.slice(from)].findIndex((c) => c >= '0' && c <= '9');
    const id = valueAt('repositoryId');
    return [
      { field: 'JSON syntax', at: 0, code: 'CORRUPT' },
      { field: 'format', at: valueAt('format'), code: 'CORRUPT' },
      { field: 'repository ID, another valid ID', at: digitIn(id), code: 'TAMPERED' },
      { field: 'repository ID, an invalid one', at: text.indexOf('-', id), code: 'CORRUPT' },
      { field: 'object format', at: valueAt('objectFormat'), code: 'CORRUPT' },
      { field: 'key ID', at: valueAt('keyId') + 10, code: 'TAMPERED' },
      { field: 'key provider', at: valueAt('keyProvider'), code: 'CORRUPT' },
      { field: 'creation time', at: digitIn(valueAt('createdAt')), code: 'TAMPERED' },
      { field: 'location', at: text.indexOf('"', valueAt('location')) - 1, code: 'TAMPERED' },
      // A digit: xor 1 keeps it a digit, so the base64 stays well-formed (a '+' or '/' would become
      // an invalid character: CORRUPT, one run in 32) and only the key's bytes change.
      { field: 'proof: wrapped key', at: digitIn(valueAt('wrappedKey') + 20), code: 'TAMPERED' },
      { field: 'proof: commitment', at: digitIn(valueAt('commitment')), code: 'TAMPERED' },
      { field: 'proof: MAC', at: digitIn(valueAt('mac')), code: 'TAMPERED' },
      { field: 'final newline', at: n - 1, code: 'CORRUPT' },
    ];
  }
  if (kind === 'manifest') {
    const { k, w, endorsements } = manifestLayout(bytes);
    const { start } = sealedPart(kind, bytes);
    return [
      { field: 'magic', at: 0, code: 'CORRUPT' },
      // xor 4: version 3 becomes 7, which no reader knows (xor 1 would read as version 2).
      { field: 'version', at: 4, code: 'CORRUPT', mask: 0x04 },
      { field: 'kind', at: 5, code: 'CORRUPT' },
      { field: 'flags', at: 7, code: 'TAMPERED' },
      { field: 'generation', at: 15, code: 'TAMPERED' },
      { field: 'nonce', at: 20, code: 'TAMPERED' },
      { field: 'key commitment', at: 44, code: 'TAMPERED' },
      { field: 'previous manifest hash', at: 76, code: 'TAMPERED' },
      { field: 'history generation', at: 99, code: 'TAMPERED' },
      { field: 'history hash', at: 116, code: 'TAMPERED' },
      { field: 'key ARN', at: 134 + Math.floor(k / 2), code: 'KEY_ERROR' },
      { field: 'wrapped data key', at: 136 + k + Math.floor(w / 2), code: 'TAMPERED' },
      { field: 'endorsement count', at: endorsements + 1, code: 'CORRUPT' },
      { field: 'ciphertext', at: Math.floor((start + n - 16) / 2), code: 'TAMPERED' },
      { field: 'GCM tag', at: n - 1, code: 'TAMPERED' },
    ];
  }
  if (kind === 'container') {
    const k = bytes.readUInt16BE(57);
    const w = bytes.readUInt16BE(59 + k);
    const { start } = sealedPart(kind, bytes);
    const indexOffset = Number(bytes.readBigUInt64BE(n - 24));
    const indexLength = Number(bytes.readBigUInt64BE(n - 16));
    return [
      { field: 'magic', at: 0, code: 'TAMPERED' },
      { field: 'version', at: 4, code: 'TAMPERED' },
      { field: 'container ID', at: 12, code: 'TAMPERED' },
      { field: 'hash length', at: 24, code: 'TAMPERED' },
      { field: 'key commitment', at: 41, code: 'TAMPERED' },
      { field: 'key ID', at: 59 + Math.floor(k / 2), code: 'TAMPERED' },
      { field: 'wrapped data key', at: 61 + k + Math.floor(w / 2), code: 'TAMPERED' },
      { field: 'first record', at: start, code: 'TAMPERED' },
      { field: 'records', at: Math.floor((start + indexOffset) / 2), code: 'TAMPERED' },
      { field: 'sealed index', at: indexOffset + Math.floor(indexLength / 2), code: 'TAMPERED' },
      { field: 'trailer index offset', at: n - 17, code: 'CORRUPT' },
      { field: 'trailer index length', at: n - 9, code: 'CORRUPT' },
      { field: 'trailer magic', at: n - 1, code: 'CORRUPT' },
    ];
  }
  return [];
}

/**
 * What an unencrypted store would hold: the secrets, every object ID (hex and binary), and every
 * object's content raw and as git compresses it (zlib, as in a pack entry and as a loose object).
 */
function plaintextNeedles(sb: Sandbox, src: string): Array<[string, Buffer]> {
  const needles: Array<[string, Buffer]> = [
    ...Object.entries(SECRETS).map(([k, v]) => [k, Buffer.from(v)] as [string, Buffer]),
    ['short branch name', Buffer.from('secret-branch-name-qwerty')],
  ];
  for (const oid of sb.objects(src)) {
    const type = sb.git(src, 'cat-file', '-t', oid).trim();
    const raw = spawnSync('git', ['cat-file', type, oid], { cwd: src, env: sb.env }).stdout;
    needles.push([`object ID ${oid} (hex)`, Buffer.from(oid)], [`object ID ${oid} (binary)`, Buffer.from(oid, 'hex')]);
    if (raw.length >= 8) needles.push([`${type} ${oid} content`, raw]);
    needles.push([`${type} ${oid} compressed`, deflateSync(raw)], [`${type} ${oid} as a loose object`, deflateSync(Buffer.concat([Buffer.from(`${type} ${raw.length}\0`), raw]))]);
  }
  return needles;
}

/**
 * Every complete zlib stream (valid header, inflates to its end, Adler-32 checksum matches) that
 * starts at any offset: git compresses each object so, in packs and as loose objects. A random
 * offset of ciphertext passes the header, the whole inflate and the 32-bit checksum by chance
 * far too rarely to matter.
 */
function inflatableStreams(bytes: Buffer): Array<{ offset: number; inflated: Buffer }> {
  const out: Array<{ offset: number; inflated: Buffer }> = [];
  for (let i = 0; i + 6 <= bytes.length; i++) {
    const cmf = bytes[i];
    if ((cmf & 0x0f) !== 8 || cmf >> 4 > 7 || ((cmf << 8) | bytes[i + 1]) % 31 !== 0) continue;
    try {
      out.push({ offset: i, inflated: inflateSync(bytes.subarray(i)) });
    } catch {
      // not a stream
    }
  }
  return out;
}

/**
 * Runs a git command that must fail with exactly one `fatal: kmscrypt:` line, its helper having
 * failed with `code` (recorded through KMSCRYPT_STATS: git reports every helper failure alike).
 */
/** The git command fails with one kmscrypt line, the helper's error `code`, and (if given) a line naming `cause`. */
function failsWith(tt: Test, sb: Sandbox, cwd: string, args: string[], label: string, code: ErrorCode, cause?: RegExp): void {
  const stats = sb.path(`stats-${Math.random().toString(36).slice(2)}.jsonl`);
  const r = sb.run('git', args, { cwd, expectFailure: true, env: { KMSCRYPT_STATS: stats } });
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
  tt.equal(lines.length, 1, `${label}: one kmscrypt error line`, { stderr: r.stderr });
  tt.same(helperErrorCodes(stats), [code], `${label}: refused with ${code}`, { stderr: r.stderr });
  if (cause) tt.match(lines[0] ?? '', cause, `${label}: the line names what was found`);
}

/** The error codes the helpers of one git command recorded in their KMSCRYPT_STATS file. */
function helperErrorCodes(statsFile: string): string[] {
  let text = '';
  try {
    text = readFileSync(statsFile, 'utf8');
  } catch {
    return [];
  }
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { errorCode?: string }).errorCode ?? 'no error');
}
