import { KmscryptError } from '../errors';
import { containerKey } from '../format/constants';
import { decodeTrailer, openIndex, sha256Hex, TRAILER_LENGTH } from '../format/container';
import type { ContainerIndex } from '../format/container-index';
import type { ContainerRef } from '../format/manifest';
import { openRecord, RecordKeys, recordKeys } from '../format/record';
import { openSegment } from '../format/segment';
import { DELTA_TYPE } from '../format/container-index';
import { OBJ_REF_DELTA } from '../git/pack-format';
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
  // The wrapped key comes from the authenticated manifest, so KMS is asked while the index is
  // read; the store's bytes are still checked first, and their failure is the one reported.
  const unwrapping = repo.dataKeys.unwrap(Buffer.from(ref.wrappedKey, 'base64'), ref.keyId);
  unwrapping.catch(() => undefined);
  const tail = await repo.storage.getRange(containerKey(ref.id), { start: ref.indexOffset, end: ref.size });
  if (tail.length !== ref.indexLength + TRAILER_LENGTH) {
    throw new KmscryptError('TAMPERED', `${what} does not match the manifest (index length); it was altered or truncated`);
  }
  const trailer = decodeTrailer(tail.subarray(ref.indexLength), ref.size, what);
  const sealed = tail.subarray(0, ref.indexLength);
  if (trailer.indexOffset !== ref.indexOffset || sha256Hex(sealed) !== ref.indexHash) {
    throw new KmscryptError('TAMPERED', `${what} does not match the manifest: it was altered or replaced`, { unchanged: 'nothing was handed to git' });
  }
  const dataKey = await unwrapping;
  const containerId = Buffer.from(ref.id, 'hex');
  // From version 3 on, openIndex first checks that the data key is the one the manifest commits to.
  const commitment = ref.commitment === undefined ? null : Buffer.from(ref.commitment, 'hex');
  const index = openIndex(dataKey, repo.repositoryId, containerId, sealed, ref.indexOffset, what, ref.version ?? 1, commitment);
  if (index.count !== ref.objects) throw new KmscryptError('TAMPERED', `${what} holds ${index.count} objects, the manifest says ${ref.objects}`);
  return { ref, index, keys: recordKeys(dataKey, repo.repositoryId, containerId) };
}

/**
 * Record i's type in a pack given to git: a delta goes as REF_DELTA, naming its base by ID
 * (`index.base(i)`, which the entry header ignores for any other type).
 */
export function packTypeOf(index: ContainerIndex, i: number): number {
  return index.types[i] === DELTA_TYPE ? OBJ_REF_DELTA : index.types[i];
}

/**
 * Opens the indexes of many containers, 16 at a time: each is a small ranged GET and a Decrypt,
 * independent of the others, and a store that was never gc'd after many one-commit pushes has
 * one container per push (a clone opens them all). Every index is kept anyway, so the number in
 * flight does not change the peak memory.
 */
const OPEN_CONCURRENCY = 16;

/** The indexes of `refs`, in their order (see OPEN_CONCURRENCY). */
export async function openContainers(repo: RemoteRepository, refs: ContainerRef[]): Promise<OpenedContainer[]> {
  const out: OpenedContainer[] = new Array(refs.length);
  let next = 0;
  const worker = async () => {
    while (next < refs.length) {
      const k = next++;
      out[k] = await openContainer(repo, refs[k]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(OPEN_CONCURRENCY, refs.length) }, worker));
  return out;
}

/**
 * A run of consecutive records read with one (ranged) GET; a large record is a run of its own.
 * A run starts and ends on unit boundaries (a segment is authenticated whole, so it is read whole).
 */
export interface RecordRun {
  first: number;
  last: number;
  large: boolean;
}

/** Records above this are streamed through a temporary file instead of memory (see large-record.ts). */
export const LARGE_RECORD = 16 << 20;

/**
 * Groups selected record numbers (ascending) into runs of whole units, merging across small
 * gaps to save requests.
 */
export function planRuns(index: ContainerIndex, selected: number[], maxGap = 256 << 10): RecordRun[] {
  const runs: RecordRun[] = [];
  for (const i of selected) {
    const run = runs[runs.length - 1];
    if (run && i <= run.last) continue; // in a unit the run already reads
    const first = index.unitFirst[i];
    const last = index.unitLast(i);
    const large = !index.inSegment(i) && index.lengths[i] > LARGE_RECORD;
    if (run && !run.large && !large && index.offsets[first] - (index.offsets[run.last] + index.lengths[run.last]) <= maxGap) run.last = last;
    else runs.push({ first, last, large });
  }
  return runs;
}

/**
 * Streams the records of one run and yields each selected one, authenticated and decrypted.
 * Nothing is yielded for a record whose unit (record or segment) does not verify.
 */
export async function* readRun(
  repo: RemoteRepository,
  c: OpenedContainer,
  run: RecordRun,
  wanted: (i: number) => boolean,
): AsyncGenerator<{ i: number; payload: Buffer }> {
  for await (const unit of readUnits(repo, c, run, wanted)) {
    for (let k = unit.first; k <= unit.last; k++) if (wanted(k)) yield { i: k, payload: unit.payload(k) };
  }
}

/** One authenticated unit (a segment, or a record sealed alone): records first to last. */
export interface OpenedUnit {
  first: number;
  last: number;
  /** Record k's decrypted payload (first <= k <= last). */
  payload(k: number): Buffer;
}

/**
 * readRun by unit: each unit of the run that holds a selected record, authenticated and
 * decrypted, so that a reader of many small records (a clone) pays per segment, not per object.
 */
export async function* readUnits(
  repo: RemoteRepository,
  c: OpenedContainer,
  run: RecordRun,
  wanted: (i: number) => boolean,
): AsyncGenerator<OpenedUnit> {
  const { index } = c;
  // A run from the first record also reads the preamble, so that a reader of the whole
  // container has checked every byte of it.
  const withPreamble = run.first === 0;
  const start = withPreamble ? 0 : index.offsets[run.first];
  const end = index.offsets[run.last] + index.lengths[run.last];
  const stream = await repo.storage.getStream(containerKey(c.ref.id), { start, end });
  let preambleChecked = !withPreamble;
  let i = run.first;
  let position = start;
  /** End of the unit that starts with record i. */
  const unitEnd = (i: number) => {
    const last = index.unitLast(i);
    return index.offsets[last] + index.lengths[last];
  };
  /** Whether the unit that starts with record i holds a wanted record; if not, its bytes are passed over, not gathered. */
  const unitWanted = (i: number) => {
    const last = index.unitLast(i);
    for (let k = i; k <= last; k++) if (wanted(k)) return true;
    return false;
  };
  /** Length of the frame being read: the preamble, then the unit of record i up to its end. */
  let frameLength = withPreamble ? c.ref.preambleLength : unitEnd(i) - position;
  let skip = !withPreamble && !unitWanted(i);
  // A frame split across chunks is gathered here; one buffer, reused, so that records are
  // not copied out of the chunks they arrive in (fresh large allocations are slow).
  let carry = Buffer.alloc(0);
  let carried = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    let at = 0;
    while (at < chunk.length && i <= run.last) {
      if (skip) {
        // A unit read only because it lies between wanted ones (runs merge across small gaps).
        const n = Math.min(frameLength - carried, chunk.length - at);
        carried += n;
        at += n;
        if (carried < frameLength) break;
        carried = 0;
        position += frameLength;
        i = index.unitLast(i) + 1;
        if (i <= run.last) {
          frameLength = unitEnd(i) - position;
          skip = !unitWanted(i);
        }
        continue;
      }
      let frame: Buffer;
      if (carried === 0 && chunk.length - at >= frameLength) {
        frame = chunk.subarray(at, at + frameLength);
        at += frameLength;
      } else {
        if (carry.length < frameLength) carry = Buffer.allocUnsafeSlow(Math.max(frameLength, 64 << 10));
        const n = Math.min(frameLength - carried, chunk.length - at);
        chunk.copy(carry, carried, at, at + n);
        carried += n;
        at += n;
        if (carried < frameLength) break;
        frame = carry.subarray(0, frameLength);
        carried = 0;
      }
      position += frameLength;
      if (!preambleChecked) {
        if (c.ref.preambleLength !== index.recordsStart || sha256Hex(frame) !== c.ref.preambleHash) {
          throw new KmscryptError('TAMPERED', `container ${c.ref.id} does not match the manifest (preamble altered)`, {
            unchanged: 'nothing was handed to git',
          });
        }
        preambleChecked = true;
      } else if (index.inSegment(i)) {
        const last = index.unitLast(i);
        const plaintext = openSegment(c.keys, i, frame, unitName(c, i));
        const base = index.offsets[i];
        yield { first: i, last, payload: (k) => plaintext.subarray(index.offsets[k] - base, index.offsets[k] - base + index.payloadLength(k)) };
        i = last + 1;
      } else {
        const header = { oid: index.oid(i), type: index.types[i], size: index.sizes[i], base: index.base(i) };
        const payload = openRecord(c.keys, i, header, frame, unitName(c, i));
        yield { first: i, last: i, payload: () => payload };
        i++;
      }
      if (i <= run.last) {
        frameLength = unitEnd(i) - position;
        skip = !unitWanted(i);
      }
    }
  }
  if (i <= run.last) {
    throw new KmscryptError('TAMPERED', `container ${c.ref.id} is truncated (ended inside object ${index.oidHex(i)})`, {
      unchanged: 'nothing was handed to git',
    });
  }
}

/** How failures name the unit that starts with record i: the object, or the segment's objects. */
export function unitName(c: OpenedContainer, i: number): string {
  const last = c.index.unitLast(i);
  if (last === i) return `object ${c.index.oidHex(i)} in container ${c.ref.id}`;
  return `segment of ${last - i + 1} objects, ${c.index.oidHex(i)} to ${c.index.oidHex(last)}, in container ${c.ref.id}`;
}
