import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { containerKey } from '../src/format/constants';
import type { ContainerRef } from '../src/format/manifest';
import { restoreIfSwept } from '../src/remote/container-writer';
import { LocalStorage } from '../src/storage/local-storage';

// A push slower than gc's patience for unlisted containers checks its container once published.
t.test('a published container swept by gc is stored again from the push\'s file; one that is there is left alone', async (t) => {
  const dir = t.testdir();
  const storage = new LocalStorage(join(dir, 'store'));
  const file = join(dir, 'container');
  const bytes = Buffer.from('sealed container bytes\n'.repeat(100));
  writeFileSync(file, bytes);
  const ref = { id: 'a'.repeat(32) } as ContainerRef;
  await storage.put(containerKey(ref.id), { file, length: bytes.length });

  const before = { ...storage.requests };
  t.equal(await restoreIfSwept(storage, ref, file), false, 'present: nothing to restore');
  const after = storage.requests;
  t.same({ head: after.head - before.head, put: after.put - before.put }, { head: 1, put: 0 }, 'one HEAD, no upload');

  await storage.delete(containerKey(ref.id));
  t.equal(await restoreIfSwept(storage, ref, file), true, 'swept: restored');
  t.same(readFileSync(join(dir, 'store', containerKey(ref.id))), bytes, 'the store holds the same bytes again');
});
