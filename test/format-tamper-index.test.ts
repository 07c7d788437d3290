/**
 * Format-level tamper tests for a container's sealed index (docs/FORMAT.md §6.3): any change to its
 * bytes, or opening it for another repository, container or data key, fails with TAMPERED; opening
 * it against a records section of another length fails with CORRUPT. An index opens only as the
 * version it was written as (the version is in its AAD label).
 */
import t from 'tap';
import { randomBytes } from 'node:crypto';
import { GCM_LIMIT } from '../src/format/constants';
import { openIndex, sealIndex } from '../src/format/container';
import { IndexEntry } from '../src/format/container-index';
import { keyCommitment } from '../src/format/key-commitment';
import { outcome } from './support/outcome';

const dataKey = Buffer.from(Array.from({ length: 32 }, (_, i) => 0x55 ^ i));
const repositoryId = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';
const containerId = Buffer.from('0123456789abcdef0123456789abcdef', 'hex');
const oid = (n: number) => Buffer.alloc(20, n);
const entries: IndexEntry[] = [
  { oid: oid(1), type: 1, size: 200, sealedLength: 150 },
  { oid: oid(2), type: 2, size: 90, sealedLength: 80 },
  { oid: oid(3), type: 7, size: 40, sealedLength: 50, base: 1, endsSegment: true },
  { oid: oid(4), type: 7, size: GCM_LIMIT + 5, sealedLength: 112, base: oid(9) },
  { oid: oid(5), type: 3, size: GCM_LIMIT * 3, sealedLength: 4096 },
];
const recordsStart = 133;
const recordsEnd = recordsStart + entries.reduce((n, e) => n + e.sealedLength, 0);
const sealed = sealIndex(dataKey, repositoryId, containerId, 20, recordsStart, entries);
const commitment = keyCommitment(dataKey, containerId);


t.test('the untouched index opens', async (t) => {
  const index = openIndex(dataKey, repositoryId, containerId, sealed, recordsEnd, 'x', 3, commitment);
  t.equal(index.count, entries.length);
  t.equal(index.offsets[4], recordsEnd - 4096);
});

t.test('every flipped byte is TAMPERED', async (t) => {
  const results = new Map<string, number[]>();
  for (let i = 0; i < sealed.length; i++) {
    const copy = Buffer.from(sealed);
    copy[i] ^= 0x01;
    const r = outcome(() => openIndex(dataKey, repositoryId, containerId, copy, recordsEnd, 'x', 3, commitment));
    results.set(r, [...(results.get(r) ?? []), i]);
  }
  t.same([...results.keys()], ['TAMPERED'], `all ${sealed.length} bytes`);
  const copy = Buffer.from(sealed);
  copy[0] ^= 0x01;
  t.throws(() => openIndex(dataKey, repositoryId, containerId, copy, recordsEnd, 'x', 2), { code: 'TAMPERED', data: { scope: 'index', container: containerId.toString('hex') } });
});

t.test('truncated, extended or empty indexes are TAMPERED', async (t) => {
  const results = new Set<string>();
  for (let n = 0; n < sealed.length; n++) results.add(outcome(() => openIndex(dataKey, repositoryId, containerId, sealed.subarray(0, n), recordsEnd, 'x', 3, commitment)));
  t.same([...results], ['TAMPERED'], 'every proper prefix');
  t.equal(outcome(() => openIndex(dataKey, repositoryId, containerId, Buffer.concat([sealed, Buffer.alloc(1)]), recordsEnd, 'x', 3, commitment)), 'TAMPERED');
});

t.test('an index opened for another repository, container or data key is TAMPERED', async (t) => {
  t.equal(outcome(() => openIndex(dataKey, '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6e', containerId, sealed, recordsEnd, 'x', 3, commitment)), 'TAMPERED', 'repository');
  const otherId = Buffer.from(containerId);
  otherId[0] ^= 0x80;
  t.equal(outcome(() => openIndex(dataKey, repositoryId, otherId, sealed, recordsEnd, 'x', 3, commitment)), 'TAMPERED', 'container');
  t.equal(outcome(() => openIndex(randomBytes(32), repositoryId, containerId, sealed, recordsEnd, 'x', 3, commitment)), 'TAMPERED', 'data key');
  t.equal(outcome(() => openIndex(dataKey, repositoryId, containerId, sealed, recordsEnd, 'x', 2)), 'TAMPERED', 'a version 3 index opened as version 2');
  t.equal(outcome(() => openIndex(dataKey, repositoryId, containerId, sealed, recordsEnd, 'x', 1)), 'TAMPERED', 'a version 3 index opened as version 1');
  const v2 = sealIndex(dataKey, repositoryId, containerId, 20, recordsStart, entries, 2);
  t.equal(outcome(() => openIndex(dataKey, repositoryId, containerId, v2, recordsEnd, 'x', 3, commitment)), 'TAMPERED', 'a version 2 index opened as version 3');
  t.equal(outcome(() => openIndex(dataKey, repositoryId, containerId, v2, recordsEnd, 'x', 2)), 'opened', 'the version 2 index opens as version 2');
  const v1 = sealIndex(dataKey, repositoryId, containerId, 20, recordsStart, entries, 1);
  t.equal(outcome(() => openIndex(dataKey, repositoryId, containerId, v1, recordsEnd, 'x', 2)), 'TAMPERED', 'a version 1 index opened as version 2');
  t.equal(outcome(() => openIndex(dataKey, repositoryId, containerId, v1, recordsEnd, 'x', 1)), 'opened', 'the version 1 index opens as version 1');
});

t.test('a version 3 index is opened only with the commitment of its data key', async (t) => {
  t.equal(outcome(() => openIndex(dataKey, repositoryId, containerId, sealed, recordsEnd, 'x', 3, keyCommitment(randomBytes(32), containerId))), 'TAMPERED', 'another commitment');
  t.equal(outcome(() => openIndex(dataKey, repositoryId, containerId, sealed, recordsEnd, 'x', 3, null)), 'INTERNAL', 'no commitment: a caller bug');
});

t.test('an authentic index against a records section of another length is CORRUPT', async (t) => {
  t.equal(outcome(() => openIndex(dataKey, repositoryId, containerId, sealed, recordsEnd + 1, 'x', 3, commitment)), 'CORRUPT', 'records section longer than the records');
  t.equal(outcome(() => openIndex(dataKey, repositoryId, containerId, sealed, recordsEnd - 1, 'x', 3, commitment)), 'CORRUPT', 'records section shorter than the records');
  t.equal(outcome(() => openIndex(dataKey, repositoryId, containerId, sealed, recordsStart - 1, 'x', 3, commitment)), 'CORRUPT', 'records section ends before it starts');
});
