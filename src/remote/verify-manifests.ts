import { errorMessage, KmscryptError } from '../errors';
import { generationOfKey, MANIFEST_READ } from '../format/constants';
import { sha256Hex } from '../format/container';
import { Manifest, parseManifestEnvelope } from '../format/manifest';
import type { StoredObjectInfo } from '../storage/storage';
import { ChainBreak, chainBreaks, StoredLink } from './manifest-chain';
import type { RemoteRepository } from './remote-repository';
import { checkProof } from './repository-identity';
import { addProblem, VerifyReport } from './verify-report';

/**
 * Walks every stored manifest in order: each authenticated and bound to the descriptor, the chain
 * of previous hashes unbroken, the newest not older than what this clone saw. Returns the newest
 * manifest that authenticated (its containers are checked next), or undefined when there is none.
 */
export async function checkManifests(repo: RemoteRepository, listing: StoredObjectInfo[], report: VerifyReport): Promise<Manifest | undefined> {
  const url = repo.config.url;
  const stored = listing
    .map((o) => ({ key: o.key, generation: generationOfKey(o.key) }))
    .filter((o): o is { key: string; generation: number } => o.generation !== undefined)
    .sort((a, b) => a.generation - b.generation);
  report.manifests = stored.length;
  const { location } = repo.descriptor;
  if (location !== undefined && location !== url)
    report.notes.push(`${url}: kmscrypt.json says the repository was created at ${location}: it was moved or copied here`);
  if (stored.length === 0) {
    report.notes.push(`${url} holds no manifest yet: the repository is empty`);
    // Nothing but the descriptor's own proof says who made it (docs/FORMAT.md §3.1).
    await checkProof(repo).catch((err: unknown) => addProblem(report, err));
    return undefined;
  }
  const last = stored[stored.length - 1].generation;
  stored.forEach((m, k) => {
    const after = k > 0 ? stored[k - 1].generation : 0;
    const missing = m.generation - 1 > after + 1 ? `manifests ${after + 1}-${m.generation - 1} are` : `manifest ${after + 1} is`;
    if (m.generation > after + 1) report.notes.push(`${missing} not stored (removed, e.g. by gc)`);
  });

  let newest: { manifest: Manifest; hash: string } | undefined;
  const links: StoredLink[] = [];
  const failures: Array<{ generation: number; what: unknown }> = [];
  for (const { key, generation } of stored) {
    const bytes = await repo.storage.get(key, MANIFEST_READ);
    if (!bytes) {
      failures.push({ generation, what: `${url}: manifest ${generation} disappeared while being verified; run verify again` });
      links.push({ generation });
      continue;
    }
    const hash = sha256Hex(bytes);
    let manifest: Manifest;
    try {
      manifest = (await repo.openManifestBytes(bytes, generation)).manifest!;
    } catch (err) {
      if (generation < last && isKeyUnavailable(err)) {
        // After rotate-key, old manifests stay under the old key (disabled, say) until gc removes
        // them; their successor's previous hash still vouches for their bytes.
        const sealedBy = parseManifestEnvelope(bytes, `manifest ${generation}`).keyId;
        report.notes.push(
          `manifest ${generation} (history, not needed to read the repository) is sealed under ${sealedBy} and was not authenticated: ${errorMessage(err)}`,
        );
        links.push({ generation, hash });
      } else {
        failures.push({ generation, what: err });
        links.push({ generation });
      }
      continue;
    }
    links.push({ generation, hash, previous: manifest.previous });
    newest = { manifest, hash };
  }
  const breaks = chainBreaks(links).map((b) => ({ generation: b.generation, what: chainBreakLine(url, b) }));
  // In generation order, as they were found.
  for (const { what } of [...failures, ...breaks].sort((a, b) => a.generation - b.generation)) addProblem(report, what);
  if (!newest) return undefined;
  const { manifest } = newest;
  if (manifest.generation !== last)
    addProblem(
      report,
      `${url}: the newest manifest (${last}) cannot be read, so git sees nothing; the containers of manifest ${manifest.generation} were checked instead`,
    );
  report.generation = manifest.generation;

  const seen = await repo.state.load();
  if (seen.generation > last) {
    addProblem(
      report,
      `${url} went backwards: its newest manifest is generation ${last} but this clone has seen ${seen.generation}; the newest manifests were deleted or withheld`,
    );
  } else if (seen.generation === last && seen.manifestHash && seen.manifestHash !== newest.hash && manifest.generation === last) {
    addProblem(report, `${url}: manifest ${last} is not the one this clone saw before: it was replaced`);
  }
  return manifest;
}

function chainBreakLine(url: string, { generation, kind }: ChainBreak): string {
  switch (kind) {
    case 'first-names-predecessor':
      return `${url}: manifest 1 names a predecessor; it was replaced`;
    case 'names-no-predecessor':
      return `${url}: manifest ${generation} names no predecessor; it was replaced`;
    case 'does-not-follow':
      return `${url}: manifest ${generation} does not follow the stored manifest ${generation - 1} (previous hash differs): one of them was replaced`;
  }
}

/**
 * The data key could not be unwrapped for a reason other than altered bytes: the key is disabled,
 * pending deletion, denied or not trusted here, as for a key retired after rotate-key.
 */
function isKeyUnavailable(err: unknown): boolean {
  if (!(err instanceof KmscryptError) || err.code !== 'KEY_ERROR') return false;
  return err.data.kmsError !== 'InvalidCiphertextException';
}
