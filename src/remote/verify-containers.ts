import { KmscryptError } from '../errors';
import { containerIdOfKey, containerKey, generationOfKey, STORE_KEYS } from '../format/constants';
import { sha256Hex } from '../format/container';
import type { ContainerRef, Manifest } from '../format/manifest';
import type { StoredObjectInfo } from '../storage/storage';
import { OpenedContainer, openContainer, planRuns, readRun, RecordRun } from './container-reader';
import { openLargeRecord } from './large-record';
import type { RecordSpool } from './record-spool';
import type { RemoteRepository } from './remote-repository';
import { addProblem, VerifyReport } from './verify-report';

/**
 * Checks every container the manifest lists against the store (present, of the listed size) and
 * authenticates every byte of it (preamble, index, each record's tag or MAC), spooling each
 * record's decrypted payload for git. Containers the manifest does not list are noted as orphans.
 * Returns the objects whose record failed authentication, each with the container holding it.
 */
export async function checkContainers(
  repo: RemoteRepository,
  manifest: Manifest,
  listing: StoredObjectInfo[],
  spool: RecordSpool,
  work: string,
  report: VerifyReport,
): Promise<Map<string, string>> {
  const stored = new Map<string, number>();
  for (const o of listing) {
    const id = containerIdOfKey(o.key);
    if (id) stored.set(id, o.size);
    else if (
      o.key !== STORE_KEYS.descriptor &&
      generationOfKey(o.key) === undefined &&
      !o.key.startsWith(STORE_KEYS.schedulePrefix) &&
      !o.key.startsWith(STORE_KEYS.historyPrefix)
    ) {
      report.notes.push(`${o.key} (${o.size} bytes) is not part of the repository format`);
    }
  }
  const listed = new Set(manifest.containers.map((c) => c.id));
  for (const [id, size] of stored) {
    if (listed.has(id)) continue;
    report.orphans.push({ id, size });
    report.notes.push(`container ${id} (${size} bytes) is not in manifest ${manifest.generation}: left by an interrupted push, or superseded and awaiting gc`);
  }
  const unreadable = new Map<string, string>();
  for (const ref of manifest.containers) {
    const size = stored.get(ref.id);
    if (size === undefined) {
      addProblem(report, `container ${ref.id}, listed in manifest ${manifest.generation}, is missing from the store: it was deleted`);
    } else if (size !== ref.size) {
      addProblem(report, `container ${ref.id} is ${size} bytes but manifest ${manifest.generation} says ${ref.size}: it was truncated or replaced`);
    } else {
      await checkContainer(repo, ref, { spool, work, report, unreadable });
    }
  }
  return unreadable;
}

interface ContainerCheck {
  spool: RecordSpool;
  work: string;
  report: VerifyReport;
  unreadable: Map<string, string>;
}

/** Authenticates every byte of one container and spools each record's decrypted payload. */
async function checkContainer(repo: RemoteRepository, ref: ContainerRef, { spool, work, report, unreadable }: ContainerCheck): Promise<void> {
  let opened: OpenedContainer;
  try {
    opened = await openContainer(repo, ref);
  } catch (err) {
    addProblem(report, err);
    return;
  }
  const { index } = opened;
  report.records += index.count;
  let preambleHash: string;
  try {
    preambleHash = sha256Hex(await repo.storage.getRange(containerKey(ref.id), { start: 0, end: index.recordsStart }));
  } catch (err) {
    addProblem(report, err);
    return;
  }
  if (ref.preambleLength !== index.recordsStart || preambleHash !== ref.preambleHash) {
    addProblem(report, `container ${ref.id}: its plaintext preamble does not match the manifest: it was altered`);
  }
  // The preamble is reported above, once; the records are then checked on their own.
  const c: OpenedContainer = { ...opened, ref: { ...ref, preambleLength: index.recordsStart, preambleHash } };
  const queue: RecordRun[] = planRuns(
    index,
    Array.from({ length: index.count }, (_, i) => i),
  );
  while (queue.length > 0) {
    const run = queue.shift()!;
    let next = run.first;
    try {
      if (run.large) {
        await spool.add(c, run.first, await openLargeRecord(repo, c, run.first, work));
        continue;
      }
      for await (const { i, payload } of readRun(repo, c, run, () => true)) {
        await spool.add(c, i, [payload]);
        next = i + 1;
      }
    } catch (err) {
      addProblem(report, err);
      // A failed unit is one record, or a whole segment: none of its objects can be trusted.
      const unitLast = index.unitLast(next);
      if (isRecordFailure(err)) for (let k = next; k <= unitLast; k++) unreadable.set(index.oidHex(k), ref.id);
      else {
        const rest = next === index.count - 1 ? `record ${next}` : `records ${next}-${index.count - 1}`;
        addProblem(report, `container ${ref.id}: ${rest} of ${index.count} could not be checked after that failure`);
        return;
      }
      if (!run.large && unitLast < run.last) queue.unshift({ first: unitLast + 1, last: run.last, large: false });
    }
  }
}

/** A record (not the whole container) failed authentication: the records after it can still be read. */
function isRecordFailure(err: unknown): boolean {
  return err instanceof KmscryptError && err.code === 'TAMPERED' && (err.data.scope === 'record' || err.data.scope === 'segment');
}
