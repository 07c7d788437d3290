import { createHash } from 'node:crypto';
import { KmscryptError } from '../errors';
import { historyKey, manifestKey, MANIFEST_LIMIT, MANIFEST_PREAMBLE_LIMIT, MANIFEST_READ } from '../format/constants';
import { historyLimit, History, openHistory } from '../format/history';
import { HistoryRef, openManifest, parseManifestEnvelope, parseManifestPreamble } from '../format/manifest';
import { objectTooLarge } from '../storage/storage';
import type { ChainSource, ManifestLink } from './manifest-chain';
import type { RemoteRepository } from './remote-repository';

/** Manifests read at once while a chain is walked; each holds at most its first MiB in memory. */
const IN_FLIGHT = 4;

interface Fetched {
  hash: string;
  /** The first MANIFEST_PREAMBLE_LIMIT bytes (the whole manifest when it is no longer). */
  head: Buffer;
  size: number;
}

/**
 * The manifests of generations `from` … `to` (those stored) as the chain walk needs them: each
 * is streamed once, hashed over its stored bytes and size-capped, keeping only its preamble;
 * IN_FLIGHT are read at once, ahead of the walk. A version 3 link needs nothing else; a version
 * 1 or 2 manifest (an older writer's) is opened, one Decrypt per distinct data key, and only once
 * its bytes hash to what its successor names.
 */
export function storeChainSource(repo: RemoteRepository, stored: ReadonlySet<number>, from: number, to: number): ChainSource {
  // The walk asks for them newest first: each one is started IN_FLIGHT steps ahead of its turn.
  const order = [...stored].filter((g) => g >= from && g <= to).sort((a, b) => b - a);
  const started = new Map<number, Promise<Fetched>>();
  let position = 0;
  const start = (g: number) => {
    const p = hashManifest(repo, g);
    p.catch(() => undefined); // awaited by link(); this only keeps an early rejection from being "unhandled"
    started.set(g, p);
    return p;
  };
  const fill = () => {
    for (let i = position; i < Math.min(order.length, position + IN_FLIGHT); i++) if (!started.has(order[i])) void start(order[i]);
  };
  fill();
  return {
    stored,
    async link(generation: number, expected: string): Promise<ManifestLink> {
      const pending = started.get(generation) ?? start(generation);
      started.delete(generation);
      position = Math.max(position, order.indexOf(generation) + 1);
      fill();
      const got = await pending;
      if (got.hash !== expected) return { hash: got.hash, previous: null, history: null };
      const what = `${repo.config.url}: manifest ${generation}`;
      const preamble = parseManifestPreamble(got.head, what);
      if (preamble.generation !== generation) {
        throw new KmscryptError('TAMPERED', `${what} is stored under the wrong generation (${preamble.generation})`, { unchanged: 'no ref was changed' });
      }
      if (preamble.previous !== undefined) return { hash: got.hash, previous: preamble.previous, history: preamble.history };
      // Versions 1 and 2 keep `previous` inside the encrypted body.
      const bytes = got.size <= got.head.length ? got.head : await repo.storage.get(manifestKey(generation), MANIFEST_READ);
      if (!bytes) throw disappeared(repo, generation);
      const env = parseManifestEnvelope(bytes, what);
      const dataKey = await repo.unwrapLegacyManifestKey(env);
      const manifest = openManifest(env, dataKey, repo.repositoryId, what);
      return { hash: got.hash, previous: manifest.previous, history: null };
    },
    async history(ref: HistoryRef): Promise<History> {
      const key = historyKey(ref.hash);
      const bytes = await repo.storage.get(key, { maxBytes: historyLimit(ref), what: 'history object' });
      if (!bytes) {
        throw new KmscryptError('TAMPERED', `${repo.config.url}: ${key}, the history object manifest ${ref.generation} names, is missing from the store`, {
          unchanged: 'no ref was changed',
        });
      }
      return openHistory(bytes, ref, `${repo.config.url}: ${key}`);
    },
  };
}

/** Streams one manifest: SHA-256 of all its bytes, its first bytes, its size (at most MANIFEST_LIMIT). */
async function hashManifest(repo: RemoteRepository, generation: number): Promise<Fetched> {
  const key = manifestKey(generation);
  const stream = await repo.storage.getStream(key).catch((err: unknown) => {
    if (err instanceof KmscryptError && err.code === 'STORAGE') throw disappeared(repo, generation);
    throw err;
  });
  const hash = createHash('sha256');
  const head: Buffer[] = [];
  let headLength = 0;
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MANIFEST_LIMIT) throw objectTooLarge(repo.storage.location, key, undefined, MANIFEST_READ);
      hash.update(chunk);
      if (headLength < MANIFEST_PREAMBLE_LIMIT) {
        const part = chunk.subarray(0, MANIFEST_PREAMBLE_LIMIT - headLength);
        head.push(Buffer.from(part));
        headLength += part.length;
      }
    }
  } finally {
    stream.destroy();
  }
  return { hash: hash.digest('hex'), head: Buffer.concat(head), size };
}

function disappeared(repo: RemoteRepository, generation: number): KmscryptError {
  return new KmscryptError('STORAGE', `${repo.config.url}: manifest ${generation} disappeared while being read (a gc under way?)`, { fix: 'try again' });
}
