import { appendFileSync } from 'node:fs';
import type { RemoteConfig } from '../remote/remote-repository';

/**
 * With KMSCRYPT_STATS=<file>, each process appends one JSON line when it ends: storage requests
 * by kind, KMS calls, peak RSS and wall time. Tests assert the exact counts; the benchmark reads
 * the peak RSS of every helper process. Nothing is written when the variable is unset.
 */
export function recordStats(command: string, config: RemoteConfig | undefined, startedAt: number, outcome: 'ok' | 'error'): void {
  const file = process.env.KMSCRYPT_STATS;
  if (!file) return;
  const line = {
    pid: process.pid,
    command,
    url: config?.url,
    outcome,
    wallMs: Date.now() - startedAt,
    maxRssKiB: process.resourceUsage().maxRSS,
    storage: config?.storage.requests,
    kms: config?.keys.calls,
  };
  try {
    appendFileSync(file, JSON.stringify(line) + '\n');
  } catch {
    // Statistics never make a git operation fail.
  }
}
