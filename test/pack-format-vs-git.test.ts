/**
 * Pack entry headers (src/git/pack-format.ts) read from real packs that `git pack-objects` wrote,
 * with OFS_DELTA and REF_DELTA bases, checked against `git verify-pack` and `git show-index`.
 */
import t from 'tap';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeEntryHeader, OBJ_BLOB, OBJ_COMMIT, OBJ_OFS_DELTA, OBJ_REF_DELTA, OBJ_TAG, OBJ_TREE, parseEntryHeader } from '../src/git/pack-format';
import { scratchGit } from './support/scratch-git';

const TYPES: Record<string, number> = { commit: OBJ_COMMIT, tree: OBJ_TREE, blob: OBJ_BLOB, tag: OBJ_TAG };

t.test('headers of real packs agree with git verify-pack', async (t) => {
  const scratch = scratchGit(t, 'pack-format');
  const dir = scratch.dir;
  const git = (args: string[], input?: string | Buffer) => scratch.text(args, input);
  git(['init', '-q', '-b', 'main']);
  const lines = Array.from({ length: 40000 }, (_, i) => `line ${i} of a text that git will deltify\n`);
  for (let v = 0; v < 4; v++) {
    lines[v * 1000] = `changed in version ${v}\n`;
    writeFileSync(join(dir, 'big.txt'), lines.join(''));
    writeFileSync(join(dir, 'small.txt'), `version ${v}\n`);
    git(['add', '.']);
    git(['commit', '-q', '-m', `version ${v}`]);
  }
  git(['tag', '-a', '-m', 'annotated', 'v1']);

  for (const ofs of [true, false]) {
    const args = ['pack-objects', '-q', '--revs', ...(ofs ? ['--delta-base-offset'] : []), join(dir, ofs ? 'ofs' : 'ref')];
    const name = git(args, 'main\nv1\n');
    const base = join(dir, `${ofs ? 'ofs' : 'ref'}-${name}`);
    const pack = readFileSync(`${base}.pack`);
    const oidAt = new Map<number, string>();
    for (const line of git(['show-index'], readFileSync(`${base}.idx`))
      .trim()
      .split('\n')) {
      const [offset, oid] = line.split(' ');
      oidAt.set(Number(offset), oid);
    }
    let deltas = 0;
    let multiByte = 0;
    const verify = git(['verify-pack', '-v', `${base}.idx`])
      .split('\n')
      .filter((l) => /^[0-9a-f]{40} /.test(l));
    t.ok(verify.length >= 14, `${verify.length} entries`);
    for (const line of verify) {
      const [oid, type, size, , offset, , baseOid] = line.trim().split(/\s+/);
      const off = Number(offset);
      const h = parseEntryHeader(pack.subarray(off, off + 64), off, 20);
      t.equal(h.size, Number(size), `${oid}: size`);
      if (Number(size) >= 16 * 128) multiByte++;
      if (baseOid) {
        deltas++;
        t.equal(h.type, ofs ? OBJ_OFS_DELTA : OBJ_REF_DELTA, `${oid}: delta type`);
        const found = ofs ? oidAt.get(h.baseOffset!) : h.baseOid!.toString('hex');
        t.equal(found, baseOid, `${oid}: delta base`);
        if (!ofs)
          t.same(pack.subarray(off, off + h.headerLength), encodeEntryHeader(OBJ_REF_DELTA, h.size, h.baseOid), `${oid}: header bytes re-encode identically`);
      } else {
        t.equal(h.type, TYPES[type], `${oid}: type`);
        t.same(pack.subarray(off, off + h.headerLength), encodeEntryHeader(h.type, h.size), `${oid}: header bytes re-encode identically`);
      }
    }
    t.ok(deltas > 0, `${ofs ? 'OFS' : 'REF'} pack has deltas (${deltas})`);
    t.ok(multiByte > 0, 'some sizes take several bytes');
    t.ok(readdirSync(dir).some((f) => f.endsWith('.idx')));
  }
});
