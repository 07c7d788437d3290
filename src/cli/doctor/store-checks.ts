import { promises as fs } from 'node:fs';
import { errorMessage, isKmscryptError } from '../../errors';
import { generationOfKey, MANIFEST_READ, STORE_KEYS } from '../../format/constants';
import { Manifest, parseManifestEnvelope } from '../../format/manifest';
import { RemoteConfig, RemoteRepository } from '../../remote/remote-repository';
import { probeConditionalWrites } from '../../storage/conditional-write-probe';
import { untracedStorage } from '../../storage/traced-storage';
import type { Settings } from '../settings';
import type { RemoteLocation } from '../url';
import { Add, addFailure, plural } from './check';

/** What to do about a newest manifest that cannot be read, by what went wrong. */
function manifestFix(err: unknown, url: string): string {
  if (isKmscryptError(err, 'ROLLBACK'))
    return `if the store was restored from an older backup on purpose: git kmscrypt forget ${url}, then push what this clone has`;
  if (isKmscryptError(err, 'TAMPERED') || isKmscryptError(err, 'CORRUPT'))
    return "restore the store's objects from a backup or bucket versioning; run 'git kmscrypt verify' for the details";
  return "run 'git kmscrypt verify' for details";
}

/** Credentials, region and a list request for S3; the directory and a list for a local store. */
export async function checkStore(config: RemoteConfig, location: RemoteLocation, add: Add): Promise<'ok' | 'missing' | 'unreachable'> {
  if (location.kind === 'local') {
    const st = await fs.stat(location.path).catch((err: NodeJS.ErrnoException) => err);
    if (st instanceof Error) {
      if (st.code === 'ENOENT') {
        add('store', 'WARN', `${location.path} does not exist yet: the first push creates it`);
        return 'missing';
      }
      add('store', 'FAIL', `cannot read ${location.path}: ${st.code ?? st.message}`, 'check the path and its permissions');
      return 'unreachable';
    }
    if (!st.isDirectory()) {
      add('store', 'FAIL', `${location.path} is not a directory`, 'point the URL at a directory');
      return 'unreachable';
    }
  } else {
    const { S3Storage } = await import('../../storage/s3-storage');
    const storage = untracedStorage(config.storage);
    if (storage instanceof S3Storage) {
      const client = storage.client;
      try {
        const credentials = await client.config.credentials();
        add('credentials', 'PASS', `AWS credentials resolved (access key …${credentials.accessKeyId.slice(-4)})`);
      } catch (err) {
        add(
          'credentials',
          'FAIL',
          `no AWS credentials: ${oneLine(errorMessage(err))}`,
          'configure them: aws configure, aws sso login, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY',
        );
      }
      try {
        add('region', 'PASS', await client.config.region());
      } catch (err) {
        add('region', 'FAIL', `no AWS region: ${oneLine(errorMessage(err))}`, 'set AWS_REGION, kmscrypt.region, or ?region= in the URL');
      }
    }
  }
  try {
    const manifests = await config.storage.list(STORE_KEYS.manifestPrefix);
    add('store', 'PASS', `${config.storage.location} answered a list request (${plural(manifests.length, 'manifest')})`);
    return 'ok';
  } catch (err) {
    addFailure(
      add,
      'store',
      err,
      location.kind === 's3' ? 'check the bucket name and region, and that these credentials may s3:ListBucket on it' : 'check the directory permissions',
    );
    return 'unreachable';
  }
}

export async function checkRepository(config: RemoteConfig, add: Add): Promise<{ repo?: RemoteRepository; manifest?: Manifest; sealedBy?: string }> {
  let repo: RemoteRepository | undefined;
  try {
    repo = await RemoteRepository.open(config);
  } catch (err) {
    addFailure(add, 'repository', err, "restore kmscrypt.json from a backup; run 'git kmscrypt verify' for details");
    return {};
  }
  if (!repo) {
    add('repository', 'WARN', `no repository at ${config.url} yet: the first push (or git kmscrypt init) creates one`);
    return {};
  }
  add('repository', 'PASS', `${repo.repositoryId} (${repo.descriptor.objectFormat}, created ${repo.descriptor.createdAt})`);
  try {
    const { manifest } = await repo.latest('read');
    if (!manifest) add('manifest', 'PASS', 'no manifest yet: the repository is empty');
    else add('manifest', 'PASS', `generation ${manifest.generation}: ${Object.keys(manifest.refs).length} refs, ${manifest.containers.length} containers`);
    return { repo, manifest: manifest ?? undefined };
  } catch (err) {
    addFailure(
      add,
      'manifest',
      err,
      isKmscryptError(err, 'KEY_ERROR') ? 'act on the error above; the kms: rows below try each action' : manifestFix(err, config.url),
    );
    return { repo, sealedBy: await newestSealingKey(config).catch(() => undefined) };
  }
}

/** The key named in the plaintext envelope of the newest stored manifest: the repository's current key when the manifest cannot be opened. */
async function newestSealingKey(config: RemoteConfig): Promise<string | undefined> {
  const stored = await config.storage.list(STORE_KEYS.manifestPrefix);
  const newest = stored.filter((o) => generationOfKey(o.key) !== undefined).pop();
  const bytes = newest && (await config.storage.get(newest.key, MANIFEST_READ));
  return bytes ? parseManifestEnvelope(bytes, newest.key).keyId : undefined;
}

export async function checkConditionalWrites(config: RemoteConfig, settings: Settings, add: Add): Promise<void> {
  try {
    const result = await probeConditionalWrites(config.storage);
    if (result.ok) add('conditional writes', 'PASS', result.detail);
    else if (settings.allowUnsafeServer)
      add('conditional writes', 'WARN', `${result.detail}; accepted because kmscrypt.allowUnsafeServer is set: concurrent pushes may be lost`);
    else {
      add(
        'conditional writes',
        'FAIL',
        `the server ignores conditional writes: ${result.detail}`,
        'use a server that enforces If-None-Match and If-Match (AWS S3, recent MinIO or Ceph RGW), or set kmscrypt.allowUnsafeServer=true if you alone push',
      );
    }
  } catch (err) {
    add(
      'conditional writes',
      'FAIL',
      `the probe object could not be written or removed: ${errorMessage(err)}`,
      'these credentials need to write and delete objects under the prefix (s3:PutObject, s3:DeleteObject)',
    );
  }
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
