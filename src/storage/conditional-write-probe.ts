import { createHash, randomBytes } from 'node:crypto';
import type { Storage } from './storage';

export interface ProbeResult {
  ok: boolean;
  /** Short, lower-case, no final period: it is quoted inside other messages. */
  detail: string;
}

/**
 * Checks that the server enforces the conditional writes concurrent pushes rely on, on a random
 * key it deletes afterwards: a second create-only write must be refused, a replace with a wrong
 * etag must be refused, and a replace with the right etag must succeed. Some S3-compatible
 * servers accept If-None-Match / If-Match and silently ignore them.
 */
export async function probeConditionalWrites(storage: Storage): Promise<ProbeResult> {
  const key = `.kmscrypt-probe-${randomBytes(8).toString('hex')}`;
  const body = (label: string) => Buffer.from(`kmscrypt conditional-write probe: ${label}\n`);
  try {
    if (!(await storage.putIfAbsent(key, body('first')))) {
      return { ok: false, detail: `a create-only write of the new random key ${key} was refused` };
    }
    if (await storage.putIfAbsent(key, body('second'))) {
      return { ok: false, detail: 'a create-only write (If-None-Match: *) overwrote an existing object' };
    }
    const wrongEtag = createHash('md5').update(randomBytes(16)).digest('hex');
    if (await storage.putIfMatch(key, body('stale'), wrongEtag)) {
      return { ok: false, detail: 'a compare-and-swap write (If-Match) with a wrong etag replaced the object' };
    }
    const current = await storage.head(key);
    if (!current) return { ok: false, detail: `the probe object ${key} vanished right after it was written` };
    if (!(await storage.putIfMatch(key, body('swap'), current.etag))) {
      return { ok: false, detail: 'a compare-and-swap write (If-Match) with the current etag was refused' };
    }
    return { ok: true, detail: 'If-None-Match and If-Match are enforced' };
  } finally {
    // A failed cleanup leaves one small hidden object; it must not hide the probe's own error.
    await storage.delete(key).catch(() => undefined);
  }
}
