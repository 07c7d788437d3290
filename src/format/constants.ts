/**
 * Version of the stored format described in docs/FORMAT.md, written in every new container and
 * manifest. Version 2 seals small objects in segments (docs/FORMAT.md §5.6); version 3 adds key
 * commitment, and the hash chain, key and endorsements in the manifest's plaintext preamble
 * (§7.1). Manifests may list containers of any readable version, so readers read all three.
 */
export const FORMAT_VERSION = 3;
export const READABLE_VERSIONS: readonly number[] = [1, 2, 3];
/** Version 2 of the descriptor adds the location it was created at and a proof (docs/FORMAT.md §3). */
export const DESCRIPTOR_VERSION = 2;
export const READABLE_DESCRIPTOR_VERSIONS: readonly number[] = [1, 2];

/**
 * What a reader allocates at most for an object it has not authenticated yet (docs/FORMAT.md §2):
 * more is refused before it is read. A descriptor is under 2 KiB. A manifest holds every ref
 * (about 45 bytes each, compressed) and every container (about 500 bytes each until gc), so
 * 64 MiB is over a million refs; a writer never publishes a larger one.
 */
export const DESCRIPTOR_LIMIT = 64 << 10;
export const MANIFEST_LIMIT = 64 << 20;
/** The caps of whole-object reads (Storage.get), with what each object is called in a refusal. */
export const DESCRIPTOR_READ = { maxBytes: DESCRIPTOR_LIMIT, what: 'repository descriptor' } as const;
export const MANIFEST_READ = { maxBytes: MANIFEST_LIMIT, what: 'manifest' } as const;
/** A version 3 manifest's preamble (key ARN, wrapped key, endorsements) is at most this long. */
export const MANIFEST_PREAMBLE_LIMIT = 1 << 20;

/** The reader's refusal of a version it does not implement. */
export function unreadableVersion(version: unknown, readable: readonly number[] = READABLE_VERSIONS): string {
  const list = readable.length > 1 ? `${readable.slice(0, -1).join(', ')} and ${readable[readable.length - 1]}` : String(readable[0]);
  return `format version ${String(version)}; this kmscrypt reads version ${list}, upgrade it`;
}

/** Objects (or deltas) whose size is below this are sealed with AES-256-GCM, as CodeCommit does. */
export const GCM_LIMIT = 6 * 2 ** 20;

/** The largest object accepted, CodeCommit's single-blob limit. */
export const MAX_OBJECT_SIZE = 2 * 2 ** 30;

export const MAGIC = Buffer.from('KMSC');

export enum Kind {
  Container = 1,
  Manifest = 2,
  /** A gc schedule (docs/FORMAT.md §8.3). */
  Schedule = 3,
  /** A history object: hashes of manifests gc removed (§8.2). */
  History = 4,
}

/**
 * In a version 2 container, consecutive GCM records are sealed together in segments of about
 * this many payload bytes, one AES-GCM operation and one tag per segment instead of per object.
 */
export const SEGMENT_TARGET = 64 << 10;

export enum Suite {
  /** AES-256-GCM, 96-bit nonce from the record sequence number, 128-bit tag. */
  Gcm = 0,
  /** AES-256-CBC with PKCS#7 padding, random IV, HMAC-SHA-256 over AAD||IV||ciphertext (encrypt-then-MAC). */
  CbcHmac = 1,
}

export function suiteForSize(size: number): Suite {
  return size < GCM_LIMIT ? Suite.Gcm : Suite.CbcHmac;
}

export const STORE_KEYS = {
  descriptor: 'kmscrypt.json',
  manifestPrefix: 'manifests/',
  containerPrefix: 'containers/',
  historyPrefix: 'history/',
  schedulePrefix: 'gc/',
} as const;

export function manifestKey(generation: number): string {
  return STORE_KEYS.manifestPrefix + String(generation).padStart(20, '0');
}

export function containerKey(containerId: string): string {
  return STORE_KEYS.containerPrefix + containerId;
}

/** The container ID (32 lowercase hex digits) a container key names, or undefined for any other key. */
export function containerIdOfKey(key: string): string | undefined {
  return /^containers\/([0-9a-f]{32})$/.exec(key)?.[1];
}

/** A history object is named by the SHA-256 of its bytes (hex), so equal content has one name. */
export function historyKey(hash: string): string {
  return STORE_KEYS.historyPrefix + hash;
}

/** Parses the generation out of a manifest key, or undefined for any other key. */
export function generationOfKey(key: string): number | undefined {
  const m = /^manifests\/(\d{20})$/.exec(key);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}
