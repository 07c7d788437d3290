import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { promises as fs } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { Readable } from 'node:stream';

/** Raw access to what a remote stores, the way a storage operator sees it. */
export interface StoreAccess {
  /** kmscrypt:: URL of this store. */
  url: string;
  keys(): Promise<string[]>;
  read(key: string): Promise<Buffer>;
  write(key: string, bytes: Buffer): Promise<void>;
  /** An object of `size` zero bytes, never held in memory (a sparse file on the local store). */
  writeZeros(key: string, size: number): Promise<void>;
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
    write: async (key, bytes) => {
      await fs.mkdir(dirname(join(dir, key)), { recursive: true });
      await fs.writeFile(join(dir, key), bytes);
    },
    writeZeros: async (key, size) => {
      await fs.mkdir(dirname(join(dir, key)), { recursive: true });
      const handle = await fs.open(join(dir, key), 'w');
      try {
        await handle.truncate(size);
      } finally {
        await handle.close();
      }
    },
    // As on S3, where a prefix with no object left does not exist: an emptied folder goes too.
    remove: async (key) => {
      await fs.rm(join(dir, key), { force: true });
      if (dirname(key) !== '.') await fs.rmdir(join(dir, dirname(key))).catch(() => undefined);
    },
  };
}

/** The objects under one S3 prefix, through the SDK, as the bucket's operator would see them. */
export function s3Store(client: S3Client, bucket: string, prefix: string): StoreAccess {
  const full = (key: string) => `${prefix}/${key}`;
  return {
    url: `kmscrypt::s3://${bucket}/${prefix}`,
    keys: async () => {
      const out: string[] = [];
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${prefix}/`, ContinuationToken: token }));
        for (const o of page.Contents ?? []) out.push(o.Key!.slice(prefix.length + 1));
        token = page.NextContinuationToken;
      } while (token);
      return out.sort();
    },
    read: async (key) => Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: bucket, Key: full(key) }))).Body!.transformToByteArray()),
    write: async (key, bytes) => {
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: full(key), Body: bytes }));
    },
    writeZeros: async (key, size) => {
      const chunk = Buffer.alloc(1 << 20);
      const body = Readable.from(
        (function* () {
          for (let left = size; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left);
        })(),
      );
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: full(key), Body: body, ContentLength: size }));
    },
    remove: async (key) => {
      await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: full(key) }));
    },
  };
}
