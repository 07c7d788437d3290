import { promises as fs } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { KmscryptError } from '../errors';

/**
 * A bare word after kmscrypt:: is an S3 bucket (README, URL forms). When a directory of that
 * name exists where the helper runs, the user almost certainly meant the directory: asking S3
 * would only fail later with a message about regions or credentials for a bucket nobody meant.
 */
export async function refuseBucketNamedLikeDirectory(url: string, bucket: string, cwd: string = process.cwd()): Promise<void> {
  const st = await fs.stat(resolve(cwd, bucket)).catch(() => undefined);
  if (!st?.isDirectory()) return;
  throw new KmscryptError('BAD_URL', `invalid kmscrypt URL ${JSON.stringify(url)}: a bare name is an S3 bucket, but ${bucket} here is a local directory`, {
    url,
    directory: resolve(cwd, bucket),
    fix: `for the directory write kmscrypt::./${url}, for the bucket kmscrypt::s3://${url}`,
  });
}

/** A local store is a directory: a file there (or above it) is refused before anything reads or writes. */
export async function refuseFileAsStore(path: string): Promise<void> {
  const st = await fs.stat(path).catch((err: NodeJS.ErrnoException) => err);
  const file = st instanceof Error ? (st.code === 'ENOTDIR' ? await fileAbove(path) : undefined) : st.isDirectory() ? undefined : path;
  if (file === undefined) return;
  throw new KmscryptError('BAD_URL', `${file} is a file, not a directory`, {
    path: file,
    fix: `a local store is a directory: give the repository's directory, or a new or empty one`,
  });
}

async function fileAbove(path: string): Promise<string> {
  for (let dir = dirname(path); dir !== dirname(dir); dir = dirname(dir)) {
    const st = await fs.stat(dir).catch(() => undefined);
    if (st && !st.isDirectory()) return dir;
  }
  return path;
}

/** What a directory may hold and still become a new store: nothing but a kmscrypt writer's own leftovers. */
const LEFTOVER = /^\.tmp-/;

/**
 * Run before a new repository is created in a local directory: the directory must be new or
 * empty. Otherwise a push into a plain git repository, or into any directory of other files,
 * would quietly add kmscrypt.json, containers/ and manifests/ among them.
 */
export async function checkNewStoreDirectory(path: string): Promise<void> {
  const entries = await fs.readdir(path).catch((err: NodeJS.ErrnoException) => err);
  if (entries instanceof Error) {
    if (entries.code === 'ENOENT') return;
    if (entries.code === 'ENOTDIR') await refuseFileAsStore(path);
    throw new KmscryptError('STORAGE', `cannot read ${path}: ${entries.code ?? entries.message}`, { path, fix: 'check the path and its permissions' });
  }
  const others = entries.filter((name) => !LEFTOVER.test(name)).sort();
  if (others.length === 0) return;
  const shown = others.slice(0, 4).join(', ') + (others.length > 4 ? ', …' : '');
  const isGit = ['HEAD', 'objects', 'refs'].every((name) => others.includes(name)) || others.includes('.git');
  const fix = isGit
    ? 'to push to it unencrypted drop kmscrypt:: from the URL, for an encrypted repository give a new or empty directory'
    : 'give a new or empty directory for the encrypted repository';
  throw new KmscryptError(
    'BAD_URL',
    isGit ? `${path} is a git repository (${shown}), not a kmscrypt store` : `${path} already holds other files (${shown}) and no kmscrypt repository`,
    { path, entries: others.length, unchanged: 'nothing was written', fix },
  );
}
