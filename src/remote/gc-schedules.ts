import { randomBytes } from 'node:crypto';
import { errorMessage, isKmscryptError } from '../errors';
import { STORE_KEYS } from '../format/constants';
import { openSchedule, parseScheduleEnvelope, Schedule, sealSchedule } from '../format/schedule';
import type { DataKey } from '../keys/key-provider';
import type { RemoteRepository } from './remote-repository';

/** A schedule lists container IDs (34 bytes each in JSON): this is over 400,000 of them. */
const SCHEDULE_READ = { maxBytes: 16 << 20, what: 'gc schedule' };

export interface StoredSchedule {
  key: string;
  schedule: Schedule;
}

/**
 * The gc schedules in the store that authenticate (docs/FORMAT.md §8.3). One that does not — not
 * sealed by a key this clone trusts, altered, or a plaintext list of an earlier kmscrypt — is
 * never acted on: it is reported on one line and deleted, and what it listed is scheduled again
 * by this gc with a fresh grace period.
 */
export async function readSchedules(repo: RemoteRepository): Promise<StoredSchedule[]> {
  const out: StoredSchedule[] = [];
  for (const entry of await repo.storage.list(STORE_KEYS.schedulePrefix)) {
    const what = `${repo.config.url}/${entry.key}`;
    try {
      const bytes = await repo.storage.get(entry.key, SCHEDULE_READ);
      if (!bytes) continue;
      const env = parseScheduleEnvelope(bytes, what);
      if (!(await repo.trust.isTrusted(env.keyId))) throw await repo.trust.untrusted(env.keyId);
      const dataKey = await repo.dataKeys.unwrap(env.wrappedKey, env.keyId);
      out.push({ key: entry.key, schedule: openSchedule(env, dataKey, repo.repositoryId, what) });
    } catch (err) {
      if (!notOurs(err)) throw err;
      process.stderr.write(`warning: kmscrypt: ${what} is not a gc schedule this clone can authenticate (${errorMessage(err)}); ignored and deleted\n`);
      await repo.storage.delete(entry.key);
    }
  }
  return out;
}

/** Stores a schedule sealed under `dataKey` (create-only, under a new name). */
export async function storeSchedule(repo: RemoteRepository, schedule: Schedule, dataKey: DataKey): Promise<string | undefined> {
  const key = `${STORE_KEYS.schedulePrefix}${schedule.createdAt.replace(/[-:.]/g, '')}-${randomBytes(4).toString('hex')}`;
  const bytes = sealSchedule(schedule, repo.repositoryId, dataKey.plaintext, dataKey.keyId, dataKey.wrapped);
  return (await repo.storage.putIfAbsent(key, bytes)) ? key : undefined;
}

/** Failures that say the object is not a schedule this clone wrote or may trust; others (the network, KMS being down) are not. */
function notOurs(err: unknown): boolean {
  if (isKmscryptError(err, 'TAMPERED') || isKmscryptError(err, 'CORRUPT')) return true;
  if (!isKmscryptError(err, 'KEY_ERROR')) return false;
  return err.data.reason === 'untrusted-key' || err.data.kmsError === 'InvalidCiphertextException' || err.data.kmsError === 'IncorrectKeyException';
}
