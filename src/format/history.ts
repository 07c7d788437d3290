import { KmscryptError } from '../errors';
import { FORMAT_VERSION, Kind, MAGIC, unreadableVersion } from './constants';
import { ByteCursor, u64 } from './byte-cursor';
import { sha256Hex } from './container';
import type { HistoryRef } from './manifest';

/**
 * The hashes of manifests gc removes, so that a clone that slept past a gc can still prove that
 * the newest manifest descends from the one it saw (docs/FORMAT.md §8.2). Written by gc before
 * the manifest that refers to it (its `history` preamble field), stored as history/<SHA-256>,
 * never deleted. It lists the manifests `first` … `end − 1` (`end` is that gc manifest's
 * generation) and names the previous history object, which lists those below `first`.
 */
export interface History {
  first: number;
  end: number;
  /** SHA-256 (hex) of the previous history object, or null: manifests below `first` are not attested. */
  previous: string | null;
  /** SHA-256 (hex) of manifest `first + i`'s stored bytes. */
  hashes: string[];
}

const HEADER = 4 + 1 + 1 + 2 + 8 + 8 + 32;
const HASH = 32;
const ZERO = Buffer.alloc(HASH);

/** The most bytes the history object a manifest refers to can have: a cap before it is read. */
export function historyLimit(ref: HistoryRef): number {
  return HEADER + HASH * (ref.generation - 1);
}

export function encodeHistory(h: History): Buffer {
  if (h.first < 1 || h.end !== h.first + h.hashes.length || h.hashes.length === 0)
    throw new RangeError('a history lists first … end − 1, at least one manifest');
  const head = Buffer.alloc(8);
  MAGIC.copy(head, 0);
  head.writeUInt8(FORMAT_VERSION, 4);
  head.writeUInt8(Kind.History, 5);
  return Buffer.concat([head, u64(h.first), u64(h.end), h.previous ? Buffer.from(h.previous, 'hex') : ZERO, ...h.hashes.map((x) => Buffer.from(x, 'hex'))]);
}

/**
 * Parses a history object a manifest refers to, after checking that its bytes are the ones it
 * names (TAMPERED otherwise) and that it ends where that manifest is.
 */
export function openHistory(bytes: Buffer, ref: HistoryRef, what: string): History {
  if (sha256Hex(bytes) !== ref.hash) {
    throw new KmscryptError('TAMPERED', `${what} is not the history object manifest ${ref.generation} names (hash mismatch): it was altered or replaced`, {
      unchanged: 'no ref was changed',
    });
  }
  const bad = (why: string) => new KmscryptError('CORRUPT', `${what}: not a kmscrypt history object (${why})`);
  if (bytes.length < HEADER || !bytes.subarray(0, 4).equals(MAGIC)) throw bad('bad magic');
  if (bytes.readUInt8(4) !== 3) throw bad(unreadableVersion(bytes.readUInt8(4)));
  if (bytes.readUInt8(5) !== Kind.History) throw bad('not a history object');
  const c = new ByteCursor(bytes, bad, 8);
  const first = c.u64();
  const end = c.u64();
  const previous = c.bytes(HASH);
  if (first < 1 || end <= first || end !== ref.generation) throw bad(`it lists manifests ${first} to ${end - 1}, not up to ${ref.generation - 1}`);
  if (bytes.length !== HEADER + HASH * (end - first)) throw bad('its length does not match the manifests it lists');
  const hashes: string[] = [];
  for (let g = first; g < end; g++) hashes.push(c.bytes(HASH).toString('hex'));
  return { first, end, previous: previous.equals(ZERO) ? null : previous.toString('hex'), hashes };
}

/** The hash the history attests for manifest `generation`, or undefined outside first … end − 1. */
export function attestedHash(h: History, generation: number): string | undefined {
  return generation >= h.first && generation < h.end ? h.hashes[generation - h.first] : undefined;
}
