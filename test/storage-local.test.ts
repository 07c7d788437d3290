import t from 'tap';
import { chmodSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { LocalStorage } from '../src/storage/local-storage';
import { storageContract } from './storage-contract';

storageContract(t, async (t) => new LocalStorage(t.testdir()));

t.test('a file body is stored with the mode of every other stored file, not the mode of its source', async (t) => {
  const dir = t.testdir({ source: {} });
  const storage = new LocalStorage(join(dir, 'store'));
  const source = join(dir, 'source', 'container');
  writeFileSync(source, 'ciphertext');
  chmodSync(source, 0o600); // as a container being built is
  await storage.put('manifests/1', Buffer.from('from memory'));
  await storage.put('containers/1', { file: source, length: 10 });
  const mode = (key: string) => statSync(join(dir, 'store', key)).mode & 0o777;
  t.equal(mode('containers/1'), mode('manifests/1'), `both ${mode('manifests/1').toString(8)}`);
});
