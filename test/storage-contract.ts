import type { Test } from 'tap';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { isKmscryptError, KmscryptError } from '../src/errors';
import { BufferedFileWriter } from '../src/remote/file-io';
import type { Storage } from '../src/storage/storage';

/** A fresh, empty storage for one subtest. */
export type MakeStorage = (t: Test) => Promise<Storage>;

const MiB = 1 << 20;
/** A cap no object of these tests reaches. */
export const ANY_SIZE = { maxBytes: 1 << 30, what: 'test object' };

export async function rejection(p: Promise<unknown>): Promise<KmscryptError> {
  try {
    await p;
  } catch (err) {
    if (isKmscryptError(err)) return err;
    throw err;
  }
  throw new Error('expected a KmscryptError');
}

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A temporary directory, removed at the end of the test. */
function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'storage-contract-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A temporary file holding `data`, removed at the end of the test. */
export function tempFile(t: Test, data: Buffer): string {
  const file = join(tempDir(t), 'body');
  writeFileSync(file, data);
  return file;
}

async function inPool<T>(items: T[], size: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: size }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

/** What every Storage must do, the same way, for the remote to be correct on it. */
export function storageContract(t: Test, makeStorage: MakeStorage): void {
  t.test('a whole read takes a cap: an object over it is refused before it is read, with one line naming it', async (t) => {
    const s = await makeStorage(t);
    const data = randomBytes(1000);
    await s.put('capped/object', data);
    t.same(await s.get('capped/object', { maxBytes: 1000, what: 'manifest' }), data, 'exactly the cap is read');
    const err = await rejection(s.get('capped/object', { maxBytes: 999, what: 'manifest' }));
    t.equal(err.code, 'TAMPERED');
    t.equal(err.message, `${s.location}/capped/object is 1000 bytes, over the 999-byte limit for a manifest; it was not written by kmscrypt`);
    t.equal(await s.get('capped/missing', { maxBytes: 1, what: 'manifest' }), undefined, 'a missing object is still absent');
  });

  t.test('a missing key reads as absent, and ranged or streamed reads of it fail clearly', async (t) => {
    const s = await makeStorage(t);
    t.equal(await s.get('nope', ANY_SIZE), undefined);
    t.equal(await s.head('nope'), undefined);
    t.same(await s.list(''), []);
    for (const read of [() => s.getRange('nope', { start: 0, end: 1 }), () => s.getRange('nope', { start: 0, end: 0 }), () => s.getStream('nope'), () => s.getStream('nope', { start: 2, end: 5 })]) {
      const err = await rejection(read());
      t.equal(err.code, 'STORAGE');
      t.match(err.message, /nope does not exist/);
      t.notMatch(err.message, /\n/);
    }
  });

  t.test('put then get returns the same bytes; put replaces; head reports size and etag', async (t) => {
    const s = await makeStorage(t);
    const data = randomBytes(1000);
    await s.put('objects/one', data);
    t.same(await s.get('objects/one', ANY_SIZE), data);
    t.same(await readAll(await s.getStream('objects/one')), data);
    const first = await s.head('objects/one');
    t.equal(first?.size, 1000);
    t.equal(first?.key, 'objects/one');
    t.ok(first?.etag, 'an etag');
    await s.put('objects/one', Buffer.from('replaced'));
    t.equal((await s.get('objects/one', ANY_SIZE))?.toString(), 'replaced');
    const second = await s.head('objects/one');
    t.equal(second?.size, 8);
    t.not(second?.etag, first?.etag, 'new content, new etag');
    await s.put('empty', Buffer.alloc(0));
    t.same(await s.get('empty', ANY_SIZE), Buffer.alloc(0), 'an empty object is not a missing one');
    t.equal((await s.head('empty'))?.size, 0);
    t.same(await readAll(await s.getStream('empty')), Buffer.alloc(0));
  });

  t.test('byte ranges: exact bytes, empty ranges, and a clear error past the end', async (t) => {
    const s = await makeStorage(t);
    const data = randomBytes(4096);
    await s.put('r', data);
    t.same(await s.getRange('r', { start: 100, end: 228 }), data.subarray(100, 228));
    t.same(await s.getRange('r', { start: 0, end: 4096 }), data);
    t.same(await s.getRange('r', { start: 4095, end: 4096 }), data.subarray(4095));
    t.same(await s.getRange('r', { start: 4096, end: 4096 }), Buffer.alloc(0), 'an empty range at the end');
    t.same(await readAll(await s.getStream('r', { start: 10, end: 20 })), data.subarray(10, 20));
    t.same(await readAll(await s.getStream('r', { start: 7, end: 7 })), Buffer.alloc(0));
    for (const read of [() => s.getRange('r', { start: 4000, end: 4097 }), () => s.getRange('r', { start: 5000, end: 5001 }), () => s.getRange('r', { start: 4097, end: 4097 }), () => s.getStream('r', { start: 0, end: 4097 })]) {
      const err = await rejection(read());
      t.equal(err.code, 'STORAGE');
      t.match(err.message, /shorter than expected/);
    }
  });

  t.test('bytesRead counts the bytes of every read: whole, ranged and streamed', async (t) => {
    const s = await makeStorage(t);
    const data = randomBytes(5 * MiB + 7);
    await s.put('counted', data);
    const before = s.bytesRead;
    await s.get('counted', ANY_SIZE);
    t.equal(s.bytesRead - before, data.length, 'a whole get');
    await s.getRange('counted', { start: 100, end: 1100 });
    t.equal(s.bytesRead - before, data.length + 1000, 'a ranged get');
    await readAll(await s.getStream('counted', { start: MiB, end: 5 * MiB + 7 }));
    t.equal(s.bytesRead - before, 2 * data.length + 1000 - MiB, 'a stream of several parts');
    await s.get('absent', ANY_SIZE);
    t.equal(s.bytesRead - before, 2 * data.length + 1000 - MiB, 'a missing key reads nothing');
  });

  t.test('multi-MiB objects stream back intact, whole and in ranges across part boundaries', async (t) => {
    const s = await makeStorage(t);
    const data = randomBytes(20 * MiB + 12345);
    await s.put('big/buffer', data);
    t.equal((await s.head('big/buffer'))?.size, data.length);
    t.equal(sha256(await readAll(await s.getStream('big/buffer'))), sha256(data), 'whole stream');
    const range = { start: 8 * MiB - 100, end: 16 * MiB + 100 };
    t.equal(sha256(await readAll(await s.getStream('big/buffer', range))), sha256(data.subarray(range.start, range.end)), 'range across boundaries');
    const tailRange = { start: data.length - 10, end: data.length };
    t.same(await readAll(await s.getStream('big/buffer', tailRange)), data.subarray(tailRange.start));
    t.same(await s.getRange('big/buffer', range), data.subarray(range.start, range.end));
  });

  t.test('a file body goes up intact, small and large', async (t) => {
    const s = await makeStorage(t);
    const small = randomBytes(3000);
    await s.put('files/small', { file: tempFile(t, small), length: small.length });
    t.same(await s.get('files/small', ANY_SIZE), small);
    const large = randomBytes(20 * MiB + 7);
    await s.put('files/large', { file: tempFile(t, large), length: large.length });
    t.equal((await s.head('files/large'))?.size, large.length);
    t.equal(sha256(await readAll(await s.getStream('files/large'))), sha256(large));
    t.equal(sha256((await s.get('files/large', ANY_SIZE)) ?? Buffer.alloc(0)), sha256(large));
    t.equal(await s.putIfAbsent('files/created', { file: tempFile(t, small), length: small.length }), true);
    t.same(await s.get('files/created', ANY_SIZE), small);
  });

  t.test('a growing file is stored as it ends up, small or past the multipart threshold', async (t) => {
    const s = await makeStorage(t);
    for (const [name, size] of [['small', 5000], ['large', 25 * MiB + 3]] as const) {
      const data = randomBytes(size);
      const writer = await BufferedFileWriter.create(join(tempDir(t), 'growing'), size);
      const stored = s.put(`growing/${name}`, writer);
      for (let at = 0; at < data.length; at += 3 * MiB + 1) await writer.write(data.subarray(at, at + 3 * MiB + 1));
      await writer.close();
      await stored;
      t.equal(sha256((await s.get(`growing/${name}`, ANY_SIZE)) ?? Buffer.alloc(0)), sha256(data), `${name}: the bytes written`);
    }
  });

  t.test('a growing file whose writer gives up is not stored, whether little or much was written', async (t) => {
    const s = await makeStorage(t);
    for (const [name, size] of [['little', 1000], ['much', 21 * MiB]] as const) {
      const writer = await BufferedFileWriter.create(join(tempDir(t), 'growing'), size);
      const stored = s.put(`aborted/${name}`, writer);
      stored.catch(() => undefined); // it fails during abort(), before rejection() below looks
      await writer.write(randomBytes(size));
      await writer.flush();
      await writer.abort(new KmscryptError('TOO_LARGE', `${name}: given up`));
      const err = await rejection(stored);
      t.match(err.message, new RegExp(`${name}: given up`), `${name}: the put fails with the writer's reason`);
      t.equal(await s.get(`aborted/${name}`, ANY_SIZE), undefined, `${name}: nothing stored`);
    }
  });

  t.test('putIfAbsent creates once and never overwrites', async (t) => {
    const s = await makeStorage(t);
    t.equal(await s.putIfAbsent('manifests/1', Buffer.from('first')), true);
    t.equal(await s.putIfAbsent('manifests/1', Buffer.from('second')), false);
    t.equal((await s.get('manifests/1', ANY_SIZE))?.toString(), 'first');
  });

  t.test('8 concurrent putIfAbsent on one key: exactly one wins and its bytes are stored', async (t) => {
    const s = await makeStorage(t);
    for (let round = 0; round < 3; round++) {
      const key = `race/${round}`;
      const bodies = Array.from({ length: 8 }, (_, i) => Buffer.from(`writer ${i} of round ${round} ${randomBytes(8).toString('hex')}`));
      const results = await Promise.all(bodies.map((b) => s.putIfAbsent(key, b)));
      t.equal(results.filter(Boolean).length, 1, `round ${round}: one winner (${results.join(' ')})`);
      t.same(await s.get(key, ANY_SIZE), bodies[results.indexOf(true)], 'the winner wrote the stored bytes');
    }
  });

  t.test('putIfMatch replaces only at the current etag', async (t) => {
    const s = await makeStorage(t);
    await s.put('ref', Buffer.from('v1'));
    const v1 = await s.head('ref');
    t.equal(await s.putIfMatch('ref', Buffer.from('v2'), v1!.etag), true);
    t.equal((await s.get('ref', ANY_SIZE))?.toString(), 'v2');
    t.equal(await s.putIfMatch('ref', Buffer.from('v3'), v1!.etag), false, 'a stale etag is refused');
    t.equal((await s.get('ref', ANY_SIZE))?.toString(), 'v2', 'and changes nothing');
    t.equal(await s.putIfMatch('missing', Buffer.from('x'), v1!.etag), false, 'a missing object is refused');
    t.equal(await s.get('missing', ANY_SIZE), undefined, 'and is not created');
  });

  t.test('8 concurrent putIfMatch from one etag: exactly one wins and its bytes are stored', async (t) => {
    const s = await makeStorage(t);
    for (let round = 0; round < 3; round++) {
      const key = `cas/${round}`;
      await s.put(key, Buffer.from(`base ${round}`));
      const base = await s.head(key);
      const bodies = Array.from({ length: 8 }, (_, i) => Buffer.from(`swap ${i} of round ${round} ${randomBytes(8).toString('hex')}`));
      const results = await Promise.all(bodies.map((b) => s.putIfMatch(key, b, base!.etag)));
      t.equal(results.filter(Boolean).length, 1, `round ${round}: one winner (${results.join(' ')})`);
      t.same(await s.get(key, ANY_SIZE), bodies[results.indexOf(true)], 'the winner wrote the stored bytes');
    }
  });

  t.test('list: sorted, filtered by prefix, startAfter, nested keys relative to the storage', async (t) => {
    const s = await makeStorage(t);
    const keys = ['b/2', 'a/1', 'a/10', 'a/2', 'ab', 'a/deep/er/key', 'c'];
    for (const key of keys) await s.put(key, Buffer.from(key));
    const all = await s.list('');
    t.same(all.map((o) => o.key), [...keys].sort());
    t.same(all.map((o) => o.size), [...keys].sort().map((k) => k.length), 'sizes');
    t.equal(all.find((o) => o.key === 'ab')?.etag, (await s.head('ab'))?.etag, 'list and head agree on etags');
    // gc's age rule for unlisted containers reads this: a just-written object is young.
    const age = Date.now() - all.find((o) => o.key === 'ab')!.lastModified.getTime();
    t.ok(Math.abs(age) < 10 * 60_000, 'list reports when the store wrote the object', { age });
    t.same((await s.list('a/')).map((o) => o.key), ['a/1', 'a/10', 'a/2', 'a/deep/er/key']);
    t.same((await s.list('a')).map((o) => o.key), ['a/1', 'a/10', 'a/2', 'a/deep/er/key', 'ab']);
    t.same((await s.list('a/', 'a/10')).map((o) => o.key), ['a/2', 'a/deep/er/key']);
    t.same((await s.list('', 'b/2')).map((o) => o.key), ['c']);
    t.same(await s.list('zzz'), []);
    t.same((await s.get('a/deep/er/key', ANY_SIZE))?.toString(), 'a/deep/er/key');
  });

  t.test('list pages beyond 1000 keys (one S3 page)', async (t) => {
    const s = await makeStorage(t);
    const keys = Array.from({ length: 1005 }, (_, i) => `many/${String(i).padStart(5, '0')}`);
    await inPool([...keys].reverse(), 32, (key) => s.put(key, Buffer.from('x')));
    await s.put('other', Buffer.from('y'));
    const listed = await s.list('many/');
    t.equal(listed.length, 1005);
    t.same(listed.map((o) => o.key), keys);
    const after = await s.list('many/', keys[499]);
    t.equal(after.length, 505);
    t.equal(after[0].key, keys[500]);
    t.equal((await s.list('')).length, 1006);
  });

  t.test('delete removes, and deleting a missing key is fine', async (t) => {
    const s = await makeStorage(t);
    await s.put('d/1', Buffer.from('1'));
    await s.put('d/2', Buffer.from('2'));
    await s.delete('d/1');
    t.equal(await s.get('d/1', ANY_SIZE), undefined);
    await s.delete('d/1');
    await s.delete('never/was');
    t.same((await s.list('d/')).map((o) => o.key), ['d/2']);
    t.equal(await s.putIfAbsent('d/1', Buffer.from('again')), true, 'a deleted key can be created again');
  });

  t.test('invalid keys are refused', async (t) => {
    const s = await makeStorage(t);
    for (const key of ['', '/abs', 'a/../b', 'a//b', './a']) {
      t.equal((await rejection(s.put(key, Buffer.from('x')))).code, 'INTERNAL', JSON.stringify(key));
    }
  });
}
