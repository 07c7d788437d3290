/**
 * PackStream (src/git/pack-stream.ts): entries encoded in place across batch boundaries, a
 * payload larger than a batch, and raw writes between entries, all as one pack that
 * `git index-pack` accepts with every object under its own ID.
 */
import t from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import { deflateSync } from 'node:zlib';
import { encodeEntryHeader, OBJ_BLOB, OBJ_REF_DELTA, packHeader } from '../src/git/pack-format';
import { PackStream } from '../src/git/pack-stream';
import { scratchGit } from './support/scratch-git';

const blobId = (data: Buffer) => createHash('sha1').update(`blob ${data.length}\0`).update(data).digest();

async function packOf(write: (pack: PackStream) => Promise<void>): Promise<Buffer> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  // Copied: PackStream refills a batch buffer once its write has completed, as a pipe to git allows.
  out.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
  const pack = new PackStream(out, 'sha1');
  await write(pack);
  await pack.end();
  return Buffer.concat(chunks);
}

t.test('entries across batches, a payload larger than a batch, and a REF_DELTA: git index-pack stores each object under its ID', async (t) => {
  const git = scratchGit(t, 'pack-stream');
  git.run(['init', '-q', '--bare', '.']);
  // 3,000 blobs of 100-1,000 bytes (about 1.6 MiB: two batch boundaries), then one of 1.5 MiB.
  const blobs = Array.from({ length: 3000 }, (_, i) => randomBytes(100 + ((i * 37) % 900)));
  blobs.push(randomBytes(3 << 19));
  // A delta of the first blob: copy its 100 bytes, then insert 3 new ones.
  const base = blobs[0];
  const delta = Buffer.concat([Buffer.from([100, 103, 0x90, 100, 3]), Buffer.from('new')]);
  const target = Buffer.concat([base, Buffer.from('new')]);

  const bytes = await packOf(async (pack) => {
    await pack.write(packHeader(blobs.length + 1));
    for (const data of blobs) await pack.entry(OBJ_BLOB, data.length, undefined, deflateSync(data));
    await pack.entry(OBJ_REF_DELTA, delta.length, blobId(base), deflateSync(delta));
  });
  const body = bytes.subarray(0, bytes.length - 20);
  t.same(bytes.subarray(bytes.length - 20), createHash('sha1').update(body).digest(), 'the trailer is the hash of everything before it');

  git.run(['index-pack', '--stdin'], bytes);
  const listed = git.text(['cat-file', '--batch-check=%(objectname) %(objectsize)', '--batch-all-objects']).split('\n');
  const expected = [...blobs, target].map((d) => `${blobId(d).toString('hex')} ${d.length}`);
  t.same(listed.sort(), expected.sort(), 'every object, under the ID of its content');
  t.same(git.run(['cat-file', 'blob', blobId(target).toString('hex')]), target, 'the delta resolves to its target');
});

t.test('entry() and write() produce the same bytes', async (t) => {
  const payloads = Array.from({ length: 200 }, (_, i) => randomBytes((i * 7919) % 20000));
  const viaEntry = await packOf(async (pack) => {
    for (const [i, p] of payloads.entries()) await pack.entry(i % 2 ? OBJ_BLOB : OBJ_REF_DELTA, p.length * 3, Buffer.alloc(20, i), p);
  });
  const viaWrite = await packOf(async (pack) => {
    for (const [i, p] of payloads.entries()) {
      await pack.write(encodeEntryHeader(i % 2 ? OBJ_BLOB : OBJ_REF_DELTA, p.length * 3, Buffer.alloc(20, i)));
      await pack.write(p);
    }
  });
  t.same(viaEntry, viaWrite);
});
