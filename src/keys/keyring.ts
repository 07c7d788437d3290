import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import { closeSync, lstatSync, mkdirSync, openSync, statSync, unlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { KmscryptError } from '../errors';
import { serializeEncryptionContext } from './encryption-context';
import type { EncryptionContext } from './key-provider';
import { CREATE_EXCLUSIVE, NODE_IO, PrivateFileIo, readPrivateFile, writePrivateFile, writeTarget } from './private-file';

export type KeyState = 'Enabled' | 'Disabled' | 'PendingDeletion';

/** A tag as KMS's CreateKey and ListResourceTags carry it. */
export interface KeyTag {
  TagKey: string;
  TagValue: string;
}

export interface KeyringKey {
  keyId: string;
  /** base64 of 32 bytes of AES-256 key material. */
  material: string;
  state: KeyState;
  createdAt: string;
  description: string;
  deletionDate?: string;
  /** Absent in keyrings written before tags were kept; readers of those ignore it. */
  tags?: KeyTag[];
}

export interface KeyringFile {
  version: 1;
  keys: KeyringKey[];
  aliases: Record<string, string>;
}

export const DEFAULT_ALIAS = 'alias/kmscrypt';
const BLOB_MAGIC = Buffer.from('KRK1');
const BLOB_HEADER = 4 + 16 + 12 + 16;

export function defaultKeyringPath(): string {
  if (process.env.KMSCRYPT_KEYRING) return process.env.KMSCRYPT_KEYRING;
  const base = process.env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'kmscrypt', 'keyring.json');
}

const KEYRING_HINT = 'point KMSCRYPT_KEYRING (kmscrypt.keyring) at your keyring file';

/**
 * A file of AES-256 master keys that behaves like KMS: keys have IDs, aliases and states,
 * and wrapped data keys only unwrap under the encryption context they were wrapped with.
 * The file is yours alone: created mode 0600, refused when group or others can read it or
 * another user owns it, and replaced atomically (src/keys/private-file.ts).
 */
export class Keyring {
  readonly path: string;
  private readonly io: PrivateFileIo;

  constructor(path: string = defaultKeyringPath(), io: PrivateFileIo = NODE_IO) {
    this.path = path;
    this.io = io;
  }

  exists(): boolean {
    try {
      statSync(this.path);
      return true;
    } catch {
      return false;
    }
  }

  load(): KeyringFile {
    const raw = readPrivateFile(this.path, 'keyring', KEYRING_HINT);
    return raw === undefined ? { version: 1, keys: [], aliases: {} } : parseKeyring(raw, this.path);
  }

  /** Applies a change under a lock file and writes the result atomically (mode 0600). */
  update<T>(change: (file: KeyringFile) => T): T {
    mkdirSync(dirname(this.path), { recursive: true, mode: 0o700 });
    const lock = `${writeTarget(this.path, 'keyring')}.lock`;
    const fd = acquireLock(lock);
    try {
      const file = this.load();
      const result = change(file);
      writePrivateFile(this.path, JSON.stringify(file, null, 2) + '\n', 'keyring', this.io);
      return result;
    } finally {
      closeSync(fd);
      unlinkSync(lock);
    }
  }

  /** Resolves a key ID, key ARN, alias name or alias ARN to a key of this keyring. */
  resolve(file: KeyringFile, keyRef: string): KeyringKey | undefined {
    const ref = stripArn(keyRef);
    const id = ref.startsWith('alias/') ? file.aliases[ref] : ref;
    return id === undefined ? undefined : file.keys.find((k) => k.keyId === id);
  }

  /**
   * A new key, with `alias` pointing at it. When the alias exists already: `reuse` returns its key
   * (two first pushes racing for the default key), `refuse` throws (a user naming a new key).
   */
  createKey(description = '', options: { alias?: string; tags?: KeyTag[]; aliasTaken?: 'reuse' | 'refuse' } = {}): KeyringKey {
    const { alias, tags = [], aliasTaken = 'reuse' } = options;
    const notice = !this.exists();
    const key = this.update((file) => {
      if (alias && file.aliases[alias]) {
        const existing = file.keys.find((k) => k.keyId === file.aliases[alias]);
        if (aliasTaken === 'refuse') {
          throw new KmscryptError('BAD_CONFIG', `${alias} already names key ${file.aliases[alias]} in keyring ${this.path}`, {
            alias,
            fix: 'choose another alias',
          });
        }
        if (existing) return existing;
      }
      const created: KeyringKey = {
        keyId: randomUUID(),
        material: randomBytes(32).toString('base64'),
        state: 'Enabled',
        createdAt: new Date().toISOString(),
        description,
        ...(tags.length ? { tags } : {}),
      };
      file.keys.push(created);
      if (alias) file.aliases[alias] = created.keyId;
      return created;
    });
    if (notice) process.stderr.write(`kmscrypt: created local keyring ${this.path} (mode 0600); back it up: without it the data cannot be decrypted\n`);
    return key;
  }

  /** Wraps `plaintext` under a master key; the blob names the key, like a KMS ciphertext blob. */
  encrypt(key: KeyringKey, plaintext: Buffer, context: EncryptionContext): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', Buffer.from(key.material, 'base64'), iv);
    const keyIdBytes = uuidBytes(key.keyId);
    cipher.setAAD(Buffer.concat([BLOB_MAGIC, keyIdBytes, serializeEncryptionContext(context)]));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([BLOB_MAGIC, keyIdBytes, iv, cipher.getAuthTag(), ct]);
  }

  /** The key ID a blob names, or undefined when the bytes are not a keyring blob. */
  blobKeyId(blob: Buffer): string | undefined {
    if (blob.length < BLOB_HEADER || !blob.subarray(0, 4).equals(BLOB_MAGIC)) return undefined;
    return uuidString(blob.subarray(4, 20));
  }

  /** Unwraps a blob; undefined when the context or the bytes do not authenticate. */
  decrypt(key: KeyringKey, blob: Buffer, context: EncryptionContext): Buffer | undefined {
    if (blob.length < BLOB_HEADER || !blob.subarray(0, 4).equals(BLOB_MAGIC)) return undefined;
    const iv = blob.subarray(20, 32);
    const tag = blob.subarray(32, 48);
    const decipher = createDecipheriv('aes-256-gcm', Buffer.from(key.material, 'base64'), iv);
    decipher.setAAD(Buffer.concat([BLOB_MAGIC, blob.subarray(4, 20), serializeEncryptionContext(context)]));
    decipher.setAuthTag(tag);
    try {
      return Buffer.concat([decipher.update(blob.subarray(BLOB_HEADER)), decipher.final()]);
    } catch {
      return undefined;
    }
  }
}

export function stripArn(keyRef: string): string {
  // arn:aws:kms:region:account:key/ID or arn:aws:kms:region:account:alias/NAME
  const m = /^arn:[^:]+:kms:[^:]*:[^:]*:(key\/.+|alias\/.+)$/.exec(keyRef);
  if (!m) return keyRef;
  return m[1].startsWith('key/') ? m[1].slice(4) : m[1];
}

function parseKeyring(raw: string, path: string): KeyringFile {
  const corrupt = (why: string) => new KmscryptError('KEYRING', `keyring ${path} is corrupt (${why})`, { fix: 'restore it from your backup' });
  let data: unknown;
  try {
    data = JSON.parse(raw);
  } catch {
    throw corrupt('not valid JSON');
  }
  if (typeof data !== 'object' || data === null) throw corrupt('not an object');
  const file = data as Partial<KeyringFile>;
  if (file.version !== 1) throw corrupt(`unknown version ${String(file.version)}`);
  if (!Array.isArray(file.keys) || typeof file.aliases !== 'object' || file.aliases === null) throw corrupt('missing keys or aliases');
  for (const k of file.keys) {
    if (typeof k?.keyId !== 'string' || typeof k.material !== 'string' || Buffer.from(k.material, 'base64').length !== 32) {
      throw corrupt('a key entry has no 32-byte key material');
    }
    if (k.state !== 'Enabled' && k.state !== 'Disabled' && k.state !== 'PendingDeletion') throw corrupt(`key ${k.keyId} has state ${String(k.state)}`);
    const tags: unknown = k.tags;
    if (tags !== undefined && !(Array.isArray(tags) && tags.every((t: KeyTag) => typeof t?.TagKey === 'string' && typeof t.TagValue === 'string'))) {
      throw corrupt(`key ${k.keyId} has tags that are not a list of {TagKey, TagValue}`);
    }
  }
  return file as KeyringFile;
}

function acquireLock(lock: string): number {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      return openSync(lock, CREATE_EXCLUSIVE, 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new KmscryptError('KEYRING', `cannot lock keyring ${lock}: ${(err as NodeJS.ErrnoException).code}`);
      }
      if (!isPlainFile(lock)) {
        throw new KmscryptError('KEYRING', `keyring lock ${lock} is a symbolic link or other non-file that kmscrypt did not create`, { fix: 'remove it' });
      }
      if (Date.now() > deadline) {
        throw new KmscryptError('KEYRING', `keyring lock ${lock} is held for more than 10 s`, { fix: 'if no kmscrypt process is running, delete it' });
      }
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

/** True for a regular file, and for a lock released since (it is tried again). */
function isPlainFile(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return true;
  }
}

function uuidBytes(id: string): Buffer {
  const hex = id.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new KmscryptError('KEYRING', `key ID ${id} is not a UUID`);
  return Buffer.from(hex, 'hex');
}

function uuidString(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
