import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isKmscryptError, KmscryptError } from '../errors';
import { processExists } from '../process-exists';

/** How long a writer waits for another process's lock before giving up with one line. */
const LOCK_WAIT_MS = 15_000;
/** A lock older than this whose owner cannot be asked (another host) is taken for a crash's. */
const STALE_LOCK_MS = 60_000;

/**
 * Read-modify-write of one of this clone's small state files (docs/FORMAT.md §8.4), so that two git
 * processes of one clone never undo each other's update (the generation seen must never go
 * down): under an exclusive lock file (`<file>.lock`, holding the owner's PID: see tryLock),
 * the file is read, changed, written to a unique temporary file, fsynced, renamed over the old
 * one and the directory fsynced. A lock whose owner died (its PID is gone, or it is a minute
 * old) is broken. `change` returns the new text, or undefined to leave the file as it is.
 */
export async function updateStateFile(path: string, change: (current: string | undefined) => string | undefined): Promise<void> {
  const dir = dirname(path);
  await fs.mkdir(dir, { recursive: true });
  const lock = `${path}.lock`;
  await acquire(lock);
  try {
    const next = change(await readStateFile(path));
    if (next === undefined) return;
    const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
    const out = await fs.open(tmp, 'wx', 0o600);
    try {
      await out.writeFile(next);
      await out.sync();
    } finally {
      await out.close();
    }
    try {
      await fs.rename(tmp, path);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
    await syncDirectory(dir);
  } finally {
    await fs.rm(lock, { force: true });
  }
}

/** Removes one of these files under its lock; true when there was one. */
export async function removeStateFile(path: string): Promise<boolean> {
  const lock = `${path}.lock`;
  try {
    await acquire(lock);
  } catch (err) {
    if (isKmscryptError(err) && err.data.errno === 'ENOENT') return false; // no state directory: nothing to remove
    throw err;
  }
  try {
    await fs.unlink(path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return false;
    throw new KmscryptError('STORAGE', `cannot remove ${path}: ${code ?? String(err)}`);
  } finally {
    await fs.rm(lock, { force: true });
  }
}

/** The file's text, or undefined when there is none. */
export async function readStateFile(path: string): Promise<string | undefined> {
  try {
    return await fs.readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new KmscryptError('CORRUPT', `cannot read ${path}: ${code ?? String(err)}`);
  }
}

async function acquire(lock: string): Promise<void> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (let attempt = 0; ; attempt++) {
    if (await tryLock(lock)) return;
    const holder = await lockHolder(lock);
    if (holder && holder.stale) await breakStale(lock, holder.text);
    else if (Date.now() > deadline) {
      throw new KmscryptError(
        'STORAGE',
        `${lock} is held by another kmscrypt process${holder?.pid ? ` (PID ${holder.pid})` : ''} for more than ${LOCK_WAIT_MS / 1000} s`,
        { fix: 'if none is running, delete it' },
      );
    } else await new Promise((r) => setTimeout(r, Math.min(200, 5 * 2 ** Math.min(attempt, 6)) * (0.5 + Math.random())));
  }
}

/** Filesystems without hard links answer link() with one of these. */
const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EMLINK']);

/**
 * Takes the lock if it is free. The owner's PID is written to a file of its own first, which is
 * then linked to the lock's name (link fails if the name exists): the lock never exists without
 * its PID, so a process killed while taking it leaves no lock that only age could break (an empty
 * lock: the next git command of the clone would wait and fail). Where the filesystem has no hard
 * links, the lock is created exclusively and the PID written into it.
 */
async function tryLock(lock: string): Promise<boolean> {
  const pid = String(process.pid);
  const own = `${lock}.${pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await fs.writeFile(own, pid, { flag: 'wx', mode: 0o600 });
    try {
      await fs.link(own, lock);
    } catch (err) {
      if (!NO_HARD_LINKS.has((err as NodeJS.ErrnoException).code ?? '')) throw err;
      await fs.writeFile(lock, pid, { flag: 'wx', mode: 0o600 });
    }
    return true;
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    if (errno === 'EEXIST') return false;
    throw new KmscryptError('STORAGE', `cannot lock ${lock}: ${errno ?? String(err)}`, { errno });
  } finally {
    await fs.rm(own, { force: true });
  }
}

async function lockHolder(lock: string): Promise<{ text: string; pid: number | undefined; stale: boolean } | undefined> {
  let text: string;
  let mtimeMs: number;
  try {
    [text, { mtimeMs }] = await Promise.all([fs.readFile(lock, 'utf8'), fs.stat(lock)]);
  } catch {
    return undefined; // released meanwhile
  }
  const pid = /^\d+$/.test(text) ? Number(text) : undefined;
  // An empty lock is one being written where the filesystem has no hard links, or one left by an
  // earlier kmscrypt killed before it wrote its PID: stale only by age.
  return { text, pid, stale: (pid !== undefined && !processExists(pid)) || Date.now() - mtimeMs > STALE_LOCK_MS };
}

/**
 * Removes a dead owner's lock. It is first moved aside, so that a lock another process took
 * since we looked is never deleted: if what was moved is not the lock we judged stale, it is
 * put back (unless yet another process holds the place).
 */
async function breakStale(lock: string, seen: string): Promise<void> {
  const aside = `${lock}.${process.pid}.${randomBytes(6).toString('hex')}.stale`;
  try {
    await fs.rename(lock, aside);
  } catch {
    return;
  }
  const moved = await fs.readFile(aside, 'utf8').catch(() => seen);
  if (moved !== seen) await fs.link(aside, lock).catch(() => undefined);
  await fs.rm(aside, { force: true });
  if (moved === seen) await removeDeadTemporaries(lock);
}

/**
 * A process that died holding the lock may also have left its other files: its PID file
 * (`<lock>.<pid>.<random>.tmp`, see tryLock), the new text it was writing
 * (`.<file>.<pid>.<random>.tmp`) or a lock it was moving aside (`<lock>.<pid>.<random>.stale`).
 * Once a stale lock has been broken, those of processes that no longer exist are removed. (One
 * killed between writing its PID file and taking the lock leaves no stale lock: its PID file
 * stays until the next time one is broken.)
 */
async function removeDeadTemporaries(lock: string): Promise<void> {
  const dir = dirname(lock);
  const file = basename(lock).slice(0, -'.lock'.length);
  const kinds = [
    { prefix: `${file}.lock.`, suffixes: ['.tmp', '.stale'] },
    { prefix: `.${file}.`, suffixes: ['.tmp'] },
  ];
  for (const name of await fs.readdir(dir).catch(() => [] as string[])) {
    const kind = kinds.find((k) => name.startsWith(k.prefix) && k.suffixes.some((suffix) => name.endsWith(suffix)));
    const pid = kind ? name.slice(kind.prefix.length).split('.')[0] : '';
    if (/^\d+$/.test(pid) && !processExists(Number(pid))) await fs.rm(join(dir, name), { force: true });
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r').catch(() => undefined);
  if (!handle) return;
  try {
    await handle.sync();
  } catch {
    // Some filesystems do not sync directories; the rename is still atomic.
  } finally {
    await handle.close();
  }
}
