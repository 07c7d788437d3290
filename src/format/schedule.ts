import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { KmscryptError } from '../errors';
import { FORMAT_VERSION, Kind, MAGIC, unreadableVersion } from './constants';
import { ByteCursor, prefixed } from './byte-cursor';
import { checkKeyCommitment, COMMITMENT_LENGTH, keyCommitment } from './key-commitment';
import { deriveKey } from './key-derivation';

/**
 * What a gc scheduled for deletion once the grace period has passed (docs/FORMAT.md §8.3). Sealed
 * like a manifest, under a data key of the repository's key, so that whoever can write to the
 * store cannot make gc delete anything early (a forged `createdAt`) or at all.
 */
export interface Schedule {
  /** When it was scheduled (ISO 8601): the grace period runs from here. */
  createdAt: string;
  /** Containers no manifest from `generation` on refers to. */
  containers: string[];
  /** Manifests below this generation may be deleted (the history object of manifest `generation` attests them). */
  generation: number;
}

export interface ScheduleEnvelope {
  /** ARN of the key that wrapped the data key. */
  keyId: string;
  wrappedKey: Buffer;
  nonce: Buffer;
  commitment: Buffer;
  preamble: Buffer;
  sealed: Buffer;
}

const LABEL = Buffer.from('kmscrypt/3 schedule');
const GCM_TAG = 16;

export function sealSchedule(s: Schedule, repositoryId: string, dataKey: Buffer, keyArn: string, wrappedKey: Buffer): Buffer {
  const nonce = randomBytes(12);
  const head = Buffer.alloc(8);
  MAGIC.copy(head, 0);
  head.writeUInt8(FORMAT_VERSION, 4);
  head.writeUInt8(Kind.Schedule, 5);
  const preamble = Buffer.concat([head, nonce, keyCommitment(dataKey, nonce), prefixed(keyArn), prefixed(wrappedKey)]);
  const cipher = createCipheriv('aes-256-gcm', deriveKey(dataKey, 'schedule', nonce), nonce);
  cipher.setAAD(scheduleAad(repositoryId, preamble));
  return Buffer.concat([preamble, cipher.update(JSON.stringify(s), 'utf8'), cipher.final(), cipher.getAuthTag()]);
}

export function parseScheduleEnvelope(buf: Buffer, what: string): ScheduleEnvelope {
  const bad = (why: string) => new KmscryptError('CORRUPT', `${what}: not a kmscrypt gc schedule (${why})`);
  if (buf.length < 8 || !buf.subarray(0, 4).equals(MAGIC)) throw bad('bad magic');
  if (buf.readUInt8(4) !== 3) throw bad(unreadableVersion(buf.readUInt8(4), [3]));
  if (buf.readUInt8(5) !== Kind.Schedule) throw bad('not a schedule');
  const c = new ByteCursor(buf, bad, 8);
  const nonce = c.bytes(12);
  const commitment = c.bytes(COMMITMENT_LENGTH);
  const keyId = c.prefixedString();
  const wrappedKey = c.prefixed();
  if (buf.length < c.offset + GCM_TAG) throw bad('truncated');
  return { keyId, wrappedKey, nonce, commitment, preamble: buf.subarray(0, c.offset), sealed: buf.subarray(c.offset) };
}

export function openSchedule(env: ScheduleEnvelope, dataKey: Buffer, repositoryId: string, what: string): Schedule {
  checkKeyCommitment(dataKey, env.nonce, env.commitment, what);
  const decipher = createDecipheriv('aes-256-gcm', deriveKey(dataKey, 'schedule', env.nonce), env.nonce);
  decipher.setAAD(scheduleAad(repositoryId, env.preamble));
  decipher.setAuthTag(env.sealed.subarray(env.sealed.length - GCM_TAG));
  let body: Buffer;
  try {
    body = Buffer.concat([decipher.update(env.sealed.subarray(0, env.sealed.length - GCM_TAG)), decipher.final()]);
  } catch {
    throw new KmscryptError('TAMPERED', `${what} failed authentication: it was altered, forged or belongs to another repository`);
  }
  let s: Schedule;
  try {
    s = JSON.parse(body.toString('utf8')) as Schedule;
  } catch {
    throw new KmscryptError('CORRUPT', `${what}: authenticated but unreadable`);
  }
  if (typeof s.createdAt !== 'string' || Number.isNaN(Date.parse(s.createdAt)) || !Array.isArray(s.containers) || !Number.isSafeInteger(s.generation)) {
    throw new KmscryptError('CORRUPT', `${what}: authenticated but malformed`);
  }
  return { createdAt: s.createdAt, containers: s.containers.filter((id) => typeof id === 'string' && /^[0-9a-f]{32}$/.test(id)), generation: s.generation };
}

function scheduleAad(repositoryId: string, preamble: Buffer): Buffer {
  return Buffer.concat([LABEL, prefixed(repositoryId), preamble]);
}
