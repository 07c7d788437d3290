import { join } from 'node:path';
import { KmscryptError } from '../errors';
import { gitDir } from '../git/repository';
import { KnownRemotes } from '../remote/known-remotes';
import { LocalStateFile } from '../remote/local-state';
import { ManifestCache } from '../remote/manifest-cache';
import { parseCommandArgs, resolveTarget } from './command-args';
import { parseRemoteUrl, storeUrl } from './url';

/** `git kmscrypt forget`: the deliberate way past "repository … is gone from the store". */
export async function runForget(args: string[]): Promise<number> {
  const parsed = parseCommandArgs('forget', args, { json: false });
  const { url } = await resolveTarget(parsed.target);
  const location = storeUrl(parseRemoteUrl(url));
  const stateDir = await gitDir().then(
    (dir) => join(dir, 'kmscrypt'),
    () => {
      throw new KmscryptError('BAD_URL', `${process.cwd()} is not in a git repository`, {
        fix: `run git kmscrypt forget inside the clone that should forget ${location}`,
      });
    },
  );
  const known = KnownRemotes.in(stateDir);
  const forgotten = await known.forget(location);
  if (!forgotten) {
    const urls = await known.urls();
    throw new KmscryptError('BAD_URL', `this clone remembers no repository at ${location}`, {
      url: location,
      fix: urls.length ? `it remembers: ${urls.join(', ')}` : 'it remembers none',
    });
  }
  // The rest is kept while another URL still leads to the same repository (a second remote).
  if (!forgotten.elsewhere) {
    await LocalStateFile.at(stateDir, forgotten.repositoryId).remove();
    await ManifestCache.at(stateDir, forgotten.repositoryId).remove();
  }
  process.stdout.write(`Forgot repository ${forgotten.repositoryId} at ${location}\n`);
  return 0;
}
