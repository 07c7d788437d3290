import { promises as fs } from 'node:fs';
import { join, relative } from 'node:path';

/** Raw access to what a remote stores, the way a storage operator sees it. */
export interface StoreAccess {
  /** kmscrypt:: URL of this store. */
  url: string;
  keys(): Promise<string[]>;
  read(key: string): Promise<Buffer>;
  write(key: string, bytes: Buffer): Promise<void>;
  remove(key: string): Promise<void>;
}

export function localStore(dir: string): StoreAccess {
  const walk = async (d: string): Promise<string[]> => {
    const out: string[] = [];
    for (const e of await fs.readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) out.push(...(await walk(p)));
      else out.push(relative(dir, p));
    }
    return out;
  };
  return {
    url: `kmscrypt::file://${dir}`,
    keys: async () => (await walk(dir)).sort(),
    read: (key) => fs.readFile(join(dir, key)),
    write: (key, bytes) => fs.writeFile(join(dir, key), bytes),
    remove: (key) => fs.rm(join(dir, key), { force: true }),
  };
}
