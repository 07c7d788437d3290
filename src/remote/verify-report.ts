import { errorMessage, KmscryptError } from '../errors';
import type { RemoteRepository } from './remote-repository';

export interface VerifyReport {
  url: string;
  repositoryId: string;
  objectFormat: string;
  /** Manifests stored, and the newest generation that authenticated (0: none). */
  manifests: number;
  generation: number;
  containers: number;
  records: number;
  /** Everything the store holds for this repository, in bytes. */
  bytes: number;
  refs: number;
  /** Containers in the store that the newest manifest does not list. */
  orphans: Array<{ id: string; size: number }>;
  /** One line each; the repository is sound only when there is none. */
  problems: string[];
  /** Information that is not a fault (orphans, manifests under a retired key, …). */
  notes: string[];
}

export function emptyReport(repo: RemoteRepository): VerifyReport {
  return {
    url: repo.config.url,
    repositoryId: repo.repositoryId,
    objectFormat: repo.descriptor.objectFormat,
    manifests: 0,
    generation: 0,
    containers: 0,
    records: 0,
    bytes: 0,
    refs: 0,
    orphans: [],
    problems: [],
    notes: [],
  };
}

/**
 * Records a problem: a line of verify's own, or a failure, said without what it left unchanged
 * ("no ref was changed": verify changes no ref, and hands nothing to git but its scratch repository).
 */
export function addProblem(report: VerifyReport, what: unknown): void {
  if (what instanceof KmscryptError) report.problems.push(what.data.fix === undefined ? what.summary : `${what.summary}; ${what.data.fix}`);
  else report.problems.push(typeof what === 'string' ? what : errorMessage(what));
}
