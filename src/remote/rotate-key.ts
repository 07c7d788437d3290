import { errorMessage, KmscryptError } from '../errors';
import { Endorsement, endorsementPlaintext } from '../format/endorsement';
import type { ContainerRef, Manifest } from '../format/manifest';
import { DataKey, KeyDescription, KeyProvider, repositoryContext } from '../keys/key-provider';
import { KEY_FIXES } from '../keys/kms-errors';
import { killPoint, pausePoint } from './kill-point';
import type { ManifestSnapshot, RemoteRepository } from './remote-repository';

export interface RotateKeyReport {
  repositoryId: string;
  /** ARN of the key every data key of the newest manifest is now wrapped by. */
  keyArn: string;
  /** Data keys this run rewrapped (ReEncrypt) into the published manifest. */
  rewrapped: number;
  /** Containers whose data key was already under the key. */
  alreadyUnderKey: number;
  /** The generation published; null when the repository was already entirely under the key. */
  generation: number | null;
  /** Keys the newest manifest used before and no longer uses. */
  previousKeys: string[];
}

const MAX_PUBLISH_ATTEMPTS = 50;

/**
 * Moves a repository to another KMS key without touching object data: each container's data key
 * is rewrapped with ReEncrypt (KMS unwraps and rewraps it; the plaintext never leaves KMS), then
 * the next manifest, listing the rewrapped keys, sealed under a fresh data key of the new key and
 * carrying an endorsement of the new key made with the old one (docs/FORMAT.md §7.3), is
 * published with one create-only write. Until that write nothing in the store has changed, so an
 * interrupted run leaves the repository as it was; a rerun skips containers already under the key.
 */
export async function rotateKey(repo: RemoteRepository, target: string): Promise<RotateKeyReport> {
  const keys = repo.config.keys;
  const key = usable(
    await keys.describeKey(target).catch((err: unknown) => {
      throw missingTarget(err, target, keys);
    }),
    target,
  );
  const context = repositoryContext(repo.repositoryId);
  // Rewrapped entries by container and old wrapped key, and endorsements by endorsing key, kept across lost publication races.
  const done = new Map<string, ContainerRef>();
  const endorsed = new Map<string, Endorsement>();
  let dataKey: DataKey | undefined;
  try {
    for (let attempt = 1; ; attempt++) {
      const snapshot = await repo.latest();
      const base = snapshot.manifest;
      const previousKeys = new Set<string>();
      const containers: ContainerRef[] = [];
      let rewrapped = 0;
      for (const c of base?.containers ?? []) {
        if (c.keyId === key.arn) {
          containers.push(c);
          continue;
        }
        previousKeys.add(c.keyId);
        const id = `${c.id}:${c.wrappedKey}`;
        let next = done.get(id);
        if (!next) {
          const out = await keys.reEncrypt(Buffer.from(c.wrappedKey, 'base64'), context, key.arn).catch((err: unknown) => {
            throw unchanged(err, `cannot rewrap the data key of container ${c.id} under ${key.arn}`);
          });
          next = { ...c, keyId: out.keyId, wrappedKey: out.wrapped.toString('base64') };
          done.set(id, next);
        }
        containers.push(next);
        rewrapped++;
      }
      const sealedBy = snapshot.sealedBy;
      if (base && base.keyId !== key.arn) previousKeys.add(base.keyId);
      if (sealedBy !== null && sealedBy !== key.arn) previousKeys.add(sealedBy);
      const report = { repositoryId: repo.repositoryId, keyArn: key.arn, rewrapped, alreadyUnderKey: containers.length - rewrapped };
      if (!base && repo.descriptor.keyId !== key.arn) previousKeys.add(repo.descriptor.keyId);
      const alreadyDone = base ? previousKeys.size === 0 && sealedBy === key.arn : previousKeys.size === 0;
      if (alreadyDone) return { ...report, generation: null, previousKeys: [] };

      dataKey ??= await keys.generateDataKey(key.arn, context).catch((err: unknown) => {
        throw unchanged(
          err,
          `cannot generate the new manifest's data key under ${key.arn}${rewrapped ? ` (the ${rewrapped} rewrapped data keys were not published)` : ''}`,
        );
      });
      const endorsements = await endorse(repo, snapshot, key.arn, endorsed, rewrapped);
      const next = nextManifest(repo, snapshot, key.arn, containers);
      killPoint('rotate-rewrapped');
      await pausePoint('rotate-before-publish');
      if ((await repo.publish(next, dataKey, { history: snapshot.chain.history, endorsements })).published) {
        await repo.trust.remember(key.arn);
        return { ...report, generation: next.generation, previousKeys: [...previousKeys] };
      }
      if (attempt >= MAX_PUBLISH_ATTEMPTS) {
        throw new KmscryptError('CONFLICT', `${repo.config.url} is too busy: rotate-key lost the publication race ${attempt} times`, {
          fix: 'nothing was changed, run it again',
        });
      }
      await new Promise((r) => setTimeout(r, Math.min(1000, 5 * 2 ** Math.min(attempt, 8)) * Math.random()));
    }
  } finally {
    dataKey?.plaintext.fill(0);
  }
}

/**
 * The endorsements the next manifest carries (docs/FORMAT.md §7.3): the chain so far, and, when
 * the repository moves, one made with the key it is under now (kms:Encrypt), which every clone
 * that trusts that key checks before it accepts the new one.
 */
async function endorse(
  repo: RemoteRepository,
  snapshot: ManifestSnapshot,
  to: string,
  made: Map<string, Endorsement>,
  rewrapped: number,
): Promise<Endorsement[]> {
  const chain = snapshot.chain.endorsements;
  const from = snapshot.sealedBy ?? repo.descriptor.keyId;
  if (from === to || chain.some((e) => e.from === from && e.to === to)) return [...chain];
  let endorsement = made.get(from);
  if (!endorsement) {
    const out = await repo.config.keys
      .encrypt(from, endorsementPlaintext(repo.repositoryId, to), repositoryContext(repo.repositoryId))
      .catch((err: unknown) => {
        throw unchanged(
          err,
          `cannot endorse ${to} with ${from}, the key the repository is under now${rewrapped ? ` (the ${rewrapped} rewrapped data keys were not published)` : ''}`,
        );
      });
    endorsement = { from, to, ciphertext: out.ciphertext };
    made.set(from, endorsement);
  }
  return [...chain, endorsement];
}

function nextManifest(repo: RemoteRepository, snapshot: ManifestSnapshot, keyArn: string, containers: ContainerRef[]): Manifest {
  return repo.successor(snapshot, { keyId: keyArn, head: snapshot.manifest?.head ?? null, refs: snapshot.manifest?.refs ?? {}, containers });
}

/**
 * A --to key the key store does not have: the providers' advice (set kmscrypt.keyId, restore the
 * keyring) is for the repository's own key; here the fix is to name a key that exists or create it.
 * A local keyring that does not exist at all keeps its own advice.
 */
function missingTarget(err: unknown, target: string, keys: KeyProvider): unknown {
  if (!(err instanceof KmscryptError) || err.data.kmsError !== 'NotFoundException' || err.data.keyringMissing) return err;
  const fix = keys.keyStore().kind === 'keyring' ? KEY_FIXES.missingLocalTarget(target) : KEY_FIXES.missingKmsTarget;
  return new KmscryptError(err.code, err.summary, { ...err.data, fix });
}

function usable(key: KeyDescription, ref: string): KeyDescription {
  const named = ref === key.arn ? ref : `${ref} (${key.arn})`;
  if (!key.enabled) {
    throw new KmscryptError('KEY_ERROR', `key ${named} is ${key.state === 'Disabled' ? 'disabled' : `not usable (state ${key.state})`}`, {
      fix: 'enable it before moving the repository to it',
    });
  }
  if (key.keySpec !== 'SYMMETRIC_DEFAULT' || key.keyUsage !== 'ENCRYPT_DECRYPT') {
    throw new KmscryptError('KEY_ERROR', `key ${named} has KeySpec ${key.keySpec} and KeyUsage ${key.keyUsage}`, {
      fix: 'kmscrypt needs a symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT)',
    });
  }
  return key;
}

function unchanged(err: unknown, what: string): KmscryptError {
  // The facts of the failure are kept; its own message, fix included, becomes the cause.
  const data = err instanceof KmscryptError ? { ...err.data, unchanged: undefined } : {};
  const code = err instanceof KmscryptError ? err.code : 'KEY_ERROR';
  return new KmscryptError(code, `${what}: ${errorMessage(err)}`, { ...data, fix: 'nothing was changed: run rotate-key again once this is fixed' });
}
