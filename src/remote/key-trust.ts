import { timingSafeEqual } from 'node:crypto';
import { isKmscryptError, KmscryptError, errorMessage } from '../errors';
import { Endorsement, endorsementPlaintext } from '../format/endorsement';
import { hasAnyRef } from '../git/repository';
import { repositoryContext } from '../keys/key-provider';
import { DEFAULT_ALIAS } from '../keys/keyring';
import type { LocalState } from './local-state';
import type { RemoteRepository } from './remote-repository';

/**
 * Which KMS keys this clone accepts for one repository (docs/FORMAT.md §7.3). Whoever can write to
 * the store can name a key of their own in it, to read what is pushed next or to serve history
 * sealed under it, so a key is accepted only when it is trusted as is (kmscrypt.keyId, the user's
 * own alias/kmscrypt, or a key this clone accepted before for the repository) or when a chain of
 * rotation endorsements leads to it from such a key, each checked with a Decrypt under the
 * endorsing key. Nothing is asked of a key before it is accepted, and Decrypt always names the key.
 */
export class KeyTrust {
  private own?: Promise<string[]>;
  /** The local keyring that should hold the user's own keys does not exist (ownKeys found none for that reason). */
  private keyringMissing = false;
  private readonly accepted = new Set<string>();

  constructor(private readonly repo: RemoteRepository) {}

  /**
   * Starts describing the user's own keys when this clone has accepted no key of the repository
   * yet (a first clone, an ls-remote outside a repository): the first manifest will need them
   * (isTrusted), and the KMS round trip then overlaps the store's. Not when kmscrypt.keyId is an
   * ARN, which a manifest's key can equal without any question to KMS. A failure here is left for
   * the call that needs the answer to report. `state`: the clone's state, when the caller has read it.
   */
  prefetch(state?: LocalState): void {
    if (this.repo.config.keyId?.startsWith('arn:')) return;
    (state ? Promise.resolve(state) : this.repo.state.load()).then(
      (state) => {
        if (state.trustedKeys.length === 0) this.ownKeys().catch(() => undefined);
      },
      () => undefined,
    );
  }

  /** Whether `keyRef` (an ARN, or a key as an older manifest named it) is trusted without proof. */
  async isTrusted(keyRef: string): Promise<boolean> {
    if ([...this.accepted].some((k) => sameKey(k, keyRef))) return true;
    if ((await this.repo.state.load()).trustedKeys.some((k) => sameKey(k, keyRef))) return true;
    const { keyId } = this.repo.config;
    if (keyRef === keyId || keyRef === DEFAULT_ALIAS) return true;
    return (await this.ownKeys()).some((arn) => sameKey(arn, keyRef));
  }

  /**
   * Accepts the key (ARN) that sealed a manifest, trusted as is or endorsed along `endorsements`
   * from a trusted key; refuses it, having asked it nothing, otherwise. Remembered once accepted.
   */
  async accept(arn: string, endorsements: readonly Endorsement[]): Promise<void> {
    if (!(await this.isTrusted(arn))) {
      const path = await this.pathTo(arn, endorsements);
      if (!path) throw await this.untrusted(arn);
      for (const e of path) await this.checkEndorsement(e, arn);
    }
    await this.remember(arn);
  }

  /** Remembers a key as trusted for the repository in this clone (rotate-key's target, a new repository's key). */
  async remember(arn: string): Promise<void> {
    this.accepted.add(arn);
    if (!(await this.repo.state.load()).trustedKeys.includes(arn)) await this.repo.state.update({ trustedKey: arn });
  }

  /**
   * The KeyId to give Decrypt for a manifest of version 1 or 2, whose preamble names its key as
   * configured then (an ID, ARN or alias) without binding it: that key when it is trusted, else
   * the key this clone trusts (KMS then refuses a data key of any other key).
   */
  async legacyKeyId(named: string): Promise<string> {
    if (await this.isTrusted(named)) return named;
    const remembered = (await this.repo.state.load()).trustedKeys;
    const fallback = remembered[remembered.length - 1] ?? this.repo.config.keyId ?? (await this.ownKeys())[0];
    if (fallback === undefined) throw await this.untrusted(named);
    return fallback;
  }

  /** One line naming the key and the one command that makes this clone trust it. */
  async untrusted(keyRef: string): Promise<KmscryptError> {
    // With the user's own keyring gone, restoring it is the fix, whatever the store's key: the
    // keyring provider names that key in its own line, and asks no one (the keyring is a file).
    if (this.keyringMissing) {
      const missing = await this.repo.config.keys.describeKey(keyRef).then(
        () => undefined,
        (err: unknown) => err,
      );
      if (isKmscryptError(missing, 'KEY_ERROR') && missing.data.keyringMissing) return missing;
    }
    return new KmscryptError(
      'KEY_ERROR',
      `${this.repo.config.url} is protected by KMS key ${keyRef}, which this clone does not trust: it is not kmscrypt.keyId or your alias/kmscrypt, this clone has not used it, and no key it trusts endorsed it (rotate-key does)`,
      { reason: 'untrusted-key', keyId: keyRef, unchanged: 'nothing was asked of it', fix: `if you trust it: ${await this.fixFor(keyRef)}` },
    );
  }

  /**
   * The command that makes this clone trust a key: in a repository being cloned (no ref yet) the
   * clone command with the setting, since git removes the directory when the clone fails.
   */
  private async fixFor(keyRef: string): Promise<string> {
    const { config } = this.repo;
    if (config.stateDir === undefined) return `KMSCRYPT_KEY_ID=${keyRef}`;
    if (await hasAnyRef().catch(() => true)) return `git config kmscrypt.keyId ${keyRef}`;
    return `git clone -c kmscrypt.keyId=${keyRef} kmscrypt::${config.userUrl ?? config.url}`;
  }

  /** The shortest chain of endorsements from a trusted key to `target`, found without any KMS call on an untrusted key. */
  private async pathTo(target: string, endorsements: readonly Endorsement[]): Promise<Endorsement[] | undefined> {
    const via = new Map<string, Endorsement>();
    const frontier = [target];
    while (frontier.length > 0) {
      const key = frontier.shift()!;
      for (const e of endorsements) {
        if (e.to !== key || e.from === target || via.has(e.from)) continue;
        via.set(e.from, e);
        if (await this.isTrusted(e.from)) {
          const path: Endorsement[] = [];
          for (let link: Endorsement | undefined = e; link; link = link.to === target ? undefined : via.get(link.to)) path.push(link);
          return path;
        }
        frontier.push(e.from);
      }
    }
    return undefined;
  }

  /** Decrypt under the endorsing key (trusted by now) must give the endorsement's plaintext. */
  private async checkEndorsement(e: Endorsement, target: string): Promise<void> {
    const { config, repositoryId } = this.repo;
    let plaintext: Buffer;
    try {
      plaintext = await config.keys.decrypt(e.from, e.ciphertext, repositoryContext(repositoryId));
    } catch (err) {
      const kmsError = isKmscryptError(err) ? err.data.kmsError : undefined;
      if (kmsError !== 'InvalidCiphertextException' && kmsError !== 'IncorrectKeyException') {
        throw new KmscryptError(
          'KEY_ERROR',
          `${config.url} moved to KMS key ${target}; this clone trusts ${e.from} and cannot check that it endorsed ${e.to}: ${errorMessage(err)}`,
          {
            reason: 'endorsement-unchecked',
            keyId: e.from,
            kmsError,
            fix: `once that works, try again, or if you trust ${target}: ${await this.fixFor(target)}`,
          },
        );
      }
      plaintext = Buffer.alloc(0);
    }
    const expected = endorsementPlaintext(repositoryId, e.to);
    const valid = plaintext.length === expected.length && timingSafeEqual(plaintext, expected);
    plaintext.fill(0);
    if (!valid) {
      throw new KmscryptError(
        'TAMPERED',
        `${config.url} names KMS key ${e.to} as endorsed by ${e.from}, but the endorsement does not verify under ${e.from}: it was forged`,
        { reason: 'forged-endorsement', keyId: e.to, unchanged: `nothing was asked of ${e.to}; no ref was changed` },
      );
    }
    this.accepted.add(e.to);
  }

  /** ARNs of kmscrypt.keyId and alias/kmscrypt, described once (the user's own names: asking about them reveals nothing). */
  private ownKeys(): Promise<string[]> {
    this.own ??= (async () => {
      const names = [this.repo.config.keyId, DEFAULT_ALIAS].filter((k): k is string => k !== undefined);
      const arns: string[] = [];
      for (const name of names) {
        // A name that resolves to no key trusts nothing; any other failure (an unreadable keyring,
        // KMS out of reach) is the user's to see, not a reason to call the store's key untrusted.
        const described = await this.repo.config.keys.describeKey(name).catch((err: unknown) => {
          if (isKmscryptError(err, 'KEY_ERROR') && err.data.kmsError === 'NotFoundException') {
            if (err.data.keyringMissing) this.keyringMissing = true;
            return undefined;
          }
          throw err;
        });
        if (described) arns.push(described.arn);
      }
      return arns;
    })();
    return this.own;
  }
}

/** Whether two references name the same key: equal, or an ARN and its bare key ID. */
export function sameKey(a: string, b: string): boolean {
  return a === b || a.endsWith(`:key/${b}`) || b.endsWith(`:key/${a}`);
}
