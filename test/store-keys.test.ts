import t from 'tap';
import { containerIdOfKey, containerKey, generationOfKey, manifestKey } from '../src/format/constants';

t.test('containerIdOfKey reads back the ID containerKey wrote, and nothing else', async (t) => {
  const id = '0123456789abcdef0123456789abcdef';
  t.equal(containerIdOfKey(containerKey(id)), id);
  for (const key of [
    'containers/0123456789ABCDEF0123456789ABCDEF',
    'containers/0123456789abcdef0123456789abcde',
    'containers/0123456789abcdef0123456789abcdef0',
    'containers/0123456789abcdef0123456789abcdef.tmp',
    'x/containers/0123456789abcdef0123456789abcdef',
    manifestKey(7),
    'kmscrypt.json',
  ]) {
    t.equal(containerIdOfKey(key), undefined, key);
  }
});

t.test('generationOfKey reads back the generation manifestKey wrote, and nothing else', async (t) => {
  t.equal(generationOfKey(manifestKey(0)), 0);
  t.equal(generationOfKey(manifestKey(123456)), 123456);
  for (const key of ['manifests/123', 'manifests/000000000000000000001x', containerKey('0123456789abcdef0123456789abcdef')]) {
    t.equal(generationOfKey(key), undefined, key);
  }
});
