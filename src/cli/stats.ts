import { appendFileSync } from 'node:fs';
import { isKmscryptError } from '../errors';
import type { RemoteConfig } from '../remote/remote-repository';

/**
 * What git -v shows of a helper's work, one line: "kmscrypt: file:///srv/repo: storage 3 get,
 * 1 put, 2 list; KMS 1 generateDataKey; 0.42 s".
 */
export function requestSummary(config: RemoteConfig, startedAt: number): string {
  const counted = (counts: object) =>
    Object.entries(counts)
      .filter(([kind, n]) => kind !== 'total' && typeof n === 'number' && n > 0)
      .map(([kind, n]) => `${n} ${kind}`)
      .join(', ') || 'none';
  return `kmscrypt: ${config.url}: storage ${counted(config.storage.requests)}; KMS ${counted(config.keys.calls)}; ${((Date.now() - startedAt) / 1000).toFixed(2)} s\n`;
}

/**
 * With KMSCRYPT_STATS=<file>, each process appends one JSON line when it ends: storage requests
 * by kind and bytes read from storage, KMS calls, peak RSS and wall time. Tests assert the exact
 * counts; the benchmark reads the peak RSS and bytes read of every helper process; a failed
 * process also records its error's code, which tests compare (git reports every helper failure
 * with the same exit status). Nothing is written when the variable is unset.
 */
export function recordStats(command: string, config: RemoteConfig | undefined, startedAt: number, outcome: 'ok' | 'error', err?: unknown): void {
  const file = process.env.KMSCRYPT_STATS;
  if (!file) return;
  const line = {
    pid: process.pid,
    command,
    url: config?.url,
    outcome,
    ...(outcome === 'error' ? { errorCode: isKmscryptError(err) ? err.code : 'not a KmscryptError' } : {}),
    wallMs: Date.now() - startedAt,
    maxRssKiB: process.resourceUsage().maxRSS,
    storage: config?.storage.requests,
    storageBytesRead: config?.storage.bytesRead,
    kms: config?.keys.calls,
  };
  try {
    appendFileSync(file, JSON.stringify(line) + '\n');
  } catch {
    // Statistics never make a git operation fail.
  }
}
