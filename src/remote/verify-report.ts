import { errorMessage } from '../errors';
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

/** Records a problem: a line of verify's own, or a failure (which says what was found). */
export function addProblem(report: VerifyReport, what: unknown): void {
  const line = typeof what === 'string' ? what : errorMessage(what);
  report.problems.push(line.replace(/; (nothing was handed to git|no ref was changed)$/, ''));
}
