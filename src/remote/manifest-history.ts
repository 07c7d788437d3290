import { KmscryptError } from '../errors';
import { generationOfKey, historyKey, STORE_KEYS } from '../format/constants';
import { sha256Hex } from '../format/container';
import { encodeHistory } from '../format/history';
import type { HistoryRef } from '../format/manifest';
import type { ManifestSnapshot, RemoteRepository } from './remote-repository';
import { storeChainSource } from './store-chain-source';

/**
 * Before gc publishes its manifest (generation `snapshot` + 1), whose predecessors it will later
 * delete, it stores the history object that attests their hashes (docs/FORMAT.md §8.2): the
 * manifests from the previous history object's generation (or, the first time, from the oldest
 * stored one reached without a gap) up to `snapshot`, each checked against the `previous` hash
 * of the one after it, and the previous history object's hash. The returned reference goes into
 * the gc manifest's preamble and from there into every later manifest's.
 */
export async function storeHistory(repo: RemoteRepository, snapshot: ManifestSnapshot): Promise<HistoryRef> {
  const base = snapshot.manifest!;
  const end = base.generation + 1;
  const before = snapshot.chain.history;
  const floor = before?.generation ?? 1;
  const stored = new Set(
    (await repo.storage.list(STORE_KEYS.manifestPrefix, undefined)).map((o) => generationOfKey(o.key)).filter((g): g is number => g !== undefined),
  );
  const source = storeChainSource(repo, stored, floor, base.generation - 1);
  const hashes = [snapshot.hash!];
  let expected = base.previous;
  let g = base.generation - 1;
  for (; g >= floor && stored.has(g) && expected !== null; g--) {
    const link = await source.link(g, expected);
    if (link.hash !== expected) {
      throw new KmscryptError('TAMPERED', `${repo.config.url}: manifest ${g} is not the one manifest ${g + 1} names: the history was forked`, {
        reason: 'fork',
        at: g,
        unchanged: 'gc changed nothing',
      });
    }
    hashes.push(expected);
    expected = link.previous;
  }
  const first = g + 1;
  hashes.reverse();
  const bytes = encodeHistory({ first, end, previous: before && first === before.generation ? before.hash : null, hashes });
  const hash = sha256Hex(bytes);
  // Named by its hash: an object of that name already holds exactly these bytes.
  await repo.storage.putIfAbsent(historyKey(hash), bytes);
  return { generation: end, hash };
}
