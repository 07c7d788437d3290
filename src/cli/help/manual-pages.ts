import { GIT_KMSCRYPT_PAGE } from './git-kmscrypt-manual';
import { GIT_REMOTE_KMSCRYPT_PAGE } from './git-remote-kmscrypt-manual';
import type { ManPage } from './manual-page';

/** The pages package.json's `man` lists, as man/<name>.1. */
export const MANUAL_PAGES: readonly ManPage[] = [GIT_KMSCRYPT_PAGE, GIT_REMOTE_KMSCRYPT_PAGE];
