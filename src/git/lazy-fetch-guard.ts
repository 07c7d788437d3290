import { KmscryptError } from '../errors';

/** Set in the environment of everything the helper runs: a helper that finds it was started by one. */
const OUTER_HELPER = 'KMSCRYPT_HELPER_PID';

/**
 * Keeps the git commands the helper runs from fetching missing objects of a partial clone. Such
 * a lazy fetch starts `git fetch` on the promisor remote, i.e. this helper again, whose own git
 * commands would fetch again: git hangs in a loop of helpers. `GIT_NO_LAZY_FETCH=1` (honoured
 * since git 2.39.4 and 2.45) stops it at the source; for an older git, a helper started below
 * another one refuses at once instead.
 */
export function forbidLazyFetch(env: NodeJS.ProcessEnv = process.env): void {
  const outer = env[OUTER_HELPER];
  if (outer) {
    throw new KmscryptError(
      'GIT',
      `refusing a lazy fetch started by a git command that git-remote-kmscrypt (pid ${outer}) ran itself: it would fetch recursively`,
      { fix: 'use git 2.39.4 or newer, which honours GIT_NO_LAZY_FETCH' },
    );
  }
  env.GIT_NO_LAZY_FETCH = '1';
  env[OUTER_HELPER] = String(process.pid);
}
