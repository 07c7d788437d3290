import { promises as fs } from 'node:fs';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import { unquoteCStyle } from '../protocol/c-quote';
import { PackIndexFile } from './pack-index-file';
import { localRepository } from './repository';

/** git follows alternates this many levels deep (sha1-file.c, link_alt_odb_entry). */
const MAX_ALTERNATE_DEPTH = 5;

/**
 * Which objects the local repository holds, read from its object directories (pack indexes and
 * loose objects, alternates included) without running git. In a partial clone every git command
 * that looks up a missing object first asks the promisor remote for it (a lazy fetch through this
 * very helper), and with lazy fetching switched off `git cat-file` dies on a missing promised
 * object instead of answering "missing"; reading the indexes never fetches and never dies.
 */
export class ObjectDatabase {
  private constructor(
    private readonly packs: PackNames[],
    private readonly loose: Set<string>,
  ) {}

  /** The database of the repository git runs in (GIT_DIR, GIT_OBJECT_DIRECTORY honoured). */
  static async open(): Promise<ObjectDatabase> {
    const { packDir, objectFormat } = await localRepository();
    return ObjectDatabase.at(resolve(packDir, '..'), objectFormat === 'sha1' ? 20 : 32);
  }

  /** The database of an object directory and its alternates. */
  static async at(objectDir: string, hashLength: number): Promise<ObjectDatabase> {
    const dirs = await objectDirectories(objectDir);
    const packs: PackNames[] = [];
    const loose = new Set<string>();
    for (const dir of dirs) {
      const packFiles = await fs.readdir(join(dir, 'pack')).catch(() => [] as string[]);
      const files = new Set(packFiles);
      for (const file of packFiles) {
        if (!file.endsWith('.idx') || !files.has(file.replace(/\.idx$/, '.pack'))) continue;
        const bytes = await fs.readFile(join(dir, 'pack', file)).catch(() => undefined);
        const names = bytes && PackNames.of(bytes, hashLength);
        if (names) packs.push(names);
      }
      await Promise.all(
        Array.from({ length: 256 }, async (_, b) => {
          const fan = b.toString(16).padStart(2, '0');
          for (const rest of await fs.readdir(join(dir, fan)).catch(() => [] as string[])) {
            if (/^[0-9a-f]{38}$|^[0-9a-f]{62}$/.test(rest)) loose.add(fan + rest);
          }
        }),
      );
    }
    return new ObjectDatabase(packs, loose);
  }

  has(oid: string): boolean {
    if (this.loose.has(oid)) return true;
    const raw = Buffer.from(oid, 'hex');
    return this.packs.some((p) => p.has(raw));
  }

  /** Objects that arrived since the database was read (a pack this process had git index). */
  learn(oids: Iterable<string>): void {
    for (const oid of oids) this.loose.add(oid);
  }
}

/** The object directory and, recursively, its alternates (objects/info/alternates and GIT_ALTERNATE_OBJECT_DIRECTORIES). */
async function objectDirectories(primary: string): Promise<string[]> {
  const out: string[] = [];
  const visit = async (dir: string, depth: number) => {
    const real = await fs.realpath(dir).catch(() => undefined);
    if (!real || out.includes(real)) return;
    out.push(real);
    if (depth >= MAX_ALTERNATE_DEPTH) return;
    const text = await fs.readFile(join(real, 'info', 'alternates'), 'utf8').catch(() => '');
    for (const line of text.split('\n')) {
      if (line.trim() === '' || line.startsWith('#')) continue;
      const path = unquoteCStyle(line);
      await visit(isAbsolute(path) ? path : resolve(real, path), depth + 1);
    }
  };
  await visit(primary, 0);
  for (const entry of (process.env.GIT_ALTERNATE_OBJECT_DIRECTORIES ?? '').split(delimiter)) {
    if (entry) await visit(unquoteCStyle(entry), 1);
  }
  return out;
}

/** The sorted object names of one pack index, version 2 (PackIndexFile) or the old version 1. */
abstract class PackNames {
  abstract has(oid: Buffer): boolean;

  /** undefined for an index git cannot have written: its objects then count as missing, and are sent again. */
  static of(bytes: Buffer, hashLength: number): PackNames | undefined {
    try {
      if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0xff744f63) return new Version2(new PackIndexFile(bytes, hashLength));
      return bytes.length >= 1024 && (bytes.length - 1024 - 40) % 24 === 0 ? new Version1(bytes) : undefined;
    } catch {
      return undefined;
    }
  }
}

class Version2 extends PackNames {
  constructor(private readonly idx: PackIndexFile) {
    super();
  }

  has(oid: Buffer): boolean {
    return oid.length === this.idx.hashLength && this.idx.has(oid);
  }
}

/** Version 1: 256 fanout entries, then per object a 4-byte offset and its 20-byte name. */
class Version1 extends PackNames {
  constructor(private readonly bytes: Buffer) {
    super();
  }

  has(oid: Buffer): boolean {
    if (oid.length !== 20) return false;
    const fan = (b: number) => (b < 0 ? 0 : this.bytes.readUInt32BE(b * 4));
    let lo = fan(oid[0] - 1);
    let hi = fan(oid[0]) - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      const at = 1024 + mid * 24 + 4;
      // The name at `mid` compared with the one sought.
      const c = this.bytes.compare(oid, 0, 20, at, at + 20);
      if (c === 0) return true;
      if (c < 0) lo = mid + 1;
      else hi = mid - 1;
    }
    return false;
  }
}
