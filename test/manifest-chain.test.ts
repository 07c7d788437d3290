/**
 * The continuity proof (src/remote/manifest-chain.ts, docs/FORMAT.md §9.1) as a pure function over
 * a table of manifests: a newest manifest descends from the one a clone saw when the `previous`
 * hashes lead from it down to that one, through history objects where gc removed manifests; and
 * verify's check of the stored manifests, pair by pair (chainBreaks).
 */
import t from 'tap';
import { createHash } from 'node:crypto';
import type { History } from '../src/format/history';
import type { HistoryRef } from '../src/format/manifest';
import { chainBreaks, ChainSource, ManifestLink, proveDescent, StoredLink } from '../src/remote/manifest-chain';

const hashOf = (name: string) => createHash('sha256').update(name).digest('hex');

/** A linear history of `n` manifests named `${branch}${g}`; the hash of each is that of its name. */
function chain(n: number, branch = 'm', from: Map<number, ManifestLink> = new Map()): Map<number, ManifestLink> {
  const links = new Map(from);
  for (let g = from.size + 1; g <= n; g++) links.set(g, { hash: hashOf(`${branch}${g}`), previous: g === 1 ? null : links.get(g - 1)!.hash, history: null });
  return links;
}

interface Table {
  links: Map<number, ManifestLink>;
  histories?: Map<string, History>;
  stored?: number[];
}

function source(table: Table, reads: number[]): ChainSource {
  const stored = new Set(table.stored ?? table.links.keys());
  return {
    stored,
    async link(generation) {
      reads.push(generation);
      if (!stored.has(generation)) throw new Error(`manifest ${generation} is not stored`);
      return table.links.get(generation)!;
    },
    async history(ref: HistoryRef) {
      const h = table.histories?.get(ref.hash);
      if (!h || h.end !== ref.generation) throw new Error(`no history ${ref.hash}`);
      return h;
    },
  };
}

async function prove(table: Table, seen: number, seenHash = table.links.get(seen)?.hash ?? hashOf(`m${seen}`)) {
  const newest = Math.max(...table.links.keys());
  const reads: number[] = [];
  const verdict = await proveDescent({ generation: seen, hash: seenHash }, { generation: newest, link: table.links.get(newest)! }, source(table, reads));
  return { verdict, reads };
}

t.test('a gap of 50 is proved by 49 reads of stored bytes, newest first', async (t) => {
  const { verdict, reads } = await prove({ links: chain(60) }, 10);
  t.same(verdict, { proved: true });
  t.same(
    reads,
    Array.from({ length: 49 }, (_, i) => 59 - i),
  );
});

t.test('a fork is found where the chain leaves what the clone saw', async (t) => {
  // The clone saw m1..m4; the store withheld m4 and another writer made f4..f8 on m3.
  const seenChain = chain(4);
  const forked = chain(8, 'f', chain(3));
  t.same((await prove({ links: forked }, 4, seenChain.get(4)!.hash)).verdict, { proved: false, reason: 'fork', at: 4 });
  t.same((await prove({ links: forked }, 2)).verdict, { proved: true }, 'a clone that saw only m2 is fine: f4 builds on m3');
  const replaced = new Map(chain(8));
  replaced.set(6, { ...replaced.get(6)!, hash: hashOf('other') });
  t.same((await prove({ links: replaced }, 3)).verdict, { proved: false, reason: 'fork', at: 6 }, 'a replaced manifest in the gap');
  const orphan = new Map(chain(8));
  orphan.set(8, { ...orphan.get(8)!, previous: null });
  t.same((await prove({ links: orphan }, 5)).verdict, { proved: false, reason: 'fork', at: 8 }, 'a newest manifest that names no predecessor');
});

t.test('manifests gc removed are vouched for by its history objects, across several gcs', async (t) => {
  const links = chain(30);
  const history = (first: number, end: number, previous: string | null): History => ({
    first,
    end,
    previous,
    hashes: Array.from({ length: end - first }, (_, i) => links.get(first + i)!.hash),
  });
  const h1 = history(1, 10, null);
  const h2 = history(10, 20, 'h1');
  const histories = new Map([
    ['h1', h1],
    ['h2', h2],
  ]);
  const withRefs = new Map(links);
  const ref2 = { generation: 20, hash: 'h2' };
  for (let g = 20; g <= 30; g++) withRefs.set(g, { ...withRefs.get(g)!, history: ref2 });
  const stored = Array.from({ length: 11 }, (_, i) => 20 + i);
  const table = { links: withRefs, histories, stored };
  const near = await prove(table, 15);
  t.same(near.verdict, { proved: true }, 'seen before the last gc: attested by its history object');
  t.same(near.reads, [29, 28, 27, 26, 25, 24, 23, 22, 21, 20], 'the stored manifests down to the gc manifest, then the history');
  t.same((await prove(table, 3)).verdict, { proved: true }, 'seen before two gcs: the history objects chain');
  t.same(
    (await prove(table, 15, hashOf('not what was stored'))).verdict,
    { proved: false, reason: 'fork', at: 15 },
    'a hash the history does not attest is a fork',
  );

  const forgedHistory = new Map(histories);
  forgedHistory.set('h2', { ...h2, hashes: h2.hashes.map((h, i) => (i === 9 ? hashOf('x') : h)) });
  t.same(
    (await prove({ ...table, histories: forgedHistory }, 15)).verdict,
    { proved: false, reason: 'fork', at: 19 },
    'a history that does not end where the chain does is refused',
  );
  t.same(
    (await prove({ ...table, histories: new Map([['h2', { ...h2, previous: null }]]) }, 3)).verdict,
    { proved: false, reason: 'unattested', at: 3 },
    'a clone older than every history object',
  );
});

t.test('a gone manifest that no history attests is not proved', async (t) => {
  const links = chain(10);
  t.same((await prove({ links, stored: [5, 7, 8, 9, 10] }, 5)).verdict, { proved: false, reason: 'unattested', at: 6 });
  const afterGc = new Map(links);
  for (let g = 8; g <= 10; g++) afterGc.set(g, { ...afterGc.get(g)!, history: { generation: 6, hash: 'h' } });
  const histories = new Map([['h', { first: 1, end: 6, previous: null, hashes: [1, 2, 3, 4, 5].map((g) => links.get(g)!.hash) }]]);
  t.same(
    (await prove({ links: afterGc, histories, stored: [2, 8, 9, 10] }, 2)).verdict,
    { proved: false, reason: 'unattested', at: 7 },
    'a manifest at or after the last gc is never removed by gc',
  );
});

/** The stored manifests of `links` (all by default) as verify finds them, every one opened. */
function storedLinks(links: Map<number, ManifestLink>, generations = [...links.keys()]): StoredLink[] {
  return generations.map((generation) => ({ generation, hash: links.get(generation)!.hash, previous: links.get(generation)!.previous }));
}

t.test('chainBreaks: an unbroken chain, with or without gaps gc left, has none', async (t) => {
  const links = chain(8);
  t.same(chainBreaks(storedLinks(links)), []);
  t.same(chainBreaks(storedLinks(links, [3, 4, 7, 8])), [], 'manifests 1, 2, 5 and 6 removed: only neighbours are compared');
  t.same(chainBreaks([]), []);
});

t.test('chainBreaks: a replaced manifest breaks the chain on both sides', async (t) => {
  const links = chain(5);
  links.set(3, { hash: hashOf('other'), previous: links.get(2)!.hash, history: null });
  t.same(chainBreaks(storedLinks(links)), [{ generation: 4, kind: 'does-not-follow' }], 'its successor names the hash of the one replaced');
  const forked = chain(5, 'f', chain(2));
  const mixed = storedLinks(chain(5)).map((l) => (l.generation === 4 ? storedLinks(forked, [4])[0] : l));
  t.same(
    chainBreaks(mixed),
    [
      { generation: 4, kind: 'does-not-follow' },
      { generation: 5, kind: 'does-not-follow' },
    ],
    'a manifest of another history in the middle',
  );
});

t.test('chainBreaks: only manifest 1 names no predecessor', async (t) => {
  const links = chain(3);
  const first = { generation: 1, hash: links.get(1)!.hash, previous: hashOf('m0') };
  t.same(chainBreaks([first, ...storedLinks(links, [2, 3])]), [{ generation: 1, kind: 'first-names-predecessor' }]);
  const orphan = { generation: 3, hash: links.get(3)!.hash, previous: null };
  t.same(
    chainBreaks([...storedLinks(links, [1, 2]), orphan]),
    [
      { generation: 3, kind: 'names-no-predecessor' },
      { generation: 3, kind: 'does-not-follow' },
    ],
    'a later manifest naming none also does not follow its stored predecessor',
  );
  t.same(chainBreaks([orphan]), [{ generation: 3, kind: 'names-no-predecessor' }], 'even with no predecessor stored');
});

t.test('chainBreaks: a manifest that failed is not compared; history under a retired key still vouches', async (t) => {
  const links = chain(4);
  const [one, two, three, four] = storedLinks(links);
  t.same(chainBreaks([one, { generation: 2 }, three, four]), [], 'manifest 2 failed: 3 is not compared with it');
  t.same(chainBreaks([one, { generation: 2, hash: two.hash }, three, four]), [], 'manifest 2 not opened (retired key): its bytes still vouch for 3');
  t.same(
    chainBreaks([one, { generation: 2, hash: hashOf('altered') }, three, four]),
    [{ generation: 3, kind: 'does-not-follow' }],
    'unopened history whose bytes were altered',
  );
});
