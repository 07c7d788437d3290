import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage, KmscryptError } from '../errors';
import { removeOnInterrupt } from '../interrupt-cleanup';
import { containerIdOfKey, containerKey, generationOfKey, MANIFEST_READ, STORE_KEYS } from '../format/constants';
import { sha256Hex } from '../format/container';
import { DELTA_TYPE } from '../format/container-index';
import { ContainerRef, Manifest, parseManifestEnvelope } from '../format/manifest';
import { hashLength } from '../format/object-format';
import { encodeEntryHeader, OBJ_REF_DELTA, packHeader } from '../git/pack-format';
import { PackIndexFile } from '../git/pack-index-file';
import type { StoredObjectInfo } from '../storage/storage';
import { OpenedContainer, openContainer, planRuns, readRun, RecordRun } from './container-reader';
import { openLargeRecord } from './large-record';
import { checkProof } from './repository-identity';
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

/** A decrypted record written to the spool: a pack entry (header and payload) at [start, end). */
interface SpoolEntry {
  container: string;
  oid: string;
  base?: string;
  start: number;
  end: number;
}

const CHUNK = 1 << 20;
/** Variables that would make the scratch repository's git commands look at another repository. */
const REPOSITORY_ENV = ['GIT_DIR', 'GIT_WORK_TREE', 'GIT_INDEX_FILE', 'GIT_OBJECT_DIRECTORY', 'GIT_ALTERNATE_OBJECT_DIRECTORIES', 'GIT_COMMON_DIR', 'GIT_NAMESPACE', 'GIT_QUARANTINE_PATH'];

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
    return await new Verifier(repo, work).run();
  } finally {
    await fs.rm(work, { recursive: true, force: true });
    releaseWork();
  }
}

class Verifier {
  private readonly report: VerifyReport;
  private readonly entries: SpoolEntry[] = [];
  /** Objects whose record failed authentication, and the container holding it. */
  private readonly unreadable = new Map<string, string>();
  private spool!: fs.FileHandle;
  private spoolLength = 0;

  constructor(
    private readonly repo: RemoteRepository,
    private readonly work: string,
  ) {
    this.report = {
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

  async run(): Promise<VerifyReport> {
    const listing = await this.repo.storage.list('');
    this.report.bytes = listing.reduce((n, o) => n + o.size, 0);
    const manifest = await this.checkManifests(listing);
    if (!manifest) return this.report;
    this.report.refs = Object.keys(manifest.refs).length;
    this.report.containers = manifest.containers.length;
    this.spool = await fs.open(join(this.work, 'records.spool'), 'w+', 0o600);
    try {
      await this.checkContainers(manifest, listing);
      await this.checkWithGit(manifest);
    } finally {
      await this.spool.close();
    }
    return this.report;
  }

  private problem(line: string): void {
    this.report.problems.push(line.replace(/; (nothing was handed to git|no ref was changed)$/, ''));
  }

  /** Every stored manifest in order; returns the newest that authenticated. */
  private async checkManifests(listing: StoredObjectInfo[]): Promise<Manifest | undefined> {
    const url = this.repo.config.url;
    const stored = listing
      .map((o) => ({ key: o.key, generation: generationOfKey(o.key) }))
      .filter((o): o is { key: string; generation: number } => o.generation !== undefined)
      .sort((a, b) => a.generation - b.generation);
    this.report.manifests = stored.length;
    const { location } = this.repo.descriptor;
    if (location !== undefined && location !== url) this.report.notes.push(`${url}: kmscrypt.json says the repository was created at ${location}: it was moved or copied here`);
    if (stored.length === 0) {
      this.report.notes.push(`${url} holds no manifest yet: the repository is empty`);
      // Nothing but the descriptor's own proof says who made it (docs/FORMAT.md §3.1).
      await checkProof(this.repo).catch((err: unknown) => this.problem(errorMessage(err)));
      return undefined;
    }
    const last = stored[stored.length - 1].generation;
    stored.forEach((m, k) => {
      const after = k > 0 ? stored[k - 1].generation : 0;
      const missing = m.generation - 1 > after + 1 ? `manifests ${after + 1}-${m.generation - 1} are` : `manifest ${after + 1} is`;
      if (m.generation > after + 1) this.report.notes.push(`${missing} not stored (removed, e.g. by gc)`);
    });

    let newest: { manifest: Manifest; hash: string } | undefined;
    let previous: { generation: number; hash: string } | undefined;
    for (const { key, generation } of stored) {
      const bytes = await this.repo.storage.get(key, MANIFEST_READ);
      if (!bytes) {
        this.problem(`${url}: manifest ${generation} disappeared while being verified; run verify again`);
        previous = undefined;
        continue;
      }
      const hash = sha256Hex(bytes);
      let manifest: Manifest;
      try {
        manifest = (await this.repo.openManifestBytes(bytes, generation)).manifest!;
      } catch (err) {
        if (generation < last && isKeyUnavailable(err)) {
          // After rotate-key, old manifests stay under the old key (disabled, say) until gc removes
          // them; their successor's previous hash still vouches for their bytes.
          const sealedBy = parseManifestEnvelope(bytes, `manifest ${generation}`).keyId;
          this.report.notes.push(`manifest ${generation} (history, not needed to read the repository) is sealed under ${sealedBy} and was not authenticated: ${errorMessage(err)}`);
          previous = { generation, hash };
        } else {
          this.problem(errorMessage(err));
          previous = undefined;
        }
        continue;
      }
      if (generation === 1 && manifest.previous !== null) this.problem(`${url}: manifest 1 names a predecessor; it was replaced`);
      if (generation > 1 && manifest.previous === null) this.problem(`${url}: manifest ${generation} names no predecessor; it was replaced`);
      if (previous && previous.generation === generation - 1 && manifest.previous !== previous.hash) {
        this.problem(`${url}: manifest ${generation} does not follow the stored manifest ${generation - 1} (previous hash differs): one of them was replaced`);
      }
      previous = { generation, hash };
      newest = { manifest, hash };
    }
    if (!newest) return undefined;
    const { manifest } = newest;
    if (manifest.generation !== last) this.problem(`${url}: the newest manifest (${last}) cannot be read, so git sees nothing; the containers of manifest ${manifest.generation} were checked instead`);
    this.report.generation = manifest.generation;

    const seen = await this.repo.state.load();
    if (seen.generation > last) {
      this.problem(`${url} went backwards: its newest manifest is generation ${last} but this clone has seen ${seen.generation}; the newest manifests were deleted or withheld`);
    } else if (seen.generation === last && seen.manifestHash && seen.manifestHash !== newest.hash && manifest.generation === last) {
      this.problem(`${url}: manifest ${last} is not the one this clone saw before: it was replaced`);
    }
    return manifest;
  }

  private async checkContainers(manifest: Manifest, listing: StoredObjectInfo[]): Promise<void> {
    const stored = new Map<string, number>();
    for (const o of listing) {
      const id = containerIdOfKey(o.key);
      if (id) stored.set(id, o.size);
      else if (o.key !== STORE_KEYS.descriptor && generationOfKey(o.key) === undefined && !o.key.startsWith(STORE_KEYS.schedulePrefix) && !o.key.startsWith(STORE_KEYS.historyPrefix)) {
        this.report.notes.push(`${o.key} (${o.size} bytes) is not part of the repository format`);
      }
    }
    const listed = new Set(manifest.containers.map((c) => c.id));
    for (const [id, size] of stored) {
      if (listed.has(id)) continue;
      this.report.orphans.push({ id, size });
      this.report.notes.push(`container ${id} (${size} bytes) is not in manifest ${manifest.generation}: left by an interrupted push, or superseded and awaiting gc`);
    }
    for (const ref of manifest.containers) {
      const size = stored.get(ref.id);
      if (size === undefined) {
        this.problem(`container ${ref.id}, listed in manifest ${manifest.generation}, is missing from the store: it was deleted`);
      } else if (size !== ref.size) {
        this.problem(`container ${ref.id} is ${size} bytes but manifest ${manifest.generation} says ${ref.size}: it was truncated or replaced`);
      } else {
        await this.checkContainer(ref);
      }
    }
  }

  /** Authenticates every byte of one container and spools each record's decrypted payload. */
  private async checkContainer(ref: ContainerRef): Promise<void> {
    let opened: OpenedContainer;
    try {
      opened = await openContainer(this.repo, ref);
    } catch (err) {
      this.problem(errorMessage(err));
      return;
    }
    const { index } = opened;
    this.report.records += index.count;
    let preambleHash: string;
    try {
      preambleHash = sha256Hex(await this.repo.storage.getRange(containerKey(ref.id), { start: 0, end: index.recordsStart }));
    } catch (err) {
      this.problem(errorMessage(err));
      return;
    }
    if (ref.preambleLength !== index.recordsStart || preambleHash !== ref.preambleHash) {
      this.problem(`container ${ref.id}: its plaintext preamble does not match the manifest: it was altered`);
    }
    // The preamble is reported above, once; the records are then checked on their own.
    const c: OpenedContainer = { ...opened, ref: { ...ref, preambleLength: index.recordsStart, preambleHash } };
    const queue: RecordRun[] = planRuns(index, Array.from({ length: index.count }, (_, i) => i));
    while (queue.length > 0) {
      const run = queue.shift()!;
      let next = run.first;
      try {
        if (run.large) {
          await this.spoolRecord(c, run.first, await openLargeRecord(this.repo, c, run.first, this.work));
          continue;
        }
        for await (const { i, payload } of readRun(this.repo, c, run, () => true)) {
          await this.spoolRecord(c, i, [payload]);
          next = i + 1;
        }
      } catch (err) {
        this.problem(errorMessage(err));
        // A failed unit is one record, or a whole segment: none of its objects can be trusted.
        const unitLast = index.unitLast(next);
        if (isRecordFailure(err)) for (let k = next; k <= unitLast; k++) this.unreadable.set(index.oidHex(k), ref.id);
        else {
          const rest = next === index.count - 1 ? `record ${next}` : `records ${next}-${index.count - 1}`;
          this.problem(`container ${ref.id}: ${rest} of ${index.count} could not be checked after that failure`);
          return;
        }
        if (!run.large && unitLast < run.last) queue.unshift({ first: unitLast + 1, last: run.last, large: false });
      }
    }
  }

  private async spoolRecord(c: OpenedContainer, i: number, payload: AsyncIterable<Buffer> | Buffer[]): Promise<void> {
    const { index } = c;
    const delta = index.types[i] === DELTA_TYPE;
    const start = this.spoolLength;
    try {
      await this.append(encodeEntryHeader(delta ? OBJ_REF_DELTA : index.types[i], index.sizes[i], delta ? index.base(i) : undefined));
      for await (const chunk of payload) await this.append(chunk);
    } catch (err) {
      await this.spool.truncate(start);
      this.spoolLength = start;
      throw err;
    }
    this.entries.push({ container: c.ref.id, oid: index.oidHex(i), base: delta ? index.base(i).toString('hex') : undefined, start, end: this.spoolLength });
  }

  private async append(bytes: Buffer): Promise<void> {
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.spool.write(bytes, done, bytes.length - done, this.spoolLength + done);
      done += bytesWritten;
    }
    this.spoolLength += bytes.length;
  }

  /** Hands every resolvable record to git in one pack, then checks object IDs, refs and history. */
  private async checkWithGit(manifest: Manifest): Promise<void> {
    const format = this.repo.descriptor.objectFormat;
    const gitDir = join(this.work, 'scratch.git');
    await git(['init', '-q', '--bare', `--object-format=${format}`, gitDir], undefined, undefined, this.work).then(requireSuccess('init'));
    const included = this.resolvableEntries();
    if (included.length > 0) {
      const indexed = await indexPack(gitDir, this.packStream(included, format === 'sha1' ? 'sha1' : 'sha256'));
      const packHash = /^(?:pack|keep)\t([0-9a-f]+)$/m.exec(indexed.stdout)?.[1];
      if (indexed.code !== 0 || !packHash) {
        this.problem(`git index-pack refused the decrypted objects: ${lastLine(indexed.stderr) || `exit ${indexed.code}`}`);
        return;
      }
      const idx = new PackIndexFile(await fs.readFile(join(gitDir, 'objects', 'pack', `pack-${packHash}.idx`)), hashLength(format));
      let offset = 12;
      for (const e of included) {
        const k = idx.positionAtOffset(offset);
        const actual = k < 0 ? 'none' : idx.oid(k).toString('hex');
        if (actual !== e.oid) {
          this.problem(`object ${e.oid} in container ${e.container} decrypted to an object whose ID is ${actual}: the container was written by a faulty or hostile client`);
        }
        offset += e.end - e.start;
      }
    }
    await this.checkRefs(manifest, gitDir);
  }

  /** The spooled entries whose delta chain ends in a spooled whole object; the others are reported. */
  private resolvableEntries(): SpoolEntry[] {
    const copies = new Map<string, number>();
    for (const e of this.entries) copies.set(e.oid, (copies.get(e.oid) ?? 0) + 1);
    let included = this.entries;
    for (;;) {
      const dropped = included.filter((e) => e.base !== undefined && !copies.has(e.base));
      if (dropped.length === 0) return included;
      for (const e of dropped) {
        this.problem(`object ${e.oid} in container ${e.container} is a delta against ${e.base}, which no readable record holds`);
        const left = copies.get(e.oid)! - 1;
        if (left === 0) copies.delete(e.oid);
        else copies.set(e.oid, left);
      }
      const gone = new Set(dropped);
      included = included.filter((e) => !gone.has(e));
    }
  }

  private async *packStream(entries: SpoolEntry[], hashName: 'sha1' | 'sha256'): AsyncGenerator<Buffer> {
    const trailer = createHash(hashName);
    const header = packHeader(entries.length);
    trailer.update(header);
    yield header;
    for (const e of entries) {
      for (let pos = e.start; pos < e.end; ) {
        const chunk = Buffer.allocUnsafe(Math.min(CHUNK, e.end - pos));
        const { bytesRead } = await this.spool.read(chunk, 0, chunk.length, pos);
        if (bytesRead === 0) throw new KmscryptError('INTERNAL', `verify: the record spool ended early at ${pos}`);
        pos += bytesRead;
        const piece = chunk.subarray(0, bytesRead);
        trailer.update(piece);
        yield piece;
      }
    }
    yield trailer.digest();
  }

  private async checkRefs(manifest: Manifest, gitDir: string): Promise<void> {
    const refs = Object.entries(manifest.refs);
    const oids = [...new Set(refs.map(([, oid]) => oid))];
    const present = new Set<string>();
    if (oids.length > 0) {
      const out = await git(['cat-file', '--batch-check=%(objectname)'], gitDir, oids.join('\n') + '\n');
      for (const line of out.stdout.split('\n')) if (/^[0-9a-f]{40,64}$/.test(line)) present.add(line);
    }
    const reachable = refs.filter(([name, oid]) => {
      if (present.has(oid)) return true;
      const holder = this.unreadable.get(oid);
      this.problem(`ref ${name} points to object ${oid}, ${holder ? `whose record in container ${holder} failed authentication` : 'which no container holds'}`);
      return false;
    });
    if (manifest.head !== null && manifest.refs[manifest.head] === undefined) {
      this.report.notes.push(`HEAD names ${manifest.head}, which does not exist: clones will check out nothing`);
    }
    if (reachable.length > 0) {
      const updated = await git(['update-ref', '--stdin'], gitDir, reachable.map(([name, oid]) => `update ${name} ${oid}\n`).join(''));
      if (updated.code !== 0) this.problem(`the refs cannot be recreated in a scratch repository: ${lastLine(updated.stderr)}`);
    }
    if (manifest.head !== null && manifest.refs[manifest.head] !== undefined) await git(['symbolic-ref', 'HEAD', manifest.head], gitDir);

    const fsck = await git(['fsck', '--strict', '--no-dangling', '--no-progress'], gitDir);
    const lines: string[] = [];
    for (const raw of `${fsck.stdout}\n${fsck.stderr}`.split('\n')) {
      const line = raw.replace(/\s+/g, ' ').trim();
      if (line === '' || /^(notice|Checking|dangling)\b/.test(line)) continue;
      // "broken link from <object>" continues on the next line with "to <object>".
      if (line.startsWith('to ') && lines.length > 0 && lines[lines.length - 1].startsWith('broken link from')) lines[lines.length - 1] += ` ${line}`;
      else lines.push(line);
    }
    for (const line of lines) {
      if (fsck.code !== 0) this.problem(`git fsck --strict: ${line}`);
      else this.report.notes.push(`git fsck --strict: ${line}`);
    }
    if (fsck.code !== 0 && lines.length === 0) this.problem(`git fsck --strict failed (exit ${fsck.code})`);

    if (reachable.length === 0) return;
    const all = await git(['rev-list', '--objects', '--quiet', '--all'], gitDir);
    if (all.code === 0) return;
    for (const [name, oid] of reachable) {
      const one = await git(['rev-list', '--objects', '--quiet', oid], gitDir);
      if (one.code !== 0) this.problem(`ref ${name}: its history is incomplete (${lastLine(one.stderr) || `git rev-list exit ${one.code}`})`);
    }
  }
}

/** A record (not the whole container) failed authentication: the records after it can still be read. */
function isRecordFailure(err: unknown): boolean {
  return err instanceof KmscryptError && err.code === 'TAMPERED' && (err.data.scope === 'record' || err.data.scope === 'segment');
}

/**
 * The data key could not be unwrapped for a reason other than altered bytes: the key is disabled,
 * pending deletion, denied or not trusted here, as for a key retired after rotate-key.
 */
function isKeyUnavailable(err: unknown): boolean {
  if (!(err instanceof KmscryptError) || err.code !== 'KEY_ERROR') return false;
  return err.data.kmsError !== 'InvalidCiphertextException';
}

interface GitOutput {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs git on the scratch repository (or, without one, in `cwd`); every exit status is an answer here. */
function git(args: string[], gitDir: string | undefined, input?: string, cwd?: string): Promise<GitOutput> {
  return collect(spawnGit(args, gitDir, cwd), input === undefined ? [] : [Buffer.from(input)]);
}

function indexPack(gitDir: string, pack: AsyncIterable<Buffer>): Promise<GitOutput> {
  return collect(spawnGit(['index-pack', '--stdin'], gitDir), pack);
}

function spawnGit(args: string[], gitDir: string | undefined, cwd?: string): ReturnType<typeof spawn> {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of REPOSITORY_ENV) delete env[name];
  if (gitDir !== undefined) env.GIT_DIR = gitDir;
  return spawn('git', args, { cwd: cwd ?? gitDir, env, stdio: ['pipe', 'pipe', 'pipe'] });
}

async function collect(child: ReturnType<typeof spawn>, input: AsyncIterable<Buffer> | Buffer[]): Promise<GitOutput> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  child.stdin!.on('error', () => undefined);
  let exited = false;
  const closed = new Promise<number>((resolve, reject) => {
    child.on('error', (e) => reject(new KmscryptError('GIT', `cannot run git: ${e.message}; is git installed and on PATH?`)));
    child.on('close', (code) => {
      exited = true;
      resolve(code ?? 128);
    });
  });
  try {
    for await (const chunk of input) {
      if (exited) break;
      if (!child.stdin!.write(chunk)) await Promise.race([new Promise((r) => child.stdin!.once('drain', r)), closed]);
    }
    child.stdin!.end();
  } catch (e) {
    child.kill('SIGKILL');
    await closed.catch(() => undefined);
    throw e;
  }
  const code = await closed;
  return { code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

function requireSuccess(what: string): (r: GitOutput) => void {
  return (r) => {
    if (r.code !== 0) throw new KmscryptError('GIT', `git ${what} failed (exit ${r.code}): ${lastLine(r.stderr)}`);
  };
}

function lastLine(text: string): string {
  return text.split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';
}
