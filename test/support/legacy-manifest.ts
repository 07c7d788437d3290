import { createCipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { deflateRawSync } from 'node:zlib';
import type { Manifest } from '../../src/format/manifest';

/**
 * A manifest in the layout of versions 1 and 2 (docs/FORMAT.md §7.1), which kmscrypt no longer
 * writes but still reads: written here from the specification, for tests of readers.
 */
export function sealLegacyManifest(m: Manifest, dataKey: Buffer, keyId: string, wrappedKey: Buffer, version: 1 | 2 = 2): Buffer {
  const u16 = (n: number) => {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(n);
    return b;
  };
  const nonce = randomBytes(12);
  const fixed = Buffer.alloc(16);
  fixed.write('KMSC', 0, 'latin1');
  fixed[4] = version;
  fixed[5] = 2;
  fixed.writeBigUInt64BE(BigInt(m.generation), 8);
  const k = Buffer.from(keyId);
  const preamble = Buffer.concat([fixed, nonce, u16(k.length), k, u16(wrappedKey.length), wrappedKey]);
  const cipher = createCipheriv('aes-256-gcm', Buffer.from(hkdfSync('sha256', dataKey, nonce, 'kmscrypt/1 manifest', 32)), nonce);
  const repo = Buffer.from(m.repositoryId);
  cipher.setAAD(Buffer.concat([Buffer.from('kmscrypt/1 manifest'), u16(repo.length), repo, preamble]));
  const body = deflateRawSync(Buffer.from(JSON.stringify(m)));
  return Buffer.concat([preamble, cipher.update(body), cipher.final(), cipher.getAuthTag()]);
}
