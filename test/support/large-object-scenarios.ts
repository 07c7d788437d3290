import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { scenarioSandbox } from './git-scenarios';
import { GCM_LIMIT } from '../../src/format/constants';
import { openContainer } from '../../src/remote/container-reader';
import { RemoteRepository } from '../../src/remote/remote-repository';
import type { TamperBackend } from './tamper-scenarios';

interface Stats {
  maxRssKiB: number;
}

/**
 * The memory bound is checked by scale: the same push and clone with a 40 MiB and a 136 MiB file.
 * A helper that streams large objects peaks at about the same RSS for both (measured: within a few
 * MiB; the peak stops growing once its stream buffers are full, about 90 MiB); one that holds an
 * object in memory grows by at least the 96 MiB difference. `npm run bench` pushes and clones a
 * 1.5 GiB file.
 */
const SMALLER = 40 << 20;
const LARGER = 136 << 20;
/** Half the size difference: what the peak RSS may grow from the smaller file to the larger. */
const MAX_GROWTH_KIB = (LARGER - SMALLER) / 2 / 1024;
const RSS_LIMIT_KIB = 256 * 1024;

/** Objects from 6 MiB up are sealed with AES-256-CBC + HMAC and streamed with bounded memory. */
export function largeObjectScenarios(t: Test, backend: TamperBackend): void {
  t.test('objects of 6 MiB - 1, 6 MiB and 6 MiB + 1 bytes round-trip', async (tt) => {
    const sb = scenarioSandbox(tt, backend);
    const store = await backend.newStore(sb, 'boundary');
    const src = sb.repo('src');
    const files = { 'below.bin': randomBytes(GCM_LIMIT - 1), 'at.bin': randomBytes(GCM_LIMIT), 'above.bin': randomBytes(GCM_LIMIT + 1) };
    sb.commit(src, files, 'three sizes around the suite boundary');
    sb.git(src, 'push', '-q', store.url, 'main');
    sb.run('git', ['clone', '-q', store.url, sb.path('clone')]);
    for (const [name, bytes] of Object.entries(files)) tt.ok(readFileSync(join(sb.path('clone'), name)).equals(bytes), `${name} (${bytes.length} bytes) identical`);
    const repo = (await RemoteRepository.open(backend.remoteConfig(sb, store)))!;
    const { index } = await openContainer(repo, (await repo.latest()).manifest!.containers[0]);
    const bySize = new Map<number, number>();
    for (let i = 0; i < index.count; i++) bySize.set(index.sizes[i], i);
    // Below 6 MiB: AES-GCM, here a segment of its own (payload + one 16-byte tag). From 6 MiB:
    // a CBC record (IV + whole 16-byte blocks + 32-byte MAC), outside any segment.
    const below = bySize.get(GCM_LIMIT - 1)!;
    tt.ok(index.inSegment(below) && index.unitFirst[below] === below && index.unitLast(below) === below, '6 MiB - 1: a GCM segment of its own');
    tt.equal(index.payloadLength(below), index.lengths[below] - 16, '6 MiB - 1: one tag');
    for (const size of [GCM_LIMIT, GCM_LIMIT + 1]) {
      const i = bySize.get(size)!;
      tt.notOk(index.inSegment(i), `${size} bytes: not in a segment`);
      tt.equal((index.lengths[i] - 16 - 32) % 16, 0, `${size} bytes: CBC + HMAC record layout`);
    }
  });

  t.test(`files of ${SMALLER >> 20} and ${LARGER >> 20} MiB: the helper's peak memory does not grow with the object`, async (tt) => {
    const sb = scenarioSandbox(tt, backend);
    const peaks = new Map<number, { push: number; clone: number }>();
    for (const size of [SMALLER, LARGER]) {
      const stats = sb.path(`stats-${size}.jsonl`);
      const store = await backend.newStore(sb, `large-${size >> 20}`);
      const src = sb.repo(`src-${size >> 20}`);
      // Random bytes do not compress: git need not try (the helper's work is the same).
      sb.git(src, 'config', 'core.compression', '0');
      const blob = randomBytes(size);
      sb.commit(src, { 'data/model.bin': blob, 'README': 'model\n' }, 'a large file');
      sb.run('git', ['push', '-q', store.url, 'main'], { cwd: src, env: { KMSCRYPT_STATS: stats } });
      const clone = sb.path(`clone-${size >> 20}`);
      sb.run('git', ['clone', '-q', store.url, clone], { env: { KMSCRYPT_STATS: stats } });
      tt.ok(readFileSync(join(clone, 'data/model.bin')).equals(blob), `${size >> 20} MiB: the file is identical`);
      rmSync(clone, { recursive: true, force: true });
      const lines = readFileSync(stats, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Stats);
      tt.equal(lines.length, 2, `${size >> 20} MiB: push and clone each ran one helper`);
      peaks.set(size, { push: lines[0].maxRssKiB, clone: lines[1].maxRssKiB });
      for (const l of lines) tt.ok(l.maxRssKiB < RSS_LIMIT_KIB, `${size >> 20} MiB: helper peak RSS ${Math.round(l.maxRssKiB / 1024)} MiB < 256 MiB`);
    }
    for (const op of ['push', 'clone'] as const) {
      const growth = peaks.get(LARGER)![op] - peaks.get(SMALLER)![op];
      tt.ok(growth < MAX_GROWTH_KIB, `${op}: peak RSS grew by ${Math.round(growth / 1024)} MiB from the ${SMALLER >> 20} to the ${LARGER >> 20} MiB file (must stay under ${MAX_GROWTH_KIB >> 10} MiB)`);
    }
  });

  t.test('a flipped byte in a large object\'s ciphertext or MAC stops the fetch before git sees it', async (tt) => {
    const sb = scenarioSandbox(tt, backend);
    const store = await backend.newStore(sb, 'tamper-large');
    const src = sb.repo('src');
    sb.commit(src, { 'big.bin': randomBytes(20 << 20) }, 'big');
    sb.git(src, 'push', '-q', store.url, 'main');
    const repo = (await RemoteRepository.open(backend.remoteConfig(sb, store)))!;
    const ref = (await repo.latest()).manifest!.containers[0];
    const { index } = await openContainer(repo, ref);
    let big = 0;
    for (let i = 1; i < index.count; i++) if (index.lengths[i] > index.lengths[big]) big = i;
    const key = `containers/${ref.id}`;
    const original = await store.read(key);
    const start = index.offsets[big];
    const end = start + index.lengths[big];
    for (const [label, pos] of [['IV', start + 3], ['ciphertext', start + Math.floor((end - start) / 2)], ['MAC', end - 5]] as Array<[string, number]>) {
      const bad = Buffer.from(original);
      bad[pos] ^= 0x80;
      await store.write(key, bad);
      const dst = sb.path(`dst-${label}`);
      sb.run('git', ['init', '-q', '--bare', dst]);
      const r = sb.run('git', ['fetch', store.url, 'refs/heads/*:refs/heads/*'], { cwd: dst, expectFailure: true });
      tt.match(r.stderr, /fatal: kmscrypt: object [0-9a-f]+ in container [0-9a-f]+ failed authentication/, `${label}: one line naming the object`);
      tt.equal(sb.git(dst, 'count-objects', '-v').match(/^in-pack: (\d+)/m)?.[1], '0', `${label}: git stored nothing`);
      tt.equal(sb.git(dst, 'for-each-ref').trim(), '', `${label}: no ref`);
    }
    await store.write(key, original);
  });
}

/** Local store only: writing a 2 GiB file is slow enough without doing it twice. */
export function tooLargeScenario(t: Test, backend: TamperBackend): void {
  t.test('an object over 2 GiB is refused with one line naming its path and size; nothing is stored', async (tt) => {
    const sb = scenarioSandbox(tt, backend);
    const store = await backend.newStore(sb, 'huge');
    const src = sb.repo('src');
    sb.commit(src, { 'small.txt': 'small\n' }, 'small');
    sb.git(src, 'push', '-q', store.url, 'main');
    const before = await store.keys();
    writeFileSync(join(src, 'huge.bin'), '');
    sb.run('truncate', ['-s', String(2 * 2 ** 30 + 1), join(src, 'huge.bin')]);
    sb.git(src, 'add', 'huge.bin');
    sb.git(src, 'commit', '-q', '-m', 'too large');
    const r = sb.run('git', ['push', store.url, 'main'], { cwd: src, expectFailure: true });
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
    tt.equal(lines.length, 1, 'one line');
    tt.match(lines[0], /huge\.bin \(object [0-9a-f]+\) is 2147483649 bytes .* over the 2 GiB single-object limit; nothing was stored/);
    tt.same(await store.keys(), before, 'the store is unchanged');
  });
}
