import { attestedHash, History } from '../format/history';
import type { HistoryRef } from '../format/manifest';

/** What the chain walk needs of one stored manifest (docs/FORMAT.md §8.1). */
export interface ManifestLink {
  /** SHA-256 (hex) of its stored bytes. */
  hash: string;
  /** SHA-256 (hex) of its predecessor's stored bytes; null for generation 1. */
  previous: string | null;
  /** The newest history object when it was written (version 3), or null. */
  history: HistoryRef | null;
}

/** Where the walk reads from: the store, or a test's table. */
export interface ChainSource {
  /** Generations the store holds, at least those between the one seen and the newest. */
  readonly stored: ReadonlySet<number>;
  /**
   * Manifest `generation`. When its bytes do not hash to `expected` the source returns their
   * hash without reading further (the walk then reports the fork): a manifest of version 1 or 2,
   * whose `previous` is inside its encrypted body, is opened only once its bytes are vouched for.
   */
  link(generation: number, expected: string): Promise<ManifestLink>;
  /** The history object `ref` names, its bytes checked against `ref.hash`. */
  history(ref: HistoryRef): Promise<History>;
}

export type Descent =
  | { proved: true }
  /** Manifest `at` (or the hash attested for it) is not the one the chain from the newest needs. */
  | { proved: false; reason: 'fork'; at: number }
  /** Manifest `at` is gone from the store and no history object attests its hash. */
  | { proved: false; reason: 'unattested'; at: number };

/**
 * Proves that `newest` (already authenticated) descends from the manifest this clone saw
 * (`seen`), by the hash chain over stored bytes (docs/FORMAT.md §9.1): each manifest from the
 * newest down names its predecessor's hash. Manifests gc removed are vouched for by the history
 * objects it wrote (their hashes are bound by an authenticated manifest's preamble). No KMS call
 * is made for manifests of version 3; the source decides how versions 1 and 2 are read.
 */
export async function proveDescent(seen: { generation: number; hash: string }, newest: { generation: number; link: ManifestLink }, source: ChainSource): Promise<Descent> {
  let expected = newest.link.previous;
  let lowest = newest.link;
  let g = newest.generation - 1;
  for (; g > seen.generation && source.stored.has(g); g--) {
    if (expected === null) return { proved: false, reason: 'fork', at: g + 1 };
    const link = await source.link(g, expected);
    if (link.hash !== expected) return { proved: false, reason: 'fork', at: g };
    expected = link.previous;
    lowest = link;
  }
  if (g === seen.generation) return expected === seen.hash ? { proved: true } : { proved: false, reason: 'fork', at: g };
  // Manifest g is gone: the history the lowest manifest read names must attest it, and then the one seen.
  let ref = lowest.history;
  if (!ref || ref.generation <= g || expected === null) return { proved: false, reason: 'unattested', at: g };
  let history = await source.history(ref);
  for (const [generation, hash] of [
    [g, expected],
    [seen.generation, seen.hash],
  ] as const) {
    while (generation < history.first) {
      if (!history.previous) return { proved: false, reason: 'unattested', at: generation };
      ref = { generation: history.first, hash: history.previous };
      history = await source.history(ref);
    }
    if (attestedHash(history, generation) !== hash) return { proved: false, reason: 'fork', at: generation };
  }
  return { proved: true };
}

/** One stored manifest as verify found it. */
export interface StoredLink {
  generation: number;
  /**
   * SHA-256 (hex) of its bytes when they may vouch for a successor: it was opened, or it is history
   * sealed under a retired key (its own successor vouches for it). Undefined when it failed.
   */
  hash?: string;
  /** The predecessor's hash it names (null: none), once opened; undefined when it was not. */
  previous?: string | null;
}

export type ChainBreak =
  /** Manifest 1 names a predecessor. */
  | { generation: number; kind: 'first-names-predecessor' }
  /** A manifest after the first names none. */
  | { generation: number; kind: 'names-no-predecessor' }
  /** Its predecessor's hash is not that of the stored manifest before it. */
  | { generation: number; kind: 'does-not-follow' };

/**
 * Where the stored manifests (in generation order) do not chain (docs/FORMAT.md §9.1): each opened
 * manifest must name its stored predecessor's hash, and only manifest 1 names none. A pair with a
 * gap between them (manifests removed by gc) or with a failed side is not compared.
 */
export function chainBreaks(links: readonly StoredLink[]): ChainBreak[] {
  const breaks: ChainBreak[] = [];
  let before: StoredLink | undefined;
  for (const link of links) {
    const { generation, previous } = link;
    if (previous !== undefined) {
      if (generation === 1 && previous !== null) breaks.push({ generation, kind: 'first-names-predecessor' });
      if (generation > 1 && previous === null) breaks.push({ generation, kind: 'names-no-predecessor' });
      if (before?.hash !== undefined && before.generation === generation - 1 && previous !== before.hash) breaks.push({ generation, kind: 'does-not-follow' });
    }
    before = link;
  }
  return breaks;
}
