import { isKmscryptError, KmscryptError } from '../errors';
import { checkDescriptorProof } from '../format/descriptor';
import { KnownRemotes } from './known-remotes';
import type { ManifestSnapshot, RemoteRepository } from './remote-repository';

/** What the caller is about to do with the repository: a push writes, a fetch or clone reads. */
export type Intent = 'read' | 'write';

/**
 * First contact of this clone with a location (docs/FORMAT.md §3.1): whoever can write to the
 * store can put any descriptor there, so the repository it names is adopted only on something
 * only a principal allowed to use its KMS key could have made: an authenticated manifest (which
 * binds every byte of the descriptor by its hash: `snapshot`, already opened), or, in a
 * repository without manifests, the descriptor's own proof. A descriptor created at another
 * location is a copy or a moved repository: a push refuses it, a fetch or clone warns once.
 * Then the location is pinned to the repository ID (KnownRemotes) and later contact checks that.
 */
export async function adoptRepository(repo: RemoteRepository, snapshot: ManifestSnapshot, intent: Intent): Promise<void> {
  const { descriptor: d, config } = repo;
  if (!snapshot.manifest) await checkProof(repo);
  if (d.location !== undefined && d.location !== config.url) {
    if (intent === 'write') {
      throw new KmscryptError(
        'TAMPERED',
        `${config.url} holds repository ${d.repositoryId}, which was created at ${d.location}: a copy of it, or it was moved here`,
        {
          reason: 'location',
          location: d.location,
          unchanged: 'nothing is pushed into it from a clone that has not used it here',
          fix: `if it was moved deliberately, fetch or clone it from ${config.url} first`,
        },
      );
    }
    process.stderr.write(
      `warning: kmscrypt: ${config.url} holds repository ${d.repositoryId}, which was created at ${d.location} (moved or copied here); reading it\n`,
    );
  }
  await KnownRemotes.in(config.stateDir).remember(config.url, d.repositoryId);
}

/** A repository without manifests is adopted only if its descriptor's proof verifies (version 2). */
export async function checkProof(repo: RemoteRepository): Promise<void> {
  const { descriptor: d, config } = repo;
  const refuse = (found: string) =>
    new KmscryptError(
      'TAMPERED',
      `${config.url} holds a descriptor (kmscrypt.json) of repository ${d.repositoryId} but no manifest, and ${found}, so it is not used`,
      { reason: 'unproven-descriptor', fix: `if you created it and it is empty, delete ${config.url}/kmscrypt.json and push again` },
    );
  if (!d.proof) throw refuse('no proof of who made it (written by an earlier kmscrypt, or copied from elsewhere)');
  // An untrusted key is refused here, before KMS is asked anything about it.
  await repo.trust.accept(d.keyId, []);
  let dataKey: Buffer;
  try {
    dataKey = await repo.dataKeys.unwrap(Buffer.from(d.proof.wrappedKey, 'base64'), d.keyId);
  } catch (err) {
    const kmsError = isKmscryptError(err, 'KEY_ERROR') ? err.data.kmsError : undefined;
    if (kmsError === 'InvalidCiphertextException' || kmsError === 'IncorrectKeyException')
      throw refuse(`its proof's data key does not unwrap under ${d.keyId} for this repository (${kmsError})`);
    throw err;
  }
  try {
    checkDescriptorProof(d, dataKey, `${config.url}/kmscrypt.json`);
  } catch (err) {
    if (isKmscryptError(err, 'TAMPERED')) throw refuse('its proof does not verify (a field was changed after it was made)');
    throw err;
  }
}
