import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import type { Manifest } from '../format/manifest';
import { hashLength } from '../format/object-format';
import { packHeader } from '../git/pack-format';
import { PackIndexFile } from '../git/pack-index-file';
import { PackStream } from '../git/pack-stream';
import { GitResult, lastLine, runGit } from '../git/run-git';
import type { RecordSpool, SpoolEntry } from './record-spool';
import type { RemoteRepository } from './remote-repository';
import { addProblem, VerifyReport } from './verify-report';

/**
 * In a scratch repository: hands every resolvable spooled record to git in one pack (git hashes
 * each object itself), checks that each decrypted to the object ID the index claims, recreates the
 * refs, and lets `git fsck --strict` and `git rev-list` check that each ref's whole history is there.
 * `unreadable`: the objects whose record failed authentication, with the container holding each.
 */
export async function checkWithGit(
  repo: RemoteRepository,
  manifest: Manifest,
  spool: RecordSpool,
  unreadable: ReadonlyMap<string, string>,
  work: string,
  report: VerifyReport,
): Promise<void> {
  const format = repo.descriptor.objectFormat;
  const gitDir = join(work, 'scratch.git');
  await runGit(['init', '-q', '--bare', `--object-format=${format}`, gitDir], { cwd: work, isolated: {} });
  const git = (args: string[], input?: string) => runGit(args, { input, isolated: { gitDir }, okCodes: 'any' });
  const included = resolvableEntries(spool.entries, report);
  if (included.length > 0) {
    const indexed = await runGit(['index-pack', '--stdin'], {
      isolated: { gitDir },
      okCodes: 'any',
      input: async (stdin) => {
        const pack = new PackStream(stdin, format === 'sha1' ? 'sha1' : 'sha256');
        await pack.write(packHeader(included.length));
        await spool.copyTo(pack, included);
        await pack.end();
      },
    });
    const packHash = /^(?:pack|keep)\t([0-9a-f]+)$/m.exec(indexed.stdout.toString('utf8'))?.[1];
    if (indexed.code !== 0 || !packHash) {
      addProblem(report, `git index-pack refused the decrypted objects: ${lastLine(indexed.stderr) || `exit ${indexed.code}`}`);
      return;
    }
    const idx = new PackIndexFile(await fs.readFile(join(gitDir, 'objects', 'pack', `pack-${packHash}.idx`)), hashLength(format));
    let offset = 12;
    for (const e of included) {
      const k = idx.positionAtOffset(offset);
      const actual = k < 0 ? 'none' : idx.oid(k).toString('hex');
      if (actual !== e.oid) {
        addProblem(
          report,
          `object ${e.oid} in container ${e.container} decrypted to an object whose ID is ${actual}: the container was written by a faulty or hostile client`,
        );
      }
      offset += e.end - e.start;
    }
  }
  await checkRefs(manifest, git, unreadable, report);
}

/** The spooled entries whose delta chain ends in a spooled whole object; the others are reported. */
function resolvableEntries(entries: SpoolEntry[], report: VerifyReport): SpoolEntry[] {
  const copies = new Map<string, number>();
  for (const e of entries) copies.set(e.oid, (copies.get(e.oid) ?? 0) + 1);
  let included = entries;
  for (;;) {
    const dropped = included.filter((e) => e.base !== undefined && !copies.has(e.base));
    if (dropped.length === 0) return included;
    for (const e of dropped) {
      addProblem(report, `object ${e.oid} in container ${e.container} is a delta against ${e.base}, which no readable record holds`);
      const left = copies.get(e.oid)! - 1;
      if (left === 0) copies.delete(e.oid);
      else copies.set(e.oid, left);
    }
    const gone = new Set(dropped);
    included = included.filter((e) => !gone.has(e));
  }
}

type ScratchGit = (args: string[], input?: string) => Promise<GitResult>;

async function checkRefs(manifest: Manifest, git: ScratchGit, unreadable: ReadonlyMap<string, string>, report: VerifyReport): Promise<void> {
  const refs = Object.entries(manifest.refs);
  const oids = [...new Set(refs.map(([, oid]) => oid))];
  const present = new Set<string>();
  if (oids.length > 0) {
    const out = await git(['cat-file', '--batch-check=%(objectname)'], oids.join('\n') + '\n');
    for (const line of out.stdout.toString('utf8').split('\n')) if (/^[0-9a-f]{40,64}$/.test(line)) present.add(line);
  }
  const reachable = refs.filter(([name, oid]) => {
    if (present.has(oid)) return true;
    const holder = unreadable.get(oid);
    addProblem(
      report,
      `ref ${name} points to object ${oid}, ${holder ? `whose record in container ${holder} failed authentication` : 'which no container holds'}`,
    );
    return false;
  });
  if (manifest.head !== null && manifest.refs[manifest.head] === undefined) {
    report.notes.push(`HEAD names ${manifest.head}, which does not exist: clones will check out nothing`);
  }
  if (reachable.length > 0) {
    const updated = await git(['update-ref', '--stdin'], reachable.map(([name, oid]) => `update ${name} ${oid}\n`).join(''));
    if (updated.code !== 0) addProblem(report, `the refs cannot be recreated in a scratch repository: ${lastLine(updated.stderr)}`);
  }
  if (manifest.head !== null && manifest.refs[manifest.head] !== undefined) await git(['symbolic-ref', 'HEAD', manifest.head]);

  const fsck = await git(['fsck', '--strict', '--no-dangling', '--no-progress']);
  const lines = fsckFindings(`${fsck.stdout.toString('utf8')}\n${fsck.stderr}`);
  for (const line of lines) {
    if (fsck.code !== 0) addProblem(report, `git fsck --strict: ${line}`);
    else report.notes.push(`git fsck --strict: ${line}`);
  }
  if (fsck.code !== 0 && lines.length === 0) addProblem(report, `git fsck --strict failed (exit ${fsck.code})`);

  if (reachable.length === 0) return;
  const all = await git(['rev-list', '--objects', '--quiet', '--all']);
  if (all.code === 0) return;
  for (const [name, oid] of reachable) {
    const one = await git(['rev-list', '--objects', '--quiet', oid]);
    if (one.code !== 0) addProblem(report, `ref ${name}: its history is incomplete (${lastLine(one.stderr) || `git rev-list exit ${one.code}`})`);
  }
}

/** git fsck's findings, one line each, without its progress and notices. */
function fsckFindings(output: string): string[] {
  const lines: string[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.replace(/\s+/g, ' ').trim();
    if (line === '' || /^(notice|Checking|dangling)\b/.test(line)) continue;
    // "broken link from <object>" continues on the next line with "to <object>".
    if (line.startsWith('to ') && lines.length > 0 && lines[lines.length - 1].startsWith('broken link from')) lines[lines.length - 1] += ` ${line}`;
    else lines.push(line);
  }
  return lines;
}
