import t from 'tap';
import { probeConditionalWrites } from '../src/storage/conditional-write-probe';
import { LocalStorage } from '../src/storage/local-storage';
import { S3Storage } from '../src/storage/s3-storage';
import { runningServices, type Services, newBucket } from './support/services';
import { startS3Proxy } from './support/s3-proxy';

let services: Services;
let credentials: { accessKeyId: string; secretAccessKey: string };
t.before(async () => {
  services = await runningServices();
  credentials = { accessKeyId: services.s3.accessKeyId, secretAccessKey: services.s3.secretAccessKey };
});

t.test('RGW enforces conditional writes; the probe leaves nothing behind', async (t) => {
  const s = new S3Storage({ bucket: await newBucket('probe'), prefix: 'repo', endpoint: services.s3.endpoint, region: services.s3.region, credentials });
  t.same(await probeConditionalWrites(s), { ok: true, detail: 'If-None-Match and If-Match are enforced' });
  t.same(await s.list(''), [], 'probe key deleted');
  t.same(
    { put: s.requests.put, head: s.requests.head, delete: s.requests.delete, get: s.requests.get },
    { put: 4, head: 1, delete: 1, get: 0 },
    'four conditional PUTs, one HEAD, one DELETE',
  );
});

t.test('a local directory passes the probe too', async (t) => {
  const s = new LocalStorage(t.testdir());
  t.same(await probeConditionalWrites(s), { ok: true, detail: 'If-None-Match and If-Match are enforced' });
  t.same(await s.list(''), []);
});

t.test('a server that ignores If-None-Match / If-Match fails the probe', async (t) => {
  const proxy = await startS3Proxy({ target: services.s3.endpoint, credentials, stripHeaders: ['if-none-match', 'if-match'] });
  t.teardown(() => proxy.close());
  const s = new S3Storage({ bucket: await newBucket('probe'), prefix: '', endpoint: proxy.url, region: services.s3.region, credentials });
  const result = await probeConditionalWrites(s);
  t.same(result, { ok: false, detail: 'a create-only write (If-None-Match: *) overwrote an existing object' });
  t.ok(
    proxy.requests.some((r) => r.headers['if-none-match'] === '*'),
    'the client did send If-None-Match',
  );
  t.same(await s.list(''), [], 'probe key deleted');
});

t.test('a server that ignores only If-Match fails the probe', async (t) => {
  const proxy = await startS3Proxy({ target: services.s3.endpoint, credentials, stripHeaders: ['if-match'] });
  t.teardown(() => proxy.close());
  const s = new S3Storage({ bucket: await newBucket('probe'), prefix: '', endpoint: proxy.url, region: services.s3.region, credentials });
  t.same(await probeConditionalWrites(s), { ok: false, detail: 'a compare-and-swap write (If-Match) with a wrong etag replaced the object' });
});
