/**
 * Version of the stored format described in docs/FORMAT.md, written in every new container and
 * manifest. Version 2 seals small objects in segments (docs/FORMAT.md §5.6); its manifests may list containers
 * of either version, so readers read both. The descriptor's layout has not changed since
 * version 1, and it is still written (and read) as version 1.
 */
export const FORMAT_VERSION = 2;
export const READABLE_VERSIONS: readonly number[] = [1, 2];
export const DESCRIPTOR_VERSION = 1;

/** The reader's refusal of a version it does not implement. */
export function unreadableVersion(version: unknown, readable: readonly number[] = READABLE_VERSIONS): string {
  return `format version ${String(version)}; this kmscrypt reads version ${readable.join(' and ')}, upgrade it`;
}

/** Objects (or deltas) whose size is below this are sealed with AES-256-GCM, as CodeCommit does. */
export const GCM_LIMIT = 6 * 2 ** 20;

/** The largest object accepted, CodeCommit's single-blob limit. */
export const MAX_OBJECT_SIZE = 2 * 2 ** 30;

export const MAGIC = Buffer.from('KMSC');

export enum Kind {
  Container = 1,
  Manifest = 2,
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

/** Parses the generation out of a manifest key, or undefined for any other key. */
export function generationOfKey(key: string): number | undefined {
  const m = /^manifests\/(\d{20})$/.exec(key);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : undefined;
}
