import { KmscryptError } from '../errors';
import type { FetchRequest, HelperBackend, OptionAnswer, PushRequest } from '../protocol/helper-protocol';
import { localObjectFormat } from '../git/repository';
import { unquoteCStyle } from '../protocol/c-quote';
import { traceToStderr } from '../trace';
import { RemoteConfig, RemoteRepository, ManifestSnapshot, NO_MANIFEST } from './remote-repository';
import { CloneCompletion } from './clone-completion';
import { DELETE_CURRENT_BRANCH } from './push-plan';
import { defaultTransferOptions, TransferOptions } from './transfer-options';

/** One git process's conversation with one remote: the helper protocol's backend. */
export class HelperSession implements HelperBackend {
  readonly options: TransferOptions = defaultTransferOptions();
  private repo?: RemoteRepository;
  private snapshot?: ManifestSnapshot;
  private wantObjectFormat = false;

  private readonly clone: CloneCompletion;
  private readonly remoteName?: string;

  /**
   * `invocation`: the remote name (absent when git was given a URL) and URL git passed the helper,
   * and the same location as an absolute path when that URL is a relative local one.
   */
  constructor(
    private readonly config: RemoteConfig,
    invocation: { remoteName?: string; url: string; absolutePath?: string } = { url: config.url },
  ) {
    this.remoteName = invocation.remoteName;
    this.clone = new CloneCompletion(invocation.remoteName, invocation.url, invocation.absolutePath);
  }

  capabilities(): string[] {
    // check-connectivity: git then asks for it on a clone, and skips its own walk of every object.
    return ['fetch', 'push', 'option', 'object-format', 'check-connectivity'];
  }

  async option(name: string, value: string): Promise<OptionAnswer> {
    const bool = value === 'true';
    switch (name) {
      case 'progress':
        this.options.progress = bool;
        return 'ok';
      case 'verbosity':
        this.options.verbosity = Number(value) || 0;
        // git -vv: the helper's requests too, as KMSCRYPT_TRACE=1 shows them (docs/debugging.md).
        if (this.options.verbosity >= 3) traceToStderr();
        return 'ok';
      case 'dry-run':
        this.options.dryRun = bool;
        return 'ok';
      case 'force':
        this.options.force = bool;
        return 'ok';
      case 'atomic':
        this.options.atomic = bool;
        return 'ok';
      case 'cloning':
        this.options.cloning = bool;
        if (bool) this.clone.cloningSaid();
        return 'ok';
      case 'followtags':
        this.options.followTags = bool;
        return 'ok';
      case 'check-connectivity':
        // Only a clone answers `connectivity-ok`, after index-pack checked the pack is self-contained and connected.
        this.options.checkConnectivity = bool;
        return 'ok';
      case 'object-format':
        this.wantObjectFormat = true;
        return 'ok';
      case 'depth': {
        if (!/^\d+$/.test(value)) return { error: `invalid depth ${value}` };
        this.options.depth = Number(value);
        return 'ok';
      }
      case 'deepen-relative':
        this.options.deepenRelative = bool;
        return 'ok';
      case 'deepen-since':
        this.options.deepenSince = unquoteCStyle(value);
        return 'ok';
      case 'deepen-not':
        this.options.deepenNot.push(unquoteCStyle(value));
        return 'ok';
      case 'filter':
        this.options.filter = unquoteCStyle(value);
        return 'ok';
      case 'from-promisor':
        this.options.fromPromisor = isTrue(value);
        return 'ok';
      case 'no-dependents':
        this.options.noDependents = isTrue(value);
        return 'ok';
      case 'refetch':
        this.options.refetch = isTrue(value);
        return 'ok';
      case 'update-shallow':
      case 'updateshallow':
      case 'rejectshallow':
        // About a shallow remote; a kmscrypt store always holds whole histories (push refuses shallow roots).
        return 'ok';
      case 'force-if-includes':
        // git itself checks that the remote-tracking value is in the local history before it
        // sends the update (remote.c); the lease it sends along is enforced at publication.
        return 'ok';
      case 'cas': {
        const m = /^([^:]+):(.*)$/.exec(value);
        if (!m) return { error: `malformed cas ${value}` };
        this.options.leases.set(m[1], /^0+$/.test(m[2]) ? '' : m[2]);
        return 'ok';
      }
      default:
        return 'unsupported';
    }
  }

  async list(forPush: boolean): Promise<string[]> {
    this.repo ??= await RemoteRepository.open(this.config, { listFor: forPush ? 'write' : 'read' });
    if (!this.repo) {
      if (!forPush) {
        throw new KmscryptError('NO_REPOSITORY', `no kmscrypt repository at ${this.config.url}`, { fix: 'check the URL, or push to it to create one' });
      }
      this.snapshot = NO_MANIFEST;
      return this.wantObjectFormat ? [`:object-format ${await localObjectFormat()}`] : [];
    }
    // Before git compares any ID: with the other format every remote ref would look unknown to
    // it, and it would add a misleading "rejected (fetch first)" to the one line that matters.
    if (forPush) await this.checkObjectFormat(this.repo);
    this.snapshot = forPush ? await this.repo.latest('write') : await this.repo.latest('read', { kept: true });
    if (!forPush) await this.clone.listed(this.snapshot.manifest);
    const lines: string[] = [];
    if (this.wantObjectFormat) lines.push(`:object-format ${this.repo.descriptor.objectFormat}`);
    const m = this.snapshot.manifest;
    if (!m) return lines;
    // Like receive-pack's advertisement, the list for a push has no HEAD: `git push --mirror`
    // would otherwise ask to delete a ref called HEAD (HEAD is not under refs/).
    if (!forPush && m.head && m.refs[m.head]) lines.push(`@${m.head} HEAD`);
    for (const [name, oid] of Object.entries(m.refs)) {
      lines.push(`${oid} ${name}`);
      // As upload-pack advertises annotated tags: the peeled line right after its ref, where git
      // (ls-remote, fetch's tag following) expects it. receive-pack advertises none for a push.
      const target = m.peeled?.[name];
      if (target && !forPush) lines.push(`${target} ${name}^{}`);
    }
    return lines;
  }

  async end(): Promise<void> {
    await this.clone.finish();
  }

  async fetch(batch: FetchRequest[]): Promise<string[]> {
    if (!this.repo || !this.snapshot?.manifest) throw new KmscryptError('BAD_PROTOCOL', 'git asked to fetch before listing refs');
    // A clone has just taken the remote's format from the list; anything else must have it already.
    if (!this.options.cloning) await this.checkObjectFormat(this.repo);
    // Loaded on demand: a helper process only ever fetches or pushes, and start-up time counts.
    const { fetchObjects } = await import('./fetch');
    const result = await fetchObjects(this.repo, this.snapshot.manifest, batch, this.options);
    return [...result.locks.map((file) => `lock ${file}`), ...(result.connected ? ['connectivity-ok'] : [])];
  }

  private async checkObjectFormat(repo: RemoteRepository): Promise<void> {
    const local = await localObjectFormat();
    const remote = repo.descriptor.objectFormat;
    if (local === remote) return;
    throw new KmscryptError('BAD_CONFIG', `${this.config.url} holds ${remote} objects but this repository uses ${local}`, {
      local,
      remote,
      fix: `git cannot push or fetch between the two formats: push to a new location (it takes this repository's format), or clone it into a separate ${remote} repository`,
    });
  }

  async push(batch: PushRequest[]): Promise<string[]> {
    if (!this.repo && this.options.dryRun) return batch.map((b) => `ok ${b.dst}`);
    if (!this.repo) {
      const format = await localObjectFormat();
      this.repo = await RemoteRepository.create(this.config, format);
      // Another first push may have created it first: then it is adopted and read like any other.
      this.snapshot = this.repo.created ? NO_MANIFEST : await this.repo.latest('write');
    }
    await this.checkObjectFormat(this.repo);
    const { push } = await import('./push');
    const outcomes = await push(
      this.repo,
      batch.map((b) => ({ src: b.src === '' ? null : b.src, dst: b.dst, force: b.force })),
      this.snapshot ?? (await this.repo.latest('write')),
      this.options,
    );
    const listedRefs = this.snapshot?.manifest?.refs ?? {};
    for (const o of outcomes.filter((o) => !o.error && batch.some((b) => b.dst === o.dst && b.src === '') && listedRefs[o.dst] === undefined)) {
      process.stderr.write(`warning: kmscrypt: deleting a non-existent ref ${o.dst}\n`);
    }
    for (const o of outcomes.filter((o) => o.error === DELETE_CURRENT_BRANCH)) {
      // receive-pack explains its refusal on stderr too; git's own line gives the reason only.
      process.stderr.write(
        `error: kmscrypt: refusing to delete the current branch ${o.dst}, the remote's HEAD (a clone would check out nothing); to delete it, first point HEAD at another branch: git kmscrypt set-head ${this.remoteName ?? `kmscrypt::${this.config.url}`} <branch>\n`,
      );
    }
    return outcomes.map((o) => (o.error ? `error ${o.dst} ${o.error}` : `ok ${o.dst}`));
  }
}

/** A boolean option value: transport-helper sends "true"/"false" for some options, "1" or "yes" for others. */
function isTrue(value: string): boolean {
  return ['true', 'yes', '1', 'on'].includes(value.toLowerCase());
}
