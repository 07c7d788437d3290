/**
 * git deltas (src/git/delta.ts): hand-made copy and insert instructions, every refusal, and the
 * deltas of a real pack written by `git pack-objects`, applied to their bases, against `git cat-file`.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { applyDelta, parseDeltaHeader } from '../src/git/delta';
import { OBJ_OFS_DELTA, OBJ_REF_DELTA, parseEntryHeader } from '../src/git/pack-format';

/** A delta: base size, result size (little-endian base-128), then the instructions. */
function delta(baseSize: number, resultSize: number, ...ops: number[]): Buffer {
  const varint = (n: number) => {
    const out: number[] = [];
    do {
      out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
      n >>>= 7;
    } while (n > 0);
    return out;
  };
  return Buffer.from([...varint(baseSize), ...varint(resultSize), ...ops]);
}

t.test('copy and insert instructions', async (t) => {
  const base = Buffer.from('hello, world');
  // copy 5 bytes at 0, insert "!!", copy 5 bytes at 7
  const d = delta(12, 12, 0x90, 5, 2, 0x21, 0x21, 0x91, 7, 5);
  t.equal(applyDelta(base, d).toString(), 'hello!!world');
  t.same(parseDeltaHeader(d), { baseSize: 12, resultSize: 12, instructionsAt: 2 });
});

t.test('a copy with offset and length bytes selected by the low bits, and length 0 meaning 0x10000', async (t) => {
  const base = Buffer.alloc(0x30000);
  for (let i = 0; i < base.length; i++) base[i] = i % 251;
  // offset 0x010203 (bytes 0,1,2 set: 0x07), no length byte: 0x10000
  const d = delta(base.length, 0x10000, 0x87, 0x03, 0x02, 0x01);
  t.ok(applyDelta(base, d).equals(base.subarray(0x010203, 0x010203 + 0x10000)));
  // offset byte 1 only (0x02) and length byte 2 only (0x40): offset 0x0100, length 0x010000
  t.ok(applyDelta(base, delta(base.length, 0x10000, 0xc2, 0x01, 0x01)).equals(base.subarray(0x100, 0x10100)));
});

t.test('refusals: base size, result size, reserved instruction, truncation, copies out of range', async (t) => {
  const base = Buffer.from('0123456789');
  t.throws(() => applyDelta(base, delta(9, 1, 0x01, 0x41)), { message: /expects a base of 9 bytes/ });
  t.throws(() => applyDelta(base, delta(10, 2, 0x01, 0x41)), { message: /produced 1 bytes, its header says 2/ });
  t.throws(() => applyDelta(base, delta(10, 1, 0x00)), { message: /reserved instruction/ });
  t.throws(() => applyDelta(base, delta(10, 3, 0x03, 0x41)), { message: /inserts past its end/ });
  t.throws(() => applyDelta(base, delta(10, 5, 0x91, 8)), { message: /truncated delta copy/ });
  t.throws(() => applyDelta(base, delta(10, 5, 0x91, 8, 5)), { message: /outside its base/ });
  t.throws(() => applyDelta(base, delta(10, 3, 0x90, 5)), { message: /outside its base or result/ });
  t.throws(() => parseDeltaHeader(Buffer.from([0x80])), { message: /truncated delta header/ });
});

t.test("the deltas of a real pack rebuild git's objects", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kmscrypt-delta-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const git = (args: string[], input?: string) => {
    const r = spawnSync('git', args, {
      cwd: dir,
      input,
      env: {
        PATH: process.env.PATH,
        HOME: dir,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_AUTHOR_NAME: 'A',
        GIT_AUTHOR_EMAIL: 'a@e',
        GIT_COMMITTER_NAME: 'C',
        GIT_COMMITTER_EMAIL: 'c@e',
      },
    });
    if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };
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
