import { KmscryptError } from '../errors';
import { containerKey } from '../format/constants';
import { decodeTrailer, openIndex, sha256Hex, TRAILER_LENGTH } from '../format/container';
import type { ContainerIndex } from '../format/container-index';
import type { ContainerRef } from '../format/manifest';
import { openRecord, RecordKeys, recordKeys } from '../format/record';
import type { RemoteRepository } from './remote-repository';

export interface OpenedContainer {
  ref: ContainerRef;
  index: ContainerIndex;
  keys: RecordKeys;
}

/**
 * Reads a container's index with one ranged GET (index and trailer), checks it is the one the
 * manifest names, and decrypts it with the container's data key.
 */
export async function openContainer(repo: RemoteRepository, ref: ContainerRef): Promise<OpenedContainer> {
  const what = `container ${ref.id}`;
  const tail = await repo.storage.getRange(containerKey(ref.id), { start: ref.indexOffset, end: ref.size });
  if (tail.length !== ref.indexLength + TRAILER_LENGTH) {
    throw new KmscryptError('TAMPERED', `${what} does not match the manifest (index length); it was altered or truncated`);
  }
  const trailer = decodeTrailer(tail.subarray(ref.indexLength), ref.size, what);
  const sealed = tail.subarray(0, ref.indexLength);
  if (trailer.indexOffset !== ref.indexOffset || sha256Hex(sealed) !== ref.indexHash) {
    throw new KmscryptError('TAMPERED', `${what} does not match the manifest: it was altered or replaced; nothing was handed to git`);
  }
  const dataKey = await repo.dataKeys.unwrap(Buffer.from(ref.wrappedKey, 'base64'), ref.keyId);
  const containerId = Buffer.from(ref.id, 'hex');
  const index = openIndex(dataKey, repo.repositoryId, containerId, sealed, ref.indexOffset, what);
  if (index.count !== ref.objects) throw new KmscryptError('TAMPERED', `${what} holds ${index.count} objects, the manifest says ${ref.objects}`);
  return { ref, index, keys: recordKeys(dataKey, repo.repositoryId, containerId) };
}

/** A run of consecutive records read with one (ranged) GET; a large record is a run of its own. */
export interface RecordRun {
  first: number;
  last: number;
  large: boolean;
}

/** Records above this are streamed through a temporary file instead of memory (see large-record.ts). */
export const LARGE_RECORD = 16 << 20;

/** Groups selected record numbers into runs, merging across small gaps to save requests. */
export function planRuns(index: ContainerIndex, selected: number[], maxGap = 256 << 10): RecordRun[] {
  const runs: RecordRun[] = [];
  for (const i of selected) {
    const large = index.lengths[i] > LARGE_RECORD;
    const run = runs[runs.length - 1];
    if (run && !run.large && !large && i > run.last && index.offsets[i] - (index.offsets[run.last] + index.lengths[run.last]) <= maxGap) run.last = i;
    else runs.push({ first: i, last: i, large });
  }
  return runs;
}

/**
 * Streams the records of one run and yields each selected one, authenticated and decrypted.
 * Nothing is yielded for a record whose tag or MAC does not verify.
 */
export async function* readRun(
  repo: RemoteRepository,
  c: OpenedContainer,
  run: RecordRun,
  wanted: (i: number) => boolean,
): AsyncGenerator<{ i: number; payload: Buffer }> {
  const { index } = c;
  // A run from the first record also reads the preamble, so that a reader of the whole
  // container has checked every byte of it.
  const withPreamble = run.first === 0;
  const start = withPreamble ? 0 : index.offsets[run.first];
  const end = index.offsets[run.last] + index.lengths[run.last];
  const stream = await repo.storage.getStream(containerKey(c.ref.id), { start, end });
  let pending: Buffer[] = [];
  let pendingLength = 0;
  let preambleChecked = !withPreamble;
  let i = run.first;
  let recordEnd = index.offsets[i] + index.lengths[i];
  let position = start;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    pending.push(chunk);
    pendingLength += chunk.length;
    if (!preambleChecked) {
      if (pendingLength < c.ref.preambleLength) continue;
      const all = Buffer.concat(pending, pendingLength);
      if (c.ref.preambleLength !== index.recordsStart || sha256Hex(all.subarray(0, c.ref.preambleLength)) !== c.ref.preambleHash) {
        throw new KmscryptError('TAMPERED', `container ${c.ref.id} does not match the manifest (preamble altered); nothing was handed to git`);
      }
      const rest = all.subarray(c.ref.preambleLength);
      pending = rest.length ? [rest] : [];
      pendingLength = rest.length;
      position = c.ref.preambleLength;
      preambleChecked = true;
    }
    while (i <= run.last && position + pendingLength >= recordEnd) {
      const all = pending.length === 1 ? pending[0] : Buffer.concat(pending, pendingLength);
      const take = recordEnd - position;
      const sealed = all.subarray(0, take);
      const rest = all.subarray(take);
      pending = rest.length ? [rest] : [];
      pendingLength = rest.length;
      position = recordEnd;
      if (wanted(i)) {
        const header = { oid: index.oid(i), type: index.types[i], size: index.sizes[i], base: index.base(i) };
        yield { i, payload: openRecord(c.keys, i, header, sealed, `object ${index.oidHex(i)} in container ${c.ref.id}`) };
      }
      i++;
      if (i <= run.last) recordEnd = index.offsets[i] + index.lengths[i];
    }
  }
  if (i <= run.last) {
    throw new KmscryptError('TAMPERED', `container ${c.ref.id} is truncated (ended inside object ${index.oidHex(i)}); nothing was handed to git`);
  }
}
