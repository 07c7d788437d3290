/**
 * What an S3 server announces never decides what the reader allocates (docs/FORMAT.md §2, read
 * limits): a whole-object read refuses an object over its cap from the response's headers, before
 * reading its body; a ranged read allocates the range asked for, whatever Content-Length or
 * Content-Range claim. A server on loopback that lies, in front of nothing.
 */
import t, { type Test } from 'tap';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isKmscryptError } from '../src/errors';
import { S3Storage } from '../src/storage/s3-storage';

type Answer = (res: ServerResponse, range: string | undefined) => void;

async function lyingServer(t: Test, answer: Answer): Promise<S3Storage> {
  const server = createServer((req, res) => {
    req.resume();
    answer(res, req.headers.range);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())));
  server.on('connection', (socket) => t.teardown(() => socket.destroy()));
  const { port } = server.address() as AddressInfo;
  return new S3Storage({ bucket: 'b', prefix: 'p', endpoint: `http://127.0.0.1:${port}`, region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 's' } });
}

const MiB = 1 << 20;

t.test('a whole-object read refuses what the headers announce over the cap, before the body', async (t) => {
  let bodySent = 0;
  const storage = await lyingServer(t, (res) => {
    res.writeHead(200, { 'content-length': String(3_000_000_000), etag: '"e"' });
    // A trickle that would take forever: the reader must decide on the headers alone.
    const chunk = Buffer.alloc(64 << 10);
    const timer = setInterval(() => {
      if (res.destroyed) return clearInterval(timer);
      bodySent += chunk.length;
      res.write(chunk);
    }, 50);
    res.on('close', () => clearInterval(timer));
  });
  const before = process.memoryUsage().arrayBuffers;
  const err = await storage.get('manifests/00000000000000000002', { maxBytes: 64 * MiB, what: 'manifest' }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(isKmscryptError(err, 'TAMPERED'), 'refused as not written by kmscrypt');
  t.equal((err as Error).message, 's3://b/p/manifests/00000000000000000002 is 3000000000 bytes, over the 67108864-byte limit for a manifest; it was not written by kmscrypt');
  t.ok(process.memoryUsage().arrayBuffers - before < 16 * MiB, 'nothing near the announced size was allocated');
  t.ok(bodySent < 8 * MiB, `at most a few chunks of the body were sent (${bodySent} bytes)`);
});

t.test('a ranged read allocates the range asked for, whatever the server claims', async (t) => {
  const storage = await lyingServer(t, (res, range) => {
    const m = /^bytes=(\d+)-(\d+)$/.exec(range ?? '');
    const [start, end] = m ? [Number(m[1]), Number(m[2])] : [0, 9];
    // Claims a huge object and a longer body than asked for, and sends more than it asked for.
    res.writeHead(206, { 'content-range': `bytes ${start}-${end}/${9_999_999_999}`, 'content-length': String(end - start + 1 + 4096), etag: '"e"' });
    res.end(Buffer.alloc(end - start + 1 + 4096, 7));
  });
  const before = process.memoryUsage().arrayBuffers;
  const got = await storage.getRange('containers/x', { start: 100, end: 110 }).catch((err: unknown) => err);
  if (Buffer.isBuffer(got)) {
    t.equal(got.length, 10, 'exactly the ten bytes asked for');
    t.same(got, Buffer.alloc(10, 7));
  } else {
    t.ok(isKmscryptError(got), `or a refusal (${String(got)})`);
  }
  t.ok(process.memoryUsage().arrayBuffers - before < 16 * MiB, 'nothing near the announced size was allocated');
});
