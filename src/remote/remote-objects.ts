import { constants as zlibConstants, inflateSync } from 'node:zlib';
import { KmscryptError } from '../errors';
import { DELTA_TYPE } from '../format/container-index';
import { applyDelta, parseDeltaHeader } from '../git/delta';
import { objectId } from '../git/git-object';
import { ByteBoundedCache } from './byte-bounded-cache';
import { LARGE_RECORD, OpenedContainer, planRuns, readRun } from './container-reader';
import { LocationTable, ObjectLocation } from './location-table';
import type { RemoteRepository } from './remote-repository';

export interface GitObject {
  type: number;
  data: Buffer;
}

/** Decrypted payloads kept for re-use (walks read neighbours again, and the pack sends them). */
const PAYLOAD_CACHE_BYTES = 48 << 20;
/** Inflated objects kept, so that a chain of deltas is resolved once and not once per object on it. */
const CONTENT_CACHE_BYTES = 32 << 20;
/**
 * Larger payloads are not kept: the walks re-use small commits and trees, while a large blob's
 * record is read once, to be sent or rebuilt, and would push them out. Rebuilt objects up to a
 * quarter of their cache are kept, for the other deltas of their chain.
 */
const CACHED_PAYLOAD_LIMIT = 1 << 20;
const CACHED_OBJECT_LIMIT = CONTENT_CACHE_BYTES / 4;
/** Objects larger than this are not rebuilt in memory; their stored records are sent instead. */
const RESOLVE_LIMIT = 64 << 20;
/** Runs read at once: a walk's level scatters over a container. */
const PARALLEL_RUNS = 4;
/** A delta chain longer than this is refused as a loop (git's own chains stop at 50 by default). */
const MAX_CHAIN = 10_000;

/**
 * The objects of a set of opened containers, looked up by ID and read one by one rather than a
 * container at a time: the shallow and partial fetches choose objects by walking history, so they
 * read records by ranged GETs, resolve deltas here (inflate, apply) and check every object they
 * rebuild against its ID before anything depends on it.
 */
export class RemoteObjects {
  readonly hashName: 'sha1' | 'sha256';
  private readonly table: LocationTable;
  private readonly payloads = new ByteBoundedCache<number, Buffer>(PAYLOAD_CACHE_BYTES);
  private readonly contents = new ByteBoundedCache<number, GitObject>(CONTENT_CACHE_BYTES);
  private readonly verified = new Set<number>();
  /** Object types of delta records, once worked out (0: not yet). */
  private readonly types: Uint8Array;

  constructor(
    private readonly repo: RemoteRepository,
    readonly containers: OpenedContainer[],
  ) {
    this.hashName = repo.descriptor.objectFormat === 'sha1' ? 'sha1' : 'sha256';
    this.table = new LocationTable(containers);
    this.types = new Uint8Array(this.table.size);
  }

  locate(oid: string): ObjectLocation | undefined {
    return this.table.find(Buffer.from(oid, 'hex'));
  }

  /** The location of a raw object ID (as the index holds delta bases). */
  locateRaw(oid: Buffer): ObjectLocation | undefined {
    return this.table.find(oid);
  }

  /** A number per record, 0 to `size` − 1, for sets of records kept in typed arrays. */
  idOf(loc: ObjectLocation): number {
    return this.table.id(loc);
  }

  /** How many records the containers hold. */
  get size(): number {
    return this.table.size;
  }

  /** The location of an object the store must have: a missing one is a broken store (or a bad request). */
  require(oid: string, what: string): ObjectLocation {
    const loc = this.locate(oid);
    if (!loc) throw new KmscryptError('CORRUPT', `${this.repo.config.url} does not hold ${what} ${oid}`, { oid, fix: `run 'git kmscrypt verify' on it` });
    return loc;
  }

  /** The object type of a record, following its delta bases through the indexes (nothing is read). */
  typeOf(loc: ObjectLocation): number {
    const chain: number[] = [];
    let type = 0;
    for (let at = loc; ; at = this.baseOf(at)) {
      const id = this.table.id(at);
      type = this.types[id] || (at.c.index.types[at.i] !== DELTA_TYPE ? at.c.index.types[at.i] : 0);
      if (type) break;
      chain.push(id);
      if (chain.length > MAX_CHAIN) throw this.corrupt(loc, 'its delta chain loops');
    }
    for (const id of chain) this.types[id] = type;
    return type;
  }

  /** Every record once (an object stored in two containers counts once), in container order. */
  *records(): Generator<ObjectLocation> {
    const several = this.containers.length > 1;
    for (const c of this.containers) {
      for (let i = 0; i < c.index.count; i++) {
        const loc = this.table.at(c, i);
        if (several && this.locateRaw(c.index.oid(i)) !== loc) continue;
        yield loc;
      }
    }
  }

  baseOf(loc: ObjectLocation): ObjectLocation {
    const base = loc.c.index.base(loc.i);
    return this.table.find(base) ?? this.require(base.toString('hex'), `the delta base of ${loc.c.index.oidHex(loc.i)}:`);
  }

  /** Whether a record is streamed rather than read into memory (see large-record.ts). */
  isLarge(loc: ObjectLocation): boolean {
    return !loc.c.index.inSegment(loc.i) && loc.c.index.lengths[loc.i] > LARGE_RECORD;
  }

  /**
   * Whether `objects` rebuilds this object: no record of its delta chain is too large for memory
   * and no whole object on it exceeds RESOLVE_LIMIT.
   */
  canRebuild(loc: ObjectLocation): boolean {
    for (let at: ObjectLocation | undefined = loc, n = 0; at; n++) {
      if (n > MAX_CHAIN) throw this.corrupt(loc, 'its delta chain loops');
      if (this.isLarge(at)) return false;
      if (at.c.index.types[at.i] !== DELTA_TYPE) return at.c.index.sizes[at.i] <= RESOLVE_LIMIT;
      at = this.baseOf(at);
    }
    return true;
  }

  /** The size of the whole object a delta chain starts from: about the size of the objects it makes. */
  chainBaseSize(loc: ObjectLocation): number {
    let at = loc;
    for (let n = 0; at.c.index.types[at.i] === DELTA_TYPE && n <= MAX_CHAIN; n++) at = this.baseOf(at);
    return at.c.index.sizes[at.i];
  }

  /** A decrypted payload already in memory, if any. */
  cachedPayload(loc: ObjectLocation): Buffer | undefined {
    return this.payloads.get(this.table.id(loc));
  }

  /**
   * The objects, rebuilt (inflated, deltas applied) and checked against their IDs; records are
   * read in one batch of runs. Objects canRebuild declines are left out of the answer.
   */
  async objects(locs: ObjectLocation[]): Promise<Map<ObjectLocation, GitObject>> {
    const pending = new Map<number, Buffer>();
    /** Rebuilt objects the chains stop at, held here in case the cache drops them meanwhile. */
    const known = new Map<number, GitObject>();
    const toRead: ObjectLocation[] = [];
    const declined = new Set<ObjectLocation>();
    for (const loc of locs) {
      const chain: ObjectLocation[] = [];
      for (let at: ObjectLocation | undefined = loc; at;) {
        const id = this.table.id(at);
        const cached = known.get(id) ?? this.contents.get(id);
        if (cached) {
          known.set(id, cached);
          break;
        }
        if (this.isLarge(at) || (at.c.index.types[at.i] !== DELTA_TYPE && at.c.index.sizes[at.i] > RESOLVE_LIMIT)) {
          declined.add(loc); // as canRebuild says
          break;
        }
        chain.push(at);
        if (chain.length > MAX_CHAIN) throw this.corrupt(loc, 'its delta chain loops');
        at = at.c.index.types[at.i] === DELTA_TYPE ? this.baseOf(at) : undefined;
      }
      if (declined.has(loc)) continue;
      for (const at of chain) {
        const payload = this.payloads.get(this.table.id(at));
        if (payload) pending.set(this.table.id(at), payload);
        else toRead.push(at);
      }
    }
    await this.read(toRead, (loc, payload) => pending.set(this.table.id(loc), payload));

    const out = new Map<ObjectLocation, GitObject>();
    for (const loc of locs) {
      if (declined.has(loc)) continue;
      out.set(loc, this.rebuild(loc, pending, known));
    }
    return out;
  }

  /**
   * The size of each object: from the index for a whole object; for a delta, from the header of
   * its delta (the record is read and the start of it inflated).
   */
  async sizes(locs: ObjectLocation[]): Promise<Map<ObjectLocation, number>> {
    const out = new Map<ObjectLocation, number>();
    const deltas: ObjectLocation[] = [];
    for (const loc of locs) {
      if (loc.c.index.types[loc.i] !== DELTA_TYPE) out.set(loc, loc.c.index.sizes[loc.i]);
      else if (this.isLarge(loc))
        out.set(loc, Number.MAX_SAFE_INTEGER); // a delta over 16 MiB makes an object at least as large
      else deltas.push(loc);
    }
    const sizeOf = (loc: ObjectLocation, payload: Buffer) => {
      // The header is in the first bytes of the delta: inflate a prefix, the whole only if that is not enough.
      try {
        return parseDeltaHeader(inflateSync(payload.subarray(0, 512), { finishFlush: zlibConstants.Z_SYNC_FLUSH })).resultSize;
      } catch {
        return this.deltaHeader(loc, this.inflate(loc, payload)).resultSize;
      }
    };
    const toRead: ObjectLocation[] = [];
    for (const loc of deltas) {
      const payload = this.payloads.get(this.table.id(loc));
      if (payload) out.set(loc, sizeOf(loc, payload));
      else toRead.push(loc);
    }
    await this.read(toRead, (loc, payload) => out.set(loc, sizeOf(loc, payload)));
    return out;
  }

  /**
   * Reads records (whole units, as they are sealed) and hands each selected payload to `onPayload`;
   * every payload of the units read is also kept in the cache for later requests.
   */
  async read(locs: ObjectLocation[], onPayload: (loc: ObjectLocation, payload: Buffer) => void): Promise<void> {
    const byContainer = new Map<OpenedContainer, Set<number>>();
    for (const { c, i } of locs) {
      if (!byContainer.has(c)) byContainer.set(c, new Set());
      byContainer.get(c)!.add(i);
    }
    const jobs: Array<() => Promise<void>> = [];
    for (const [c, set] of byContainer) {
      const records = [...set].sort((a, b) => a - b);
      const units = new Set(records.map((i) => c.index.unitFirst[i]));
      for (const run of planRuns(c.index, records)) {
        if (run.large) throw new KmscryptError('INTERNAL', 'a record too large for memory was asked for in memory');
        jobs.push(async () => {
          for await (const { i, payload } of readRun(this.repo, c, run, (k) => units.has(c.index.unitFirst[k]))) {
            const loc = this.table.at(c, i);
            if (payload.length <= CACHED_PAYLOAD_LIMIT) this.payloads.set(this.table.id(loc), payload, payload.length);
            if (set.has(i)) onPayload(loc, payload);
          }
        });
      }
    }
    let next = 0;
    const worker = async () => {
      while (next < jobs.length) await jobs[next++]();
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_RUNS, jobs.length) }, worker));
  }

  /** The canonical location object for (container, record), as `locate` returns it. */
  at(c: OpenedContainer, i: number): ObjectLocation {
    return this.table.at(c, i);
  }

  private rebuild(loc: ObjectLocation, pending: Map<number, Buffer>, known: Map<number, GitObject>): GitObject {
    // Iterative: walk down to a rebuilt object or a whole one, then apply the deltas upwards.
    const chain: ObjectLocation[] = [];
    let base: GitObject | undefined;
    for (let at: ObjectLocation = loc; ; at = this.baseOf(at)) {
      const cached = known.get(this.table.id(at)) ?? this.contents.get(this.table.id(at));
      if (cached) {
        base = cached;
        break;
      }
      chain.push(at);
      if (at.c.index.types[at.i] !== DELTA_TYPE) break;
    }
    for (let k = chain.length - 1; k >= 0; k--) {
      const at = chain[k];
      const id = this.table.id(at);
      const payload = pending.get(id) ?? this.payloads.get(id);
      if (!payload) throw new KmscryptError('INTERNAL', `record ${at.i} of container ${at.c.ref.id} was not read`);
      const inflated = this.inflate(at, payload);
      let object: GitObject;
      if (at.c.index.types[at.i] === DELTA_TYPE) {
        const header = this.deltaHeader(at, inflated);
        if (header.resultSize > RESOLVE_LIMIT) {
          throw new KmscryptError(
            'TOO_LARGE',
            `object ${at.c.index.oidHex(at.i)} would be rebuilt in memory at ${header.resultSize} bytes, over the ${RESOLVE_LIMIT}-byte limit`,
          );
        }
        try {
          object = { type: base!.type, data: applyDelta(base!.data, inflated) };
        } catch (err) {
          throw this.corrupt(at, `its delta does not apply to its base (${(err as Error).message})`);
        }
      } else {
        if (inflated.length !== at.c.index.sizes[at.i])
          throw this.corrupt(at, `it inflates to ${inflated.length} bytes, the index says ${at.c.index.sizes[at.i]}`);
        object = { type: at.c.index.types[at.i], data: inflated };
      }
      if (object.data.length <= CACHED_OBJECT_LIMIT) this.contents.set(id, object, object.data.length);
      base = object;
    }
    if (!base) throw new KmscryptError('INTERNAL', 'an empty delta chain');
    const id = this.table.id(loc);
    if (!this.verified.has(id)) {
      if (objectId(base.type, base.data, this.hashName) !== loc.c.index.oidHex(loc.i)) {
        throw new KmscryptError(
          'TAMPERED',
          `object ${loc.c.index.oidHex(loc.i)} in container ${loc.c.ref.id} decrypted to content with another ID; the repository was written by a faulty or hostile client`,
        );
      }
      this.verified.add(id);
    }
    return base;
  }

  private inflate(at: ObjectLocation, payload: Buffer): Buffer {
    try {
      return inflateSync(payload);
    } catch {
      throw this.corrupt(at, 'its payload does not inflate');
    }
  }

  private deltaHeader(at: ObjectLocation, delta: Buffer) {
    try {
      return parseDeltaHeader(delta);
    } catch {
      throw this.corrupt(at, 'its delta header is malformed');
    }
  }

  private corrupt(at: ObjectLocation, why: string): KmscryptError {
    return new KmscryptError('CORRUPT', `object ${at.c.index.oidHex(at.i)} in container ${at.c.ref.id}: ${why}`, { fix: `run 'git kmscrypt verify'` });
  }
}
