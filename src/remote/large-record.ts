import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { containerKey } from '../format/constants';
import { removeOnInterrupt } from '../interrupt-cleanup';
import { CBC_IV, CBC_MAC, CbcRecordVerifier, tampered } from '../format/record';
import type { OpenedContainer } from './container-reader';
import type { RemoteRepository } from './remote-repository';

const CHUNK = 1 << 20;

/**
 * A record too large for memory (a CBC record of up to 2 GiB): its ciphertext goes to a
 * temporary file while the MAC runs; only once the MAC has verified is the file decrypted,
 * chunk by chunk, for the caller. Memory stays at a few MiB whatever the object's size.
 */
export async function openLargeRecord(repo: RemoteRepository, c: OpenedContainer, i: number, tmpDir: string): Promise<AsyncIterable<Buffer>> {
  const { index } = c;
  const length = index.lengths[i];
  const what = `object ${index.oidHex(i)} in container ${c.ref.id}`;
  const verifier = new CbcRecordVerifier(c.keys, i, { oid: index.oid(i), type: index.types[i], size: index.sizes[i], base: index.base(i) }, length);
  await fs.mkdir(tmpDir, { recursive: true });
  const file = join(tmpDir, `record-${process.pid}-${c.ref.id}-${i}`);
  const out = await fs.open(file, 'wx', 0o600);
  const releaseFile = removeOnInterrupt(file);
  let received = 0;
  try {
    const stream = await repo.storage.getStream(containerKey(c.ref.id), { start: index.offsets[i], end: index.offsets[i] + length });
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (received + chunk.length > length) throw tampered(what);
      verifier.update(chunk);
      await out.write(chunk);
      received += chunk.length;
    }
    await out.close();
    if (received !== length || !verifier.verified()) throw tampered(what);
  } catch (err) {
    await out.close().catch(() => undefined);
    await fs.rm(file, { force: true });
    releaseFile();
    throw err;
  }
  return decryptFile(file, length, verifier, what, releaseFile);
}

async function* decryptFile(file: string, length: number, verifier: CbcRecordVerifier, what: string, releaseFile: () => void): AsyncGenerator<Buffer> {
  const handle = await fs.open(file, 'r');
  try {
    const iv = Buffer.alloc(CBC_IV);
    await handle.read(iv, 0, CBC_IV, 0);
    const decipher = verifier.decipher(iv);
    const buf = Buffer.allocUnsafe(CHUNK);
    for (let pos = CBC_IV; pos < length - CBC_MAC; ) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(CHUNK, length - CBC_MAC - pos), pos);
      if (bytesRead === 0) throw tampered(what);
      pos += bytesRead;
      const plain = decipher.update(buf.subarray(0, bytesRead));
      if (plain.length) yield plain;
    }
    try {
      yield decipher.final();
    } catch {
      throw tampered(what);
    }
  } finally {
    await handle.close();
    await fs.rm(file, { force: true });
    releaseFile();
  }
}
