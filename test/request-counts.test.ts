import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { OBJ_BLOB } from '../src/git/pack-format';
import { openContainer } from '../src/remote/container-reader';
import { RemoteObjects } from '../src/remote/remote-objects';
import { RemoteRepository } from '../src/remote/remote-repository';
import { Sandbox } from './support/sandbox';
import { s3Backend } from './support/s3-backend';

interface StatsLine {
  outcome: string;
  storage: Record<string, number>;
  kms: Record<string, number>;
}

/** A helper's storage counts as KMSCRYPT_STATS records them: every kind, zero unless given, and the total. */
function requests(counts: {
  get?: number;
  list?: number;
  put?: number;
  head?: number;
  delete?: number;
  createMultipart?: number;
  uploadPart?: number;
  completeMultipart?: number;
}) {
  const all = { get: 0, list: 0, put: 0, head: 0, delete: 0, createMultipart: 0, uploadPart: 0, completeMultipart: 0, abortMultipart: 0, other: 0, ...counts };
  return { ...all, total: Object.values(all).reduce((n, v) => n + v, 0) };
}

/**
 * Exact S3 request and KMS call counts, read from KMSCRYPT_STATS: an incremental push or fetch
 * of one commit costs the same however long the history and however many refs, and a clone
 * unwraps each distinct data key once.
 */
t.test('request counts over S3 with the AWS KMS provider', async (t) => {
  const backend = await s3Backend();
  const sb = new Sandbox(t, backend.env);
  const statsFile = sb.path('stats.jsonl');
  const measured = (fn: () => void): StatsLine[] => {
    writeFileSync(statsFile, '');
    fn();
    return readFileSync(statsFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as StatsLine);
  };
  const env = { KMSCRYPT_STATS: statsFile };

  /** A remote with `pushes` pushes and `refs` branches, and a clone of it. */
  const world = async (name: string, pushes: number, refs: number) => {
    const store = await backend.newStore(sb, name);
    const src = sb.repo(`${name}-src`);
    sb.git(src, 'remote', 'add', 'origin', store.url);
    for (let i = 0; i < pushes; i++) {
      for (let j = 0; j < 5; j++) sb.commit(src, { [`f${j}.txt`]: `${name} ${i} ${j}\n` }, `${name} commit ${i}.${j}`);
      sb.git(src, 'push', '-q', 'origin', 'main');
    }
    const lines = Array.from({ length: refs }, (_, i) => `create refs/heads/topic-${i} HEAD`).join('\n');
    if (refs) {
      sb.run('git', ['update-ref', '--stdin'], { cwd: src, input: lines + '\n' });
      sb.git(src, 'push', '-q', 'origin', '--all');
    }
    const clone = sb.path(`${name}-clone`);
    const cloneStats = measured(() => sb.run('git', ['clone', '-q', '--mirror', store.url, clone], { env }));
    return { src, clone, cloneStats, pushes: pushes + (refs ? 1 : 0) };
  };

  const small = await world('small', 1, 0);
  const large = await world('large', 12, 300);

  t.test('a clone makes one Decrypt per distinct wrapped data key (one per push)', async (t) => {
    for (const w of [small, large]) {
      t.equal(w.cloneStats.length, 1, 'one helper process');
      t.equal(w.cloneStats[0].kms.decrypt, w.pushes, `${w.pushes} pushes, ${w.pushes} Decrypt calls`);
      t.equal(w.cloneStats[0].kms.generateDataKey, 0, 'a clone generates no data key');
    }
  });

  const incremental = (w: typeof small) => {
    sb.commit(w.src, { 'next.txt': `${Math.random()}\n` }, 'one more commit');
    const push = measured(() => sb.run('git', ['push', '-q', 'origin', 'main'], { cwd: w.src, env }));
    const fetch = measured(() => sb.run('git', ['fetch', '-q', 'origin'], { cwd: w.clone, env }));
    return { push: push[0], fetch: fetch[0] };
  };
  const a = incremental(small);
  const b = incremental(large);

  t.test('pushing one commit: the same small number of requests and exactly one GenerateDataKey', async (t) => {
    const expected = requests({ get: 2, list: 1, put: 2 });
    t.same(a.push.storage, expected, '1 push, 1 ref: descriptor + list + manifest read, container + manifest written');
    t.same(b.push.storage, expected, '13 pushes, 301 refs: the same');
    for (const s of [a.push, b.push]) {
      t.equal(s.kms.generateDataKey, 1, 'exactly one GenerateDataKey');
      t.equal(s.kms.decrypt, 1, 'one Decrypt, for the manifest');
    }
  });

  t.test('fetching one commit: the same small number of requests whatever the history', async (t) => {
    const expected = requests({ get: 4, list: 1 });
    t.same(a.fetch.storage, expected, 'descriptor, list, manifest, the new index, its records');
    t.same(b.fetch.storage, expected, 'the same with a long history and 301 refs');
    for (const s of [a.fetch, b.fetch]) t.equal(s.kms.decrypt, 1, 'the new manifest and the new container share one data key');
  });

  t.test('ls-remote and a fetch with nothing new: no KMS call for the manifest this clone already opened', async (t) => {
    const none = requests({ get: 2, list: 1 });
    const refsOf = (repo: string) => sb.git(repo, 'for-each-ref', '--format=%(objectname) %(refname)', 'refs/heads/');
    for (const w of [small, large]) {
      let listed = '';
      const ls = measured(() => (listed = sb.run('git', ['ls-remote', '--heads', 'origin'], { cwd: w.clone, env }).stdout));
      const noop = measured(() => sb.run('git', ['fetch', '-q', 'origin'], { cwd: w.clone, env }));
      for (const [what, s] of [
        ['ls-remote', ls[0]],
        ['no-op fetch', noop[0]],
      ] as const) {
        t.same(s.storage, none, `${what}: descriptor, list, manifest (read and hashed)`);
        t.equal(s.kms.decrypt, 0, `${what}: no Decrypt: the stored manifest is byte for byte the one this clone opened`);
      }
      t.equal(
        listed
          .split('\n')
          .filter(Boolean)
          .map((l) => l.replace('\t', ' '))
          .join('\n') + '\n',
        refsOf(w.clone),
        'ls-remote lists the refs the clone has',
      );
    }
    // Another push: the stored manifest is no longer the one kept, so it is opened (one Decrypt) and listed.
    sb.commit(small.src, { 'later.txt': 'later\n' }, 'a later commit');
    sb.git(small.src, 'push', '-q', 'origin', 'main');
    let listed = '';
    const after = measured(() => (listed = sb.run('git', ['ls-remote', 'origin', 'refs/heads/main'], { cwd: small.clone, env }).stdout));
    t.equal(after[0].kms.decrypt, 1, 'a new manifest: one Decrypt');
    t.equal(listed.split('\t')[0], sb.git(small.src, 'rev-parse', 'main').trim(), 'the new commit is listed');
  });
});

/**
 * A blobless clone reads the indexes and the records of commits and trees only: with the tip
 * tagged, git's pack order puts every commit and tree before the blobs, so those are one ranged
 * GET from the start of the container, and no byte of a blob record is read. A full clone reads
 * every record. Both exact, in requests and in bytes, from the store's own layout.
 */
t.test('a blobless clone over S3 reads the commits and trees, not the blobs', async (t) => {
  const backend = await s3Backend();
  const sb = new Sandbox(t, backend.env);
  const statsFile = sb.path('stats.jsonl');
  /** The one helper process's stats line of `run`. */
  const measured = <T>(what: string, run: () => T): { result: T; stats: StatsLine & { storageBytesRead: number } } => {
    writeFileSync(statsFile, '');
    const result = run();
    const lines = readFileSync(statsFile, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as StatsLine & { storageBytesRead: number });
    t.equal(lines.length, 1, `${what}: one helper process`);
    return { result, stats: lines[0] };
  };
  const env = { KMSCRYPT_STATS: statsFile };
  /** Storage requests of a reader: `get` GETs and the one LIST of the manifests. */
  const reads = (get: number) => requests({ get, list: 1 });
  const store = await backend.newStore(sb, 'blobless');
  const src = sb.repo('blobless-src');
  let bigBytes = 0;
  for (let i = 0; i < 6; i++) {
    const big = randomBytes(300_000 + i);
    bigBytes += big.length;
    sb.commit(src, { [`docs/page-${i}.md`]: `page ${i}\n`, 'src/main.c': `int version = ${i};\n`, [`assets/blob-${i}.bin`]: big }, `version ${i}`);
  }
  sb.git(src, 'tag', '-a', 'v6', '-m', 'six');
  sb.git(src, 'push', '-q', store.url, 'main', 'v6');

  const repo = (await RemoteRepository.open(backend.remoteConfig(sb, store)))!;
  const { manifest } = await repo.latest();
  t.equal(manifest!.containers.length, 1, 'one push, one container');
  const ref = manifest!.containers[0];
  const opened = await openContainer(repo, ref);
  const types = new RemoteObjects(repo, [opened]);
  const isBlob = (i: number) => types.typeOf(types.at(opened, i)) === OBJ_BLOB;
  const firstBlob = Array.from({ length: opened.index.count }, (_, i) => i).find(isBlob)!;
  t.ok(Array.from({ length: opened.index.count - firstBlob }, (_, k) => firstBlob + k).every(isBlob), 'every record after the first blob is a blob');
  // A segment is read whole: the last commit or tree may share one with the first small blobs.
  const lastNonBlob = opened.index.unitLast(firstBlob - 1);
  const headEnd = opened.index.offsets[lastNonBlob] + opened.index.lengths[lastNonBlob];
  const fixed =
    (await store.read('kmscrypt.json')).length +
    (await store.read(`manifests/${String(manifest!.generation).padStart(20, '0')}`)).length +
    ref.indexLength +
    24;

  const full = measured('full clone', () => sb.run('git', ['clone', '-q', '--bare', store.url, sb.path('full.git')], { env })).stats;
  const parts = Math.ceil(ref.indexOffset / (4 << 20));
  t.same(full.storage, reads(3 + parts), `full clone: descriptor, list, manifest, index, the records in ${parts} ranged GETs`);
  t.equal(full.storageBytesRead, fixed + ref.indexOffset, 'full clone: every byte of the container');

  const blobless = measured('blobless clone', () =>
    sb.run('git', ['clone', '-q', '--bare', '--filter=blob:none', store.url, sb.path('blobless.git')], { env }),
  ).stats;
  t.same(blobless.storage, reads(4), 'blobless clone: descriptor, list, manifest, index, one ranged GET of the commits and trees');
  t.equal(blobless.storageBytesRead, fixed + headEnd, 'blobless clone: the container up to its last commit or tree');
  t.ok(full.storageBytesRead - blobless.storageBytesRead >= bigBytes, `the ${bigBytes} bytes of the large blobs were not read`);
  t.equal(blobless.kms.decrypt, 1, 'one Decrypt: one data key');
  t.ok(
    blobless.storageBytesRead * 10 < full.storageBytesRead,
    `a small fraction of the stored bytes: ${blobless.storageBytesRead} of ${full.storageBytesRead} (${((100 * blobless.storageBytesRead) / full.storageBytesRead).toFixed(1)}%)`,
  );

  // A lazy fetch of one missing blob: found in the index, and only its unit (its record, or the
  // segment that holds it, authenticated whole) is read.
  const blob = sb.git(src, 'rev-parse', 'main:assets/blob-5.bin').trim();
  const record = opened.index.find(blob)!;
  const unitFirst = opened.index.unitFirst[record];
  const unitLast = opened.index.unitLast(record);
  const unitBytes = opened.index.offsets[unitLast] + opened.index.lengths[unitLast] - opened.index.offsets[unitFirst];
  t.ok(unitBytes < 2 * 300_005, `the blob's unit, ${unitBytes} bytes, holds little besides it`);
  const catBlob = (cwd: string) => execFileSync('git', ['cat-file', 'blob', blob], { cwd, env: { ...sb.env, ...env }, maxBuffer: 16 << 20 });
  const lazy = measured('git cat-file of a missing blob', () => catBlob(sb.path('blobless.git')));
  t.ok(lazy.result.equals(catBlob(src)), 'git cat-file fetched the blob on demand');
  t.same(lazy.stats.storage, reads(4), 'lazy fetch: descriptor, list, manifest, index, one ranged GET of the record');
  t.equal(lazy.stats.storageBytesRead, fixed + unitBytes, "lazy fetch: the indexes and that blob's unit");
  t.equal(lazy.stats.kms.decrypt, 1, 'lazy fetch: one Decrypt');
});

/**
 * A clone that skipped generations proves that the newest manifest descends from the one it saw by
 * the hash chain (docs/FORMAT.md §9.1): each manifest in between is read once, and no KMS call is
 * made for it. A fetch of k pushes: descriptor, list, the newest manifest, the k − 1 manifests in
 * between, and each new container's index and records; one Decrypt per new container's data key.
 */
t.test('request counts of a fetch after a gap of six pushes: the manifests between are read, KMS is not asked', async (t) => {
  const backend = await s3Backend();
  const sb = new Sandbox(t, backend.env);
  const statsFile = sb.path('stats.jsonl');
  const store = await backend.newStore(sb, 'gap');
  const src = sb.repo('src');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  sb.commit(src, { 'f.txt': 'start\n' }, 'start');
  sb.git(src, 'push', '-q', 'origin', 'main');
  const clone = sb.path('clone');
  sb.run('git', ['clone', '-q', store.url, clone]);
  const k = 6;
  for (let i = 0; i < k; i++) {
    sb.commit(src, { 'f.txt': `push ${i}\n` }, `push ${i}`);
    sb.git(src, 'push', '-q', 'origin', 'main');
  }
  writeFileSync(statsFile, '');
  sb.run('git', ['fetch', '-q', 'origin'], { cwd: clone, env: { KMSCRYPT_STATS: statsFile } });
  const [stats] = readFileSync(statsFile, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as StatsLine);
  t.same(
    { get: stats.storage.get, list: stats.storage.list, total: stats.storage.total },
    { get: 3 * k + 1, list: 1, total: 3 * k + 2 },
    `${k - 1} manifests read to prove continuity, and ${k} containers' index and records`,
  );
  t.equal(stats.kms.decrypt, k, 'one Decrypt per new data key: none for the chain');
  t.equal(sb.git(clone, 'rev-parse', 'origin/main').trim(), sb.git(src, 'rev-parse', 'HEAD').trim());
});

/**
 * Tail merging (src/remote/tail-merge.ts) over S3: the push that makes the 16th container merges
 * the newest 16 into one, so a clone after n one-commit pushes opens O(log n) containers, not n.
 * Its cost is exact and paid by that one push; a clone up to date before the merge fetches the
 * next commit as always, and a fresh clone unwraps one data key for the 16 pushes.
 */
t.test('request counts around a tail merge: the 16th push merges, a fresh clone unwraps one data key for 16 pushes', async (t) => {
  const backend = await s3Backend();
  const sb = new Sandbox(t, backend.env);
  const statsFile = sb.path('stats.jsonl');
  const measured = (fn: () => void): StatsLine => {
    writeFileSync(statsFile, '');
    fn();
    const lines = readFileSync(statsFile, 'utf8').split('\n').filter(Boolean);
    t.equal(lines.length, 1, 'one helper process');
    return JSON.parse(lines[0]) as StatsLine;
  };
  const env = { KMSCRYPT_STATS: statsFile };
  const store = await backend.newStore(sb, 'merge');
  const src = sb.repo('src');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  const pushOne = (i: number) => {
    sb.commit(src, { 'f.txt': `push ${i}\n` }, `push ${i}`);
    return measured(() => sb.run('git', ['push', '-q', 'origin', 'main'], { cwd: src, env }));
  };
  for (let i = 1; i < 15; i++) pushOne(i);
  const upToDate = sb.path('up-to-date');
  sb.run('git', ['clone', '-q', store.url, upToDate]);
  t.equal(pushOne(15).storage.total, 5, 'the 15th push: an ordinary one');

  const merging = pushOne(16);
  t.same(
    merging.storage,
    requests({ get: 34, list: 1, put: 4 }),
    "the 16th push: its own 5 requests, then each of the 16 containers' index and records read, the merged container and its manifest written",
  );
  t.same(
    { generateDataKey: merging.kms.generateDataKey, decrypt: merging.kms.decrypt },
    { generateDataKey: 2, decrypt: 16 },
    "one data key for the push and one for the merge; Decrypt: the manifest read, and the key of each merged container but the push's own (15)",
  );

  const fetched = measured(() => sb.run('git', ['fetch', '-q', 'origin'], { cwd: upToDate, env }));
  t.equal(
    fetched.storage.total,
    7,
    'the clone that had 14 of the 16: descriptor, list, the three manifests since (two pushes, the merge), the merged index and its records',
  );
  t.equal(sb.git(upToDate, 'rev-parse', 'origin/main').trim(), sb.git(src, 'rev-parse', 'HEAD').trim());
  t.equal(pushOne(17).storage.total, 5, 'the 17th push: an ordinary one again');

  const fresh = sb.path('fresh');
  const cloned = measured(() => sb.run('git', ['clone', '-q', '--mirror', store.url, fresh], { env }));
  t.equal(cloned.kms.decrypt, 2, 'a fresh clone: one Decrypt for the merged container of 16 pushes, one for the 17th');
  t.equal(sb.git(fresh, 'rev-list', '--count', 'main').trim(), '17');
});
