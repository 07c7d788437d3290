import { spawn } from 'node:child_process';
import { gitFailure } from './run-git';

/** The subset of `oids` (hex) that the local repository has, asked of one `cat-file --batch-check`. */
export function presentObjects(oids: Iterable<string>): Promise<Set<string>> {
  return new Promise((resolve, reject) => {
    const child = spawn('git', ['cat-file', '--batch-check=%(objectname)', '--buffer'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const present = new Set<string>();
    let rest = '';
    let err = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) if (line && !line.endsWith(' missing')) present.add(line);
    });
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(present) : reject(gitFailure(['cat-file'], code, err))));
    child.stdin!.on('error', () => undefined);
    (async () => {
      const batch: string[] = [];
      for (const oid of oids) {
        batch.push(oid);
        if (batch.length >= 4096) {
          if (!child.stdin!.write(batch.join('\n') + '\n')) await new Promise((r) => child.stdin!.once('drain', r));
          batch.length = 0;
        }
      }
      child.stdin!.end(batch.length ? batch.join('\n') + '\n' : '');
    })().catch(reject);
  });
}

/**
 * Which objects the local repository has, asking git only about objects not asked about before:
 * the push and fetch paths need the answers for overlapping sets at several steps, and each
 * `cat-file` costs a process start.
 */
export class LocalObjects {
  private readonly answers = new Map<string, boolean>();

  /** Records answers learnt elsewhere (e.g. from resolving revisions). */
  learn(oids: Iterable<string>, present: Set<string>): void {
    for (const oid of oids) this.answers.set(oid, present.has(oid));
  }

  /** True only for an object already asked about and found. */
  knownPresent(oid: string): boolean {
    return this.answers.get(oid) === true;
  }

  /** The subset of `oids` that the local repository has. */
  async present(oids: Iterable<string>): Promise<Set<string>> {
    const list = [...oids];
    const unknown = new Set<string>();
    for (const oid of list) if (!this.answers.has(oid)) unknown.add(oid);
    if (unknown.size > 0) this.learn(unknown, await presentObjects(unknown));
    const out = new Set<string>();
    for (const oid of list) if (this.answers.get(oid)) out.add(oid);
    return out;
  }
}
