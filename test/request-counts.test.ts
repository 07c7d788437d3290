import { readFileSync, writeFileSync } from 'node:fs';
import t from 'tap';
import { Sandbox } from './support/sandbox';
import { s3Backend } from './support/s3-backend';

interface StatsLine {
  outcome: string;
  storage: Record<string, number>;
  kms: Record<string, number>;
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
    return readFileSync(statsFile, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as StatsLine);
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
    const expected = { get: 2, list: 1, put: 2, head: 0, delete: 0, createMultipart: 0, uploadPart: 0, completeMultipart: 0, abortMultipart: 0, other: 0, total: 5 };
    t.same(a.push.storage, expected, '1 push, 1 ref: descriptor + list + manifest read, container + manifest written');
    t.same(b.push.storage, expected, '13 pushes, 301 refs: the same');
    for (const s of [a.push, b.push]) {
      t.equal(s.kms.generateDataKey, 1, 'exactly one GenerateDataKey');
      t.equal(s.kms.decrypt, 1, 'one Decrypt, for the manifest');
    }
  });

  t.test('fetching one commit: the same small number of requests whatever the history', async (t) => {
    const expected = { get: 4, list: 1, put: 0, head: 0, delete: 0, createMultipart: 0, uploadPart: 0, completeMultipart: 0, abortMultipart: 0, other: 0, total: 5 };
    t.same(a.fetch.storage, expected, 'descriptor, list, manifest, the new index, its records');
    t.same(b.fetch.storage, expected, 'the same with a long history and 301 refs');
    for (const s of [a.fetch, b.fetch]) t.equal(s.kms.decrypt, 1, 'the new manifest and the new container share one data key');
  });
});
