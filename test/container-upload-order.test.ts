/**
 * storeContainer (src/remote/container-writer.ts) returns only once the storage has confirmed the
 * container's upload: the push publishes its manifest after it returns, so a published manifest
 * never names a container that is still on its way. The crash tests kill pushes around
 * publication, but on a fast store the upload has always finished by then; here the storage
 * holds the upload open until the test lets it complete, which fixes the order they cannot force.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { storeContainer } from '../src/remote/container-writer';
import type { GrowingFile, PutBody, Storage } from '../src/storage/storage';

/**
 * A storage whose container upload completes only when `release` is called (nothing else of it is
 * used); `sealed` resolves once the container file it uploads is complete.
 */
function heldStorage(): { storage: Storage; puts: string[]; sealed: Promise<void>; release: () => void } {
  const puts: string[] = [];
  let release!: () => void;
  const released = new Promise<void>((resolve) => (release = resolve));
  let markSealed!: () => void;
  const sealed = new Promise<void>((resolve) => (markSealed = resolve));
  const storage = {
    location: 'test://held',
    requests: { total: 0 },
    async put(key: string, body: PutBody | GrowingFile): Promise<void> {
      puts.push(key);
      if (!Buffer.isBuffer(body) && 'complete' in body) await body.complete;
      markSealed();
      await released;
    },
  } as unknown as Storage;
  return { storage, puts, sealed, release };
}

t.test('storeContainer returns only after the storage confirms the container upload', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kmscrypt-upload-order-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const repo = join(dir, 'repo');
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8', input: '' });
  execFileSync('git', ['init', '-q', '-b', 'main', repo]);
  writeFileSync(join(repo, 'a.txt'), randomBytes(64 << 10).toString('hex'));
  git('add', 'a.txt');
  git('-c', 'user.name=t', '-c', 'user.email=t@example.com', 'commit', '-qm', 'one');
  const hash = execFileSync('git', ['-C', repo, 'pack-objects', '--revs', '--delta-base-offset', '-q', join(dir, 'pack')], { encoding: 'utf8', input: 'HEAD\n' }).trim();
  const packPath = join(dir, `pack-${hash}.pack`);
  const pack = { packPath, idxPath: join(dir, `pack-${hash}.idx`), entriesEnd: statSync(packPath).size - 20 };

  const { storage, puts, sealed, release } = heldStorage();
  const dataKey = { plaintext: randomBytes(32), wrapped: randomBytes(64), keyId: 'arn:aws:kms:local:000000000000:key/00000000-0000-4000-8000-000000000000' };
  let returned = false;
  const stored = storeContainer(storage, { pack, hashLength: 20, outPath: join(dir, 'container'), dataKey, repositoryId: '00000000-0000-4000-8000-000000000001', progress: false }).then(
    (ref) => {
      returned = true;
      return ref;
    },
  );
  // The container is sealed completely while its upload is held open; a storeContainer that does
  // not wait for the upload returns within moments of that, so give it a second to do so.
  await sealed;
  for (let i = 0; i < 20 && !returned; i++) await new Promise((r) => setTimeout(r, 50));
  t.equal(puts.length, 1, 'the upload started');
  t.equal(returned, false, 'while the upload is not confirmed, storeContainer has not returned');
  release();
  const ref = await stored;
  t.ok(ref && puts[0] === `containers/${ref.id}`, 'once confirmed, it returns the reference to the container it uploaded');
});
