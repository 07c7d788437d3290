/** Filter specs as git sends them with `option filter` (src/remote/object-filter.ts). */
import t from 'tap';
import { keepsBlob, keepsTree, parseObjectFilter } from '../src/remote/object-filter';

t.test('supported specs', async (t) => {
  t.same(parseObjectFilter('blob:none'), { filter: { blobLimit: 0 } });
  t.same(parseObjectFilter('blob:limit=1024'), { filter: { blobLimit: 1024 } });
  t.same(parseObjectFilter('blob:limit=2k'), { filter: { blobLimit: 2048 } });
  t.same(parseObjectFilter('blob:limit=1m'), { filter: { blobLimit: 1 << 20 } });
  t.same(parseObjectFilter('blob:limit=1G'), { filter: { blobLimit: 1 << 30 } });
  t.same(parseObjectFilter('tree:0'), { filter: { treeDepth: 0 } });
  t.same(parseObjectFilter('tree:3'), { filter: { treeDepth: 3 } });
  // what git sends for --filter=blob:none --filter=tree:2 (URL-encoded parts)
  t.same(parseObjectFilter('combine:blob%3Anone+tree%3A2'), { filter: { blobLimit: 0, treeDepth: 2 } });
  t.same(
    parseObjectFilter('combine:blob%3Alimit%3D100+blob%3Alimit%3D10+tree%3A5+tree%3A4'),
    { filter: { blobLimit: 10, treeDepth: 4 } },
    'the stricter of each kind',
  );
});

t.test('unsupported specs are named', async (t) => {
  t.same(parseObjectFilter('sparse:oid=main:.sparse'), { unsupported: 'sparse:oid=main:.sparse' });
  t.same(parseObjectFilter('object:type=blob'), { unsupported: 'object:type=blob' });
  t.same(parseObjectFilter('combine:blob%3Anone+sparse%3Aoid%3Dx'), { unsupported: 'sparse:oid=x' });
  t.same(parseObjectFilter('combine:blob%3Anone+%zz'), { unsupported: 'combine:blob%3Anone+%zz' });
  t.same(parseObjectFilter('blob:limit=-1'), { unsupported: 'blob:limit=-1' });
  t.same(parseObjectFilter('tree:x'), { unsupported: 'tree:x' });
  t.same(parseObjectFilter(''), { unsupported: '' });
});

t.test('what a filter keeps: blob sizes below the limit, and depth below the tree depth', async (t) => {
  t.ok(keepsBlob({}, 10 ** 9, 100));
  t.notOk(keepsBlob({ blobLimit: 0 }, 0, 1), 'blob:none keeps no blob, not even an empty one');
  t.ok(keepsBlob({ blobLimit: 100 }, 99, 1));
  t.notOk(keepsBlob({ blobLimit: 100 }, 100, 1), 'blob:limit=<n> drops blobs of n bytes');
  t.notOk(keepsTree({ treeDepth: 0 }, 0), 'tree:0 drops root trees');
  t.ok(keepsTree({ treeDepth: 1 }, 0));
  t.notOk(keepsTree({ treeDepth: 1 }, 1));
  t.notOk(keepsBlob({ treeDepth: 1 }, 1, 1), 'tree:1 drops the blobs of a root tree (depth 1)');
  t.ok(keepsBlob({ treeDepth: 2 }, 1, 1));
});
