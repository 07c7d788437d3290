/**
 * git deltas (src/git/delta.ts) of a real pack written by `git repack`, applied to their bases,
 * against the objects `git cat-file` gives.
 */
import t from 'tap';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { applyDelta } from '../src/git/delta';
import { OBJ_OFS_DELTA, OBJ_REF_DELTA, parseEntryHeader } from '../src/git/pack-format';
import { scratchGit } from './support/scratch-git';

t.test("the deltas of a real pack rebuild git's objects", async (t) => {
  const scratch = scratchGit(t, 'delta');
  const dir = scratch.dir;
  const git = (args: string[]) => scratch.run(args);
  git(['init', '-q', '-b', 'main']);
  const lines = Array.from({ length: 3000 }, (_, i) => `line ${i} of a file that changes a little each time\n`);
  for (let v = 0; v < 6; v++) {
    lines[v * 400] = `version ${v} changed this line\n`;
    writeFileSync(join(dir, 'file.txt'), lines.join(''));
    git(['add', '.']);
    git(['commit', '-q', '-m', `v${v}`]);
  }
  git(['repack', '-a', '-d', '-f', '-q']);
  const packDir = join(dir, '.git', 'objects', 'pack');
  const pack = readFileSync(
    join(
      packDir,
      readdirSync(packDir).find((f) => f.endsWith('.pack'))!,
    ),
  );
  const verify = git([
    'verify-pack',
    '-v',
    join(
      packDir,
      readdirSync(packDir).find((f) => f.endsWith('.idx'))!,
    ),
  ]).toString();
  // "<oid> <type> <size> <size-in-pack> <offset> [<depth> <base-oid>]"
  const entries = verify
    .split('\n')
    .map((l) => l.split(/\s+/))
    .filter((f) => /^[0-9a-f]{40}$/.test(f[0]) && f.length >= 5);
  const byOffset = new Map(entries.map((f) => [Number(f[4]), f]));
  const typeOf = new Map(entries.map((f) => [f[0], f[1]]));
  const content = (oid: string) => git(['cat-file', typeOf.get(oid)!, oid]);
  let deltas = 0;
  for (const f of entries) {
    const offset = Number(f[4]);
    const header = parseEntryHeader(pack.subarray(offset, offset + 64), offset, 20);
    if (header.type !== OBJ_OFS_DELTA && header.type !== OBJ_REF_DELTA) continue;
    const data = inflateSync(pack.subarray(offset + header.headerLength, offset + Number(f[3])));
    const baseOid = header.baseOid ? header.baseOid.toString('hex') : byOffset.get(header.baseOffset!)![0];
    t.ok(applyDelta(content(baseOid), data).equals(content(f[0])), `${f[1]} ${f[0]} from ${baseOid}`);
    deltas++;
  }
  t.ok(deltas >= 5, `the pack has deltas (${deltas})`);
});
