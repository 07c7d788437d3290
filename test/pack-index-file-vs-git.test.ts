/**
 * PackIndexFile (src/git/pack-index-file.ts) against `git show-index` for real packs (SHA-1 and
 * SHA-256): every ID, offset and position.
 */
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PackIndexFile } from '../src/git/pack-index-file';
import { scratchGit } from './support/scratch-git';

/** A repository with a few hundred objects, packed; returns the .idx bytes and git's view of it. */
function realPack(t: { teardown(fn: () => void): void }, objectFormat: 'sha1' | 'sha256'): { idx: Buffer; entries: Array<{ offset: number; oid: string }> } {
  const scratch = scratchGit(t, 'idx');
  const dir = scratch.dir;
  const git = (args: string[], input?: string | Buffer) => scratch.text(args, input);
  git(['init', '-q', `--object-format=${objectFormat}`]);
  for (let f = 0; f < 250; f++) writeFileSync(join(dir, `f${f}.txt`), `file ${f}\n`.repeat((f % 7) + 1));
  git(['add', '.']);
  git(['commit', '-q', '-m', 'many files']);
  const name = git(['pack-objects', '-q', '--revs', '--delta-base-offset', join(dir, 'p')], 'HEAD\n').trim();
  const idx = readFileSync(join(dir, `p-${name}.idx`));
  const entries = git(['show-index', `--object-format=${objectFormat}`], idx)
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
    t.same(
      [...file.offsets],
      byOffset.map((e) => e.offset),
      'offsets in pack order',
    );
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
