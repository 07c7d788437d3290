/**
 * LocationTable (src/remote/location-table.ts): the sorted table every fetch and clone uses to
 * find an object's record among all containers' indexes. Object IDs are made to share 4-byte
 * prefixes, since the table compares a prefix first and the whole ID only on a tie.
 */
import { createHash } from 'node:crypto';
import t from 'tap';
import { ContainerIndex } from '../src/format/container-index';
import type { ContainerRef } from '../src/format/manifest';
import type { OpenedContainer } from '../src/remote/container-reader';
import { LocationTable } from '../src/remote/location-table';

const sha1 = (s: string) => createHash('sha1').update(s).digest();

/** An opened container whose index holds `oids` in that order (the table reads nothing else). */
function container(name: string, oids: Buffer[]): OpenedContainer {
  const index = new ContainerIndex(2, 20, oids.length, 0);
  oids.forEach((o, i) => o.copy(index.oids, i * 20));
  return { ref: { id: name } as ContainerRef, index, keys: {} as OpenedContainer['keys'] };
}

/** 20-byte IDs; every third one shares its first four bytes with the one before it. */
function ids(seed: string, n: number): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const id = sha1(`${seed}${i}`);
    if (i % 3 === 2) out[i - 1].copy(id, 0, 0, 4);
    out.push(id);
  }
  return out;
}

t.test('finds every object in the container and at the record that holds it', async (t) => {
  const contents = [ids('a', 50), ids('b', 1), ids('c', 200)];
  const containers = contents.map((oids, k) => container(`c${k}`, oids));
  const table = new LocationTable(containers);
  t.equal(table.size, 251);
  let wrong = 0;
  contents.forEach((oids, k) =>
    oids.forEach((oid, i) => {
      const loc = table.find(oid);
      if (loc?.c !== containers[k] || loc.i !== i) wrong++;
    }),
  );
  t.equal(wrong, 0, 'every ID leads to its own container and record');
});

t.test('an ID that is not stored, or too short to compare, is not found', async (t) => {
  const oids = ids('x', 30);
  const table = new LocationTable([container('only', oids)]);
  const sibling = Buffer.from(oids[2]);
  sibling[19] ^= 1; // same prefix as a stored ID, different last byte
  t.equal(table.find(sibling), undefined);
  t.equal(table.find(sha1('not stored')), undefined);
  t.equal(table.find(oids[0].subarray(0, 3)), undefined);
  t.equal(new LocationTable([]).find(oids[0]), undefined, 'an empty table finds nothing');
});

t.test('one location per record: find and at return the same object, id numbers records densely', async (t) => {
  const first = container('first', ids('p', 10));
  const second = container('second', ids('q', 5));
  const table = new LocationTable([first, second]);
  const loc = table.at(second, 3);
  t.equal(table.find(second.index.oid(3)), loc, 'callers may compare locations by identity');
  t.equal(table.at(second, 3), loc);
  const numbers = [...Array(10).keys()].map((i) => table.id(table.at(first, i))).concat([...Array(5).keys()].map((i) => table.id(table.at(second, i))));
  t.same(numbers, [...Array(15).keys()], 'record numbers run 0..14 across both containers');
});
