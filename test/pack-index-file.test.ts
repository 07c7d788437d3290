/**
 * PackIndexFile (src/git/pack-index-file.ts) against `git show-index` for real packs (SHA-1 and
 * SHA-256), plus a hand-built index for the 64-bit offset table and the refusals.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PackIndexFile } from '../src/git/pack-index-file';

function git(cwd: string, args: string[], input?: string | Buffer): string {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: cwd, GIT_AUTHOR_NAME: 'A', GIT_AUTHOR_EMAIL: 'a@example.com', GIT_COMMITTER_NAME: 'C', GIT_COMMITTER_EMAIL: 'c@example.com' };
  for (const k of Object.keys(env)) if (k.startsWith('GIT_') && !/^GIT_(CONFIG_NOSYSTEM|AUTHOR_|COMMITTER_)/.test(k)) delete env[k];
  const r = spawnSync('git', args, { cwd, env, input, maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout.toString('utf8');
}

/** A repository with a few hundred objects, packed; returns the .idx bytes and git's view of it. */
function realPack(t: { teardown(fn: () => void): void }, objectFormat: 'sha1' | 'sha256'): { idx: Buffer; entries: Array<{ offset: number; oid: string }> } {
  const dir = mkdtempSync(join(tmpdir(), 'kmscrypt-idx-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  git(dir, ['init', '-q', `--object-format=${objectFormat}`]);
  for (let f = 0; f < 250; f++) writeFileSync(join(dir, `f${f}.txt`), `file ${f}\n`.repeat((f % 7) + 1));
  git(dir, ['add', '.']);
  git(dir, ['commit', '-q', '-m', 'many files']);
  const name = git(dir, ['pack-objects', '-q', '--revs', '--delta-base-offset', join(dir, 'p')], 'HEAD\n').trim();
  const idx = readFileSync(join(dir, `p-${name}.idx`));
  const entries = git(dir, ['show-index', `--object-format=${objectFormat}`], idx)
    .trim()
    .split('\n')
    .map((line) => {
      const [offset, oid] = line.split(' ');
      return { offset: Number(offset), oid };
    });
  return { idx, entries };
}

for (const [format, hashLength] of [
  ['sha1', 20],
  ['sha256', 32],
] as const) {
  t.test(`${format}: PackIndexFile agrees with git show-index`, async (t) => {
    const { idx, entries } = realPack(t, format);
    const file = new PackIndexFile(idx, hashLength);
    t.equal(file.count, entries.length, `${entries.length} objects`);
    t.ok(entries.length > 200);
    const byOffset = [...entries].sort((a, b) => a.offset - b.offset);
    t.same([...file.offsets], byOffset.map((e) => e.offset), 'offsets in pack order');
    let mismatches = 0;
    byOffset.forEach((e, k) => {
      if (file.oid(k).toString('hex') !== e.oid) mismatches++;
      if (file.positionOf(Buffer.from(e.oid, 'hex')) !== k) mismatches++;
      if (file.positionAtOffset(e.offset) !== k) mismatches++;
      if (file.positionAtOffset(e.offset + 1) !== -1 && byOffset[k + 1]?.offset !== e.offset + 1) mismatches++;
    });
    t.equal(mismatches, 0, 'oid(k), positionOf and positionAtOffset agree with git for every entry');
    t.equal(file.positionOf(Buffer.alloc(hashLength, 0)), -1, 'an absent ID (all zeros)');
    t.equal(file.positionOf(Buffer.alloc(hashLength, 0xff)), -1, 'an absent ID (all ones)');
    const near = Buffer.from(entries[0].oid, 'hex');
    near[hashLength - 1] ^= 1;
    if (!entries.some((e) => e.oid === near.toString('hex'))) t.equal(file.positionOf(near), -1, 'an absent ID next to a present one');
    t.equal(file.positionAtOffset(0), -1, 'no entry at offset 0');
  });
}

/** A version 2 index built by hand: names sorted, with one offset in the 64-bit table. */
function handIndex(items: Array<{ oid: Buffer; offset: number }>, hashLength: number): Buffer {
  const sorted = [...items].sort((a, b) => Buffer.compare(a.oid, b.oid));
  const fanout = Buffer.alloc(1024);
  for (let b = 0; b < 256; b++) fanout.writeUInt32BE(sorted.filter((i) => i.oid[0] <= b).length, b * 4);
  const small = Buffer.alloc(sorted.length * 4);
  const large: Buffer[] = [];
  sorted.forEach((item, i) => {
    if (item.offset < 0x80000000) small.writeUInt32BE(item.offset, i * 4);
    else {
      small.writeUInt32BE(0x80000000 + large.length, i * 4);
      const l = Buffer.alloc(8);
      l.writeBigUInt64BE(BigInt(item.offset));
      large.push(l);
    }
  });
  return Buffer.concat([
    Buffer.from('ff744f6300000002', 'hex'),
    fanout,
    ...sorted.map((i) => i.oid),
    Buffer.alloc(sorted.length * 4),
    small,
    ...large,
    Buffer.alloc(2 * hashLength),
  ]);
}

t.test('offsets beyond 2 GiB come from the 64-bit table', async (t) => {
  const items = [
    { oid: Buffer.alloc(20, 0xc0), offset: 12 },
    { oid: Buffer.alloc(20, 0x10), offset: 2 ** 33 + 7 },
    { oid: Buffer.alloc(20, 0x80), offset: 0x7fffffff },
    { oid: Buffer.alloc(20, 0x20), offset: 2 ** 31 },
  ];
  const file = new PackIndexFile(handIndex(items, 20), 20);
  t.same([...file.offsets], [12, 0x7fffffff, 2 ** 31, 2 ** 33 + 7]);
  t.same(file.oid(3), Buffer.alloc(20, 0x10));
  t.equal(file.positionOf(Buffer.alloc(20, 0x10)), 3);
  t.equal(file.positionOf(Buffer.alloc(20, 0x20)), 2);
  t.equal(file.positionAtOffset(2 ** 33 + 7), 3);
});

t.test('IDs that share their first four bytes are told apart by the whole name', async (t) => {
  const id = (tail: number) => {
    const oid = Buffer.alloc(20, 0x5a);
    oid[19] = tail;
    return oid;
  };
  const items = [1, 3, 5, 7, 9].map((tail, k) => ({ oid: id(tail), offset: 12 + 100 * k }));
  const file = new PackIndexFile(handIndex(items, 20), 20);
  for (const [k, item] of items.entries()) {
    t.equal(file.positionOf(item.oid), k, `present ...${item.oid[19]}`);
    t.ok(file.has(item.oid));
  }
  for (const tail of [0, 2, 4, 6, 8, 10]) {
    t.equal(file.positionOf(id(tail)), -1, `absent ...${tail} between present ones`);
    t.notOk(file.has(id(tail)));
  }
});

t.test('refusals', async (t) => {
  const good = handIndex([{ oid: Buffer.alloc(20, 1), offset: 12 }], 20);
  t.doesNotThrow(() => new PackIndexFile(good, 20));
  t.throws(() => new PackIndexFile(good.subarray(0, 1000), 20), { name: 'RangeError', message: 'not a version 2 pack index' }, 'shorter than a fan-out table');
  const v1 = Buffer.from(good);
  v1.writeUInt32BE(1, 4);
  t.throws(() => new PackIndexFile(v1, 20), { message: 'not a version 2 pack index' }, 'version 1');
  const noMagic = Buffer.from(good);
  noMagic[0] = 0;
  t.throws(() => new PackIndexFile(noMagic, 20), { message: 'not a version 2 pack index' }, 'no magic');
  t.throws(() => new PackIndexFile(good.subarray(0, good.length - 1), 20), { message: 'truncated pack index' }, 'one byte short');
  const lying = Buffer.from(good);
  lying.writeUInt32BE(1000, 8 + 255 * 4);
  t.throws(() => new PackIndexFile(lying, 20), { message: 'truncated pack index' }, 'a count larger than the file');
});
