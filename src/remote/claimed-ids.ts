import { KmscryptError } from '../errors';
import type { PackIndexFile } from '../git/pack-index-file';

/**
 * Object IDs the store claims a pack holds: record i's ID is `ids[i * hashLength, (i + 1) *
 * hashLength)`; every record's, or those of `records`.
 */
export interface ClaimedIds {
  ids: Buffer;
  records?: readonly number[];
}

/**
 * The claimed IDs, sorted and back to back: the form of a pack index's name table. Worked out
 * while git index-pack resolves deltas, so that once it is done the usual case (the pack holds
 * exactly the claimed objects) is one comparison of two buffers instead of a search per object
 * while git waits. A counting sort on the first two bytes, then insertion within each bucket
 * (a few IDs each): linear in the number of IDs.
 */
export function sortClaimedIds(claimed: readonly ClaimedIds[], hashLength: number): Buffer {
  const h = hashLength;
  const n = claimed.reduce((sum, c) => sum + (c.records ? c.records.length : c.ids.length / h), 0);
  const all = Buffer.allocUnsafe(n * h);
  let filled = 0;
  for (const { ids, records } of claimed) {
    if (!records) filled += ids.copy(all, filled);
    else for (const i of records) filled += ids.copy(all, filled, i * h, (i + 1) * h);
  }
  const starts = new Uint32Array(65537);
  for (let i = 0; i < n; i++) starts[((all[i * h] << 8) | all[i * h + 1]) + 1]++;
  for (let b = 0; b < 65536; b++) starts[b + 1] += starts[b];
  const next = starts.slice(0, 65536);
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[next[(all[i * h] << 8) | all[i * h + 1]]++] = i;
  const less = (p: number, q: number) => {
    for (let z = 2; z < h; z++) {
      const d = all[p + z] - all[q + z];
      if (d !== 0) return d < 0;
    }
    return false;
  };
  for (let b = 0; b < 65536; b++) {
    const first = starts[b];
    for (let x = first + 1; x < starts[b + 1]; x++) {
      const v = order[x];
      let y = x - 1;
      for (; y >= first && less(v * h, order[y] * h); y--) order[y + 1] = order[y];
      order[y + 1] = v;
    }
  }
  const sorted = Buffer.allocUnsafe(n * h);
  for (let k = 0; k < n; k++) {
    const from = order[k] * h;
    const to = k * h;
    for (let z = 0; z < h; z++) sorted[to + z] = all[from + z];
  }
  return sorted;
}

/**
 * Checks that the pack `idx` describes holds every claimed object under its ID; `sorted` is
 * sortClaimedIds of the same claims. A claim the pack lacks means a record decrypted to content
 * with another ID.
 */
export function checkClaimedIds(idx: PackIndexFile, claimed: readonly ClaimedIds[], sorted: Buffer): void {
  if (idx.hasExactly(sorted)) return;
  // Not the same set (a selective fetch may claim an object twice): look each one up.
  const h = idx.hashLength;
  for (const { ids, records } of claimed) {
    const n = records ? records.length : ids.length / h;
    for (let j = 0; j < n; j++) {
      const at = (records ? records[j] : j) * h;
      if (!idx.hasAt(ids, at)) {
        throw new KmscryptError(
          'TAMPERED',
          `object ${ids.toString('hex', at, at + h)} decrypted to content with another ID; the repository was written by a faulty or hostile client`,
        );
      }
    }
  }
}
