import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fsyncSync,
  linkSync,
  lstatSync,
  openSync,
  readFileSync,
  realpathSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { KmscryptError } from '../errors';

/**
 * Files that hold secrets of one user (the keyring, the local KMS credentials): read only when
 * they are that user's and nobody else's, written so that no planted symbolic link captures
 * them and no crash leaves them empty or half-written.
 */

/** The calls a write makes, in order; tests inject faults between them. */
export interface PrivateFileIo {
  open(path: string, flags: number, mode?: number): number;
  write(fd: number, data: Buffer, offset: number): number;
  fsync(fd: number): void;
  close(fd: number): void;
  rename(from: string, to: string): void;
  /** Creates `to` as another name of `from`; fails with EEXIST when `to` exists. */
  link(from: string, to: string): void;
  unlink(path: string): void;
}

export const NODE_IO: PrivateFileIo = {
  open: (path, flags, mode) => openSync(path, flags, mode),
  write: (fd, data, offset) => writeSync(fd, data, offset),
  fsync: (fd) => fsyncSync(fd),
  close: (fd) => closeSync(fd),
  rename: (from, to) => renameSync(from, to),
  link: (from, to) => linkSync(from, to),
  unlink: (path) => unlinkSync(path),
};

/** O_NOFOLLOW where the platform has it: a symbolic link in the last component fails the open. */
const NOFOLLOW = constants.O_NOFOLLOW ?? 0;
/** Create-only, never through a symbolic link: a name planted beforehand fails the open. */
export const CREATE_EXCLUSIVE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NOFOLLOW;

/**
 * The contents of a private file, or undefined when there is none. Refused, with the fix, when
 * it is not a regular file, is readable or writable by group or others, or belongs to another user.
 * `what` names the file in messages ("keyring", "local KMS credentials"); `hint` is the fix for a wrong path.
 */
export function readPrivateFile(path: string, what: string, hint: string): string | undefined {
  const fail = (why: string, fix: string) => new KmscryptError('KEYRING', `${what} ${path} ${why}`, { path, fix });
  try {
    const st = statSync(path);
    if (!st.isFile()) throw fail('is a directory or other non-file', `move it away or ${hint}`);
    if (process.platform !== 'win32') {
      if ((st.mode & 0o077) !== 0) throw fail(`is readable by group or others (mode ${(st.mode & 0o777).toString(8)})`, `run: chmod 600 ${path}`);
      const uid = process.getuid?.();
      if (uid !== undefined && st.uid !== uid) {
        throw fail(`belongs to uid ${st.uid}, not to you (uid ${uid}): it must be yours alone`, hint);
      }
    }
    return readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof KmscryptError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new KmscryptError('KEYRING', `cannot read ${what} ${path}: ${code ?? String(err)}`, { path, fix: `check its permissions or ${hint}` });
  }
}

/**
 * The file a write to `path` replaces: `path` itself, or the file a symbolic link there points
 * to (so that a keyring kept elsewhere through a link stays there). A link to nothing is refused:
 * whoever planted it would receive what is written.
 */
export function writeTarget(path: string, what: string): string {
  let isLink: boolean;
  try {
    isLink = lstatSync(path).isSymbolicLink();
  } catch {
    return path;
  }
  if (!isLink) return path;
  try {
    return realpathSync(path);
  } catch {
    throw new KmscryptError('KEYRING', `${what} ${path} is a symbolic link to a missing file`, {
      path,
      fix: 'remove the link, or restore the file it points to',
    });
  }
}

/**
 * Replaces `path` with `data`, mode 0600: a new file of a random name in the same directory,
 * created exclusively and without following links, written and fsynced, renamed over `path`,
 * then the directory fsynced. A crash at any point leaves the old file or the new one, whole.
 */
export function writePrivateFile(path: string, data: string, what: string, io: PrivateFileIo = NODE_IO): void {
  publish(path, data, what, io, 'replace');
}

/**
 * Creates `path` with `data` as writePrivateFile does, unless it exists: then false, and the
 * existing file is left as it is (two processes creating it at once agree on one content).
 */
export function createPrivateFile(path: string, data: string, what: string, io: PrivateFileIo = NODE_IO): boolean {
  return publish(path, data, what, io, 'create');
}

function publish(path: string, data: string, what: string, io: PrivateFileIo, mode: 'replace' | 'create'): boolean {
  const target = writeTarget(path, what);
  const dir = dirname(target);
  const tmp = join(dir, `.${basename(target)}.${randomBytes(8).toString('hex')}.tmp`);
  const bytes = Buffer.from(data, 'utf8');
  let fd: number;
  try {
    fd = io.open(tmp, CREATE_EXCLUSIVE, 0o600);
  } catch (err) {
    throw new KmscryptError('KEYRING', `cannot write ${what} ${path}: creating ${tmp} failed (${(err as NodeJS.ErrnoException).code ?? String(err)})`, {
      path,
      fix: `check the directory's permissions`,
    });
  }
  let published = false;
  try {
    try {
      for (let offset = 0; offset < bytes.length;) offset += io.write(fd, bytes, offset);
      io.fsync(fd);
    } finally {
      io.close(fd);
    }
    if (mode === 'replace') {
      io.rename(tmp, target);
    } else {
      try {
        io.link(tmp, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
        throw err;
      } finally {
        removeQuietly(tmp, io);
      }
    }
    published = true;
    syncDirectory(dir, io);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    if (published) {
      throw new KmscryptError('KEYRING', `wrote ${what} ${path} but could not sync its directory ${dir} (${code})`, {
        path,
        fix: 'check the file system, then back the file up',
      });
    }
    removeQuietly(tmp, io);
    throw new KmscryptError('KEYRING', `cannot write ${what} ${path}: ${code}`, { path, unchanged: 'the previous file is unchanged' });
  }
}

/** Makes a rename durable: without it a crash can bring back the old directory entry. */
function syncDirectory(dir: string, io: PrivateFileIo): void {
  const fd = io.open(dir, constants.O_RDONLY | (constants.O_DIRECTORY ?? 0));
  try {
    io.fsync(fd);
  } catch (err) {
    // Some file systems cannot fsync a directory; the rename is as durable as they make it.
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
  } finally {
    io.close(fd);
  }
}

function removeQuietly(path: string, io: PrivateFileIo): void {
  try {
    io.unlink(path);
  } catch {
    // Already gone, or never created.
  }
}
