import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { removeOnInterrupt } from '../interrupt-cleanup';
import { RecordSpool } from './record-spool';
import type { RemoteRepository } from './remote-repository';
import { checkContainers } from './verify-containers';
import { checkManifests } from './verify-manifests';
import { emptyReport, VerifyReport } from './verify-report';
import { checkWithGit } from './verify-with-git';

export type { VerifyReport } from './verify-report';

/**
 * Checks everything a reader relies on: every stored manifest (authenticated, bound to the
 * descriptor, chained to its predecessor), every container the newest manifest lists (preamble,
 * index and every record's tag or MAC), and then, in a scratch repository, that git accepts every
 * decrypted object under the ID the index claims and that each ref's whole history is present.
 */
export async function verifyRepository(repo: RemoteRepository): Promise<VerifyReport> {
  const work = await fs.mkdtemp(join(tmpdir(), 'kmscrypt-verify-'));
  const releaseWork = removeOnInterrupt(work);
  try {
    const report = emptyReport(repo);
    const listing = await repo.storage.list('');
    report.bytes = listing.reduce((n, o) => n + o.size, 0);
    const manifest = await checkManifests(repo, listing, report);
    if (!manifest) return report;
    report.refs = Object.keys(manifest.refs).length;
    report.containers = manifest.containers.length;
    const spool = await RecordSpool.create(join(work, 'records.spool'));
    try {
      const unreadable = await checkContainers(repo, manifest, listing, spool, work, report);
      await checkWithGit(repo, manifest, spool, unreadable, work, report);
    } finally {
      await spool.close();
    }
    return report;
  } finally {
    await fs.rm(work, { recursive: true, force: true });
    releaseWork();
  }
}
