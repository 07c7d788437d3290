import type { OpenedContainer } from './container-reader';

/** One stored record: container and record number. */
export interface ObjectLocation {
  c: OpenedContainer;
  i: number;
}

/**
 * Every record of every container, sorted by object ID for binary search: 12 bytes per object
 * (a map keyed by hex strings would take several times that for half a million objects).
 */
export class LocationTable {
  private readonly starts: number[] = [];
  private readonly order: Uint32Array;
  private readonly prefixes: Uint32Array;
  /** One location object per record, made when first asked for (callers compare them by identity). */
  private readonly locations: Array<ObjectLocation | undefined>;
  private readonly ofContainer: Map<OpenedContainer, number> = new Map();

  constructor(private readonly containers: OpenedContainer[]) {
    let total = 0;
    for (const c of containers) {
      this.ofContainer.set(c, this.starts.length);
      this.starts.push(total);
      total += c.index.count;
    }
    this.prefixes = new Uint32Array(total);
    this.order = new Uint32Array(total);
    this.locations = new Array<ObjectLocation | undefined>(total);
    containers.forEach((c, k) => {
      for (let i = 0; i < c.index.count; i++) {
        const id = this.starts[k] + i;
        this.prefixes[id] = c.index.oids.readUInt32BE(i * c.index.hashLength);
        this.order[id] = id;
      }
    });
    this.order.sort((a, b) => this.prefixes[a] - this.prefixes[b] || this.compareFull(a, b));
  }

  get size(): number {
    return this.order.length;
  }

  find(raw: Buffer): ObjectLocation | undefined {
    if (raw.length < 4) return undefined;
    const prefix = raw.readUInt32BE(0);
    let lo = 0;
    let hi = this.order.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const id = this.order[mid];
      const c = this.prefixes[id] !== prefix ? (this.prefixes[id] < prefix ? -1 : 1) : this.compareWith(id, raw);
      if (c === 0) return this.location(id);
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }

  id(loc: ObjectLocation): number {
    return this.starts[this.ofContainer.get(loc.c)!] + loc.i;
  }

  at(c: OpenedContainer, i: number): ObjectLocation {
    return this.location(this.starts[this.ofContainer.get(c)!] + i);
  }

  private location(id: number): ObjectLocation {
    let loc = this.locations[id];
    if (!loc) {
      const k = this.containerOf(id);
      loc = { c: this.containers[k], i: id - this.starts[k] };
      this.locations[id] = loc;
    }
    return loc;
  }

  private containerOf(id: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1;
      if (this.starts[mid] <= id) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private oidOf(id: number): Buffer {
    const k = this.containerOf(id);
    return this.containers[k].index.oid(id - this.starts[k]);
  }

  private compareFull(a: number, b: number): number {
    return this.oidOf(a).compare(this.oidOf(b));
  }

  private compareWith(id: number, raw: Buffer): number {
    return this.oidOf(id).compare(raw);
  }
}
