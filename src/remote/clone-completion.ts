import { configValue, hasRefs, renameUnbornBranch, setLocalConfig, unbornBranch } from '../git/clone-config';
import type { Manifest } from '../format/manifest';
import { errorMessage } from '../errors';

/**
 * Two things plain git's clone does that the remote-helper protocol cannot ask of git:
 *
 * - A local repository's path is stored absolute (`git clone ../x` records /abs/x), so that
 *   later fetches, which git runs from the clone's top directory, find it. git stores a helper
 *   URL as given, so a clone of `kmscrypt::./rel` is given the absolute path here.
 * - A clone of an empty repository checks out the branch the remote's HEAD names (protocol v2's
 *   `unborn`); a helper's `list` cannot name an unborn HEAD (git would try to fetch it), so git
 *   uses the cloner's init.defaultBranch, and the branch is renamed here.
 *
 * Both are done when git ends the session (after it wrote HEAD, the branch's upstream and the
 * refspec) and only for a clone: git says `option cloning` when it fetches, and a clone of an
 * empty repository, which fetches nothing, is known by the configuration git has written when it
 * lists the refs (the remote's URL, no fetch refspec yet, no ref at all).
 */
export class CloneCompletion {
  private cloning = false;
  private looksLikeClone = false;
  private unbornHead?: string;

  /**
   * `remoteName` and `url` as git passed them to the helper; `absolutePath` the same location as
   * an absolute path when `url` is a relative local one.
   */
  constructor(
    private readonly remoteName: string | undefined,
    private readonly url: string,
    private readonly absolutePath?: string,
  ) {}

  /** git sent `option cloning true`. */
  cloningSaid(): void {
    this.cloning = true;
  }

  /**
   * Before `list` is answered: a clone of an empty repository is recognised now, before git
   * writes the rest of its configuration.
   */
  async listed(manifest: Manifest | null): Promise<void> {
    const empty = !manifest || Object.keys(manifest.refs).length === 0;
    if (empty && manifest?.head) this.unbornHead = manifest.head;
    if (this.remoteName !== undefined && empty && (this.unbornHead || this.absolutePath)) this.looksLikeClone = await this.inProgress(this.remoteName);
  }

  /** The session ended. Never fails the clone: a problem is one warning line. */
  async finish(): Promise<void> {
    const name = this.remoteName;
    if (name === undefined || !(this.cloning || this.looksLikeClone)) return;
    try {
      if (this.absolutePath && (await configValue(`remote.${name}.url`)) === `kmscrypt::${this.url}`)
        await setLocalConfig(`remote.${name}.url`, `kmscrypt::${this.absolutePath}`);
      const local = this.unbornHead ? await unbornBranch() : undefined;
      if (this.unbornHead && local && local !== this.unbornHead && !(await hasRefs())) await renameUnbornBranch(local, this.unbornHead, name);
    } catch (err) {
      process.stderr.write(
        `warning: kmscrypt: the clone is complete but its configuration could not be finished (${errorMessage(err)}); check remote.${name}.url and HEAD\n`,
      );
    }
  }

  private async inProgress(name: string): Promise<boolean> {
    // git names a remote given by URL after the URL, which no configured remote's name can contain.
    if (name.includes(':')) return false;
    try {
      const [url, fetch, refs] = await Promise.all([configValue(`remote.${name}.url`), configValue(`remote.${name}.fetch`), hasRefs()]);
      return url === `kmscrypt::${this.url}` && fetch === undefined && !refs;
    } catch {
      return false; // not in a repository (git ls-remote elsewhere)
    }
  }
}
