import t, { type Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { BufferedFileWriter } from '../src/remote/file-io';
import { S3Storage, type S3StorageOptions } from '../src/storage/s3-storage';
import { readAll, sha256, storageContract, tempFile, ANY_SIZE } from './storage-contract';
import { runningServices, type Services, newBucket, s3ClientFor } from './support/services';
import { type ProxyFault, type ProxiedRequest, startS3Proxy } from './support/s3-proxy';

let services: Services;
let credentials: { accessKeyId: string; secretAccessKey: string };
t.before(async () => {
  services = await runningServices();
  credentials = { accessKeyId: services.s3.accessKeyId, secretAccessKey: services.s3.secretAccessKey };
});
const MiB = 1 << 20;

function s3Storage(bucket: string, prefix: string, extra: Partial<S3StorageOptions> = {}): S3Storage {
  return new S3Storage({ bucket, prefix, endpoint: services.s3.endpoint, region: services.s3.region, credentials, ...extra });
}

/** S3Storage through a misbehaving proxy in front of RGW. */
async function viaProxy(t: Test, bucket: string, prefix: string, fault: (req: ProxiedRequest) => ProxyFault | undefined) {
  const proxy = await startS3Proxy({ target: services.s3.endpoint, credentials, fault });
  t.teardown(() => proxy.close());
  return { proxy, storage: s3Storage(bucket, prefix, { endpoint: proxy.url }) };
}

const isPut = (r: ProxiedRequest) => r.method === 'PUT';

t.test('contract at the root of a bucket (a fresh bucket each)', async (t) => {
  storageContract(t, async () => s3Storage(await newBucket('contract-root'), ''));
});

t.test('contract under a nested prefix, beside other data in one bucket', async (t) => {
  const bucket = await newBucket('contract-prefix');
  await s3Storage(bucket, '').put('some/nested/sibling', Buffer.from('not part of any prefix below'));
  let n = 0;
  storageContract(t, async () => s3Storage(bucket, `some/nested/p${n++}`));
});

t.test('keys land under the prefix; etags are stored unquoted', async (t) => {
  const bucket = await newBucket('layout');
  const s = s3Storage(bucket, '/team/repo/');
  t.equal(s.location, `s3://${bucket}/team/repo`);
  await s.put('manifests/1', Buffer.from('m'));
  const client = s3ClientFor(services);
  t.teardown(() => client.destroy());
  const raw = await client.send(new ListObjectsV2Command({ Bucket: bucket }));
  t.same(raw.Contents?.map((o) => o.Key), ['team/repo/manifests/1']);
  const head = await s.head('manifests/1');
  t.match(head?.etag, /^[0-9a-f]{32}$/);
  t.equal((await s.list(''))[0].etag, head?.etag);
});

t.test('request counts: one request per simple operation', async (t) => {
  const s = s3Storage(await newBucket('counts'), 'p');
  const delta = async (op: () => Promise<unknown>) => {
    const before = { ...s.requests };
    await op();
    return Object.fromEntries(Object.entries(s.requests).map(([k, v]) => [k, v - before[k as keyof typeof before]]).filter(([, v]) => v !== 0));
  };
  t.same(await delta(() => s.putIfAbsent('k', Buffer.from('1'))), { put: 1, total: 1 }, 'putIfAbsent of a new key: 1 PUT');
  t.same(await delta(() => s.putIfAbsent('k', Buffer.from('2'))), { put: 1, total: 1 }, 'putIfAbsent of an existing key: 1 PUT (412)');
  const etag = (await s.head('k'))!.etag;
  t.same(await delta(() => s.putIfMatch('k', Buffer.from('3'), etag)), { put: 1, total: 1 }, 'putIfMatch: 1 PUT');
  t.same(await delta(() => s.putIfMatch('k', Buffer.from('4'), etag)), { put: 1, total: 1 }, 'stale putIfMatch: 1 PUT (412)');
  t.same(await delta(() => s.get('k', ANY_SIZE)), { get: 1, total: 1 });
  t.same(await delta(() => s.get('missing', ANY_SIZE)), { get: 1, total: 1 });
  t.same(await delta(() => s.head('k')), { head: 1, total: 1 });
  t.same(await delta(() => s.getRange('k', { start: 0, end: 1 })), { get: 1, total: 1 });
  t.same(await delta(() => s.list('')), { list: 1, total: 1 });
  t.same(await delta(() => s.delete('k')), { delete: 1, total: 1 });
  t.same(await delta(() => s.delete('k')), { delete: 1, total: 1 }, 'deleting a missing key');
  const big = randomBytes(20 * MiB + 7);
  const file = tempFile(t, big);
  t.same(await delta(() => s.put('big', { file, length: big.length })), { createMultipart: 1, uploadPart: 3, completeMultipart: 1, total: 5 }, '20 MiB file: multipart in 3 parts');
  t.same(await delta(async () => t.equal(sha256(await readAll(await s.getStream('big'))), sha256(big))), { get: 6, total: 6 }, '20 MiB + 7 bytes stream: 6 ranged GETs of 4 MiB (the last of 7 bytes)');
  t.same(await delta(() => s.put('small-file', { file: tempFile(t, Buffer.from('abc')), length: 3 })), { put: 1, total: 1 }, 'a small file: 1 PUT');
  const keys = Array.from({ length: 1001 }, (_, i) => `many/${i}`);
  await Promise.all(Array.from({ length: 32 }, async (_, w) => {
    for (let i = w; i < keys.length; i += 32) await s.put(keys[i], Buffer.from('x'));
  }));
  t.same(await delta(() => s.list('many/')), { list: 2, total: 2 }, '1001 keys: 2 pages of ListObjectsV2');
});

t.test('a growing file goes up in parts while it is written; a failed writer aborts the upload', async (t) => {
  const bucket = await newBucket('growing');
  const s = s3Storage(bucket, 'p');
  const dir = mkdtempSync(join(tmpdir(), 'growing-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const data = randomBytes(30 * MiB + 5);
  const before = { ...s.requests };
  const writer = await BufferedFileWriter.create(join(dir, 'container'), data.length);
  let stored = 0;
  let partStored: () => void = () => undefined;
  const firstPart = new Promise<void>((resolve) => (partStored = resolve));
  const put = s.put('growing', writer, (n) => {
    stored = n;
    partStored();
  });
  await writer.write(data.subarray(0, 20 * MiB));
  await writer.flush();
  // Not a timing assertion: an upload that waited for the end would never store a part here.
  await Promise.race([firstPart, put, new Promise((_, reject) => setTimeout(() => reject(new Error('no part was uploaded before the file was complete')), 60_000))]);
  t.ok(stored >= 8 * MiB, `${stored} bytes stored before the file was complete`);
  await writer.write(data.subarray(20 * MiB));
  await writer.close();
  await put;
  const used = Object.fromEntries(Object.entries(s.requests).map(([k, v]) => [k, v - before[k as keyof typeof before]]).filter(([, v]) => v !== 0));
  t.same(used, { createMultipart: 1, uploadPart: 4, completeMultipart: 1, total: 6 }, '30 MiB: 4 parts of 8 MiB');
  t.equal(sha256((await s.get('growing', ANY_SIZE)) ?? Buffer.alloc(0)), sha256(data), 'the object is the whole file');

  const failing = await BufferedFileWriter.create(join(dir, 'failing'), 20 * MiB);
  const failed = s.put('failed', failing);
  failed.catch(() => undefined); // it fails during abort(), before t.rejects looks
  await failing.write(randomBytes(20 * MiB));
  await failing.flush();
  await failing.abort(new Error('sealing failed'));
  await t.rejects(failed, /sealing failed/);
  t.equal(s.requests.abortMultipart, 1, 'the multipart upload was aborted');
  t.equal(await s.head('failed'), undefined, 'nothing stored');
  const client = s3ClientFor(services);
  t.teardown(() => client.destroy());
  const uploads = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket }));
  t.same(uploads.Uploads ?? [], [], 'no upload left behind');
});

t.test('a 500 after the create landed is settled by reading back: ours', async (t) => {
  const bucket = await newBucket('unknown');
  let failed = 0;
  const { storage, proxy } = await viaProxy(t, bucket, 'p', (r) => (isPut(r) && failed++ === 0 ? { fail: { status: 500, code: 'InternalError', forward: true } } : undefined));
  t.equal(await storage.putIfAbsent('manifest', Buffer.from('mine')), true);
  t.equal((await storage.get('manifest', ANY_SIZE))?.toString(), 'mine');
  t.ok(storage.requests.put >= 2 && storage.requests.get >= 1, `retried, then read back (${JSON.stringify(storage.requests)})`);
  t.ok(proxy.requests.length > 0);
});

t.test('a 500 when another writer already created the key: not ours', async (t) => {
  const bucket = await newBucket('unknown');
  await s3Storage(bucket, 'p').put('manifest', Buffer.from('theirs'));
  const { storage } = await viaProxy(t, bucket, 'p', (r) => (isPut(r) ? { fail: { status: 500, code: 'InternalError', forward: true } } : undefined));
  t.equal(await storage.putIfAbsent('manifest', Buffer.from('mine')), false);
  t.equal((await s3Storage(bucket, 'p').get('manifest', ANY_SIZE))?.toString(), 'theirs');
});

t.test('409 ConditionalRequestConflict on a create that did not land: written again', async (t) => {
  const bucket = await newBucket('unknown');
  let n = 0;
  const { storage } = await viaProxy(t, bucket, 'p', (r) => (isPut(r) && n++ === 0 ? { fail: { status: 409, code: 'ConditionalRequestConflict', forward: false } } : undefined));
  t.equal(await storage.putIfAbsent('manifest', Buffer.from('mine')), true);
  t.same(
    { put: storage.requests.put, get: storage.requests.get },
    { put: 2, get: 1 },
    '409, read back (missing), written again',
  );
});

t.test('a compare-and-swap answered 500 after it landed: ours; one that never landed: retried', async (t) => {
  const bucket = await newBucket('unknown');
  const direct = s3Storage(bucket, 'p');
  await direct.put('ref', Buffer.from('v1'));
  let n = 0;
  const landed = await viaProxy(t, bucket, 'p', (r) => (isPut(r) && n++ === 0 ? { fail: { status: 500, code: 'InternalError', forward: true } } : undefined));
  t.equal(await landed.storage.putIfMatch('ref', Buffer.from('v2'), (await direct.head('ref'))!.etag), true);
  t.equal((await direct.get('ref', ANY_SIZE))?.toString(), 'v2');
  let m = 0;
  const lost = await viaProxy(t, bucket, 'p', (r) => (isPut(r) && m++ < 3 ? { fail: { status: 503, code: 'ServiceUnavailable', forward: false } } : undefined));
  t.equal(await lost.storage.putIfMatch('ref', Buffer.from('v3'), (await direct.head('ref'))!.etag), true);
  t.equal((await direct.get('ref', ANY_SIZE))?.toString(), 'v3');
  t.equal(lost.storage.requests.put, 4, 'three 503s (SDK retries), read back: unchanged, written again');
});

t.test('a body cut mid-transfer is resumed with ranged GETs of the rest', async (t) => {
  const bucket = await newBucket('resume');
  const data = randomBytes(3 * MiB + 5);
  await s3Storage(bucket, 'p').put('obj', data);
  const gets = (r: ProxiedRequest) => r.method === 'GET';
  let n = 0;
  const { storage } = await viaProxy(t, bucket, 'p', (r) => (gets(r) && n++ < 2 ? { cutBodyAfter: 1 * MiB + n } : undefined));
  t.equal(sha256((await storage.get('obj', ANY_SIZE)) ?? Buffer.alloc(0)), sha256(data), 'get');
  t.equal(storage.requests.get, 3, 'one GET and two resumptions');
  n = 0;
  t.same(await storage.getRange('obj', { start: 5, end: 2 * MiB + 5 }), data.subarray(5, 2 * MiB + 5), 'getRange');
  n = 0;
  t.equal(sha256(await readAll(await storage.getStream('obj'))), sha256(data), 'getStream');
});

t.test('a body that keeps breaking fails with one clear line', async (t) => {
  const bucket = await newBucket('resume');
  await s3Storage(bucket, 'p').put('obj', randomBytes(MiB));
  const { storage } = await viaProxy(t, bucket, 'p', (r) => (r.method === 'GET' ? { cutBodyAfter: 1000 } : undefined));
  await t.rejects(storage.get('obj', ANY_SIZE), { code: 'STORAGE', message: /^reading s3:\/\/\S+\/p\/obj broke off 4 times mid-transfer \(.*\); check the network and retry$/ });
});

t.test('an object replaced between the parts of a stream fails the stream, not silently mixes versions', async (t) => {
  const bucket = await newBucket('replace');
  const s = s3Storage(bucket, 'p');
  await s.put('obj', randomBytes(20 * MiB));
  const stream = await s.getStream('obj');
  await s.put('obj', randomBytes(20 * MiB));
  await t.rejects(readAll(stream), { code: 'STORAGE', message: /was replaced or (deleted|truncated) while it was being read/ });
});
