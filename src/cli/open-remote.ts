import { join } from 'node:path';
import { KmscryptError } from '../errors';
import { gitDir } from '../git/repository';
import type { KeyProvider } from '../keys/key-provider';
import { resolveKmsEndpoint } from '../keys/kms-endpoint';
import { defaultKeyringPath, Keyring } from '../keys/keyring';
import { type LocalKmsCredentials, readLocalKmsCredentials } from '../keys/local-kms-credentials';
import { LocalKeyProvider } from '../keys/local-key-provider';
import { TracedKeyProvider } from '../keys/traced-key-provider';
import { type RemoteConfig, RemoteRepository } from '../remote/remote-repository';
import { checkEndpointSecurity, isLoopbackUrl } from '../endpoint-security';
import { LocalStorage } from '../storage/local-storage';
import type { Storage } from '../storage/storage';
import { TracedStorage } from '../storage/traced-storage';
import { resolveTarget } from './command-args';
import { checkNewStoreDirectory, refuseBucketNamedLikeDirectory, refuseFileAsStore } from './mistaken-locations';
import { readSettings, Settings } from './settings';
import { parseRemoteUrl, RemoteLocation, storeUrl } from './url';

/** The existing repository an operator command names by remote name or URL (info, verify, gc, rotate-key). */
export async function openTargetRepository(target: string, opts: { inRepository?: boolean } = {}): Promise<RemoteRepository> {
  const { url, remoteName } = await resolveTarget(target);
  return RemoteRepository.openExisting(await openRemote(url, remoteName, opts));
}

/** Joins a URL and the settings into storage, a key provider and a place for local state. */
export async function openRemote(url: string, remoteName?: string, opts: { inRepository?: boolean } = {}): Promise<RemoteConfig> {
  const location = parseRemoteUrl(url);
  if (location.kind === 's3' && !url.startsWith('s3://')) await refuseBucketNamedLikeDirectory(url, location.bucket);
  if (location.kind === 'local') await refuseFileAsStore(location.path);
  // Asked of git alongside the settings: each git process costs a helper 10-20 ms to start.
  const stateDir =
    opts.inRepository === false
      ? Promise.resolve(undefined)
      : gitDir().then(
          (dir) => join(dir, 'kmscrypt'),
          () => undefined,
        );
  const settings = await readSettings(remoteName);
  const kind = settings.kms ?? (location.kind === 'local' ? 'local' : 'aws');
  // Traced when KMSCRYPT_TRACE (or git's -vv) asks for it; otherwise the wrappers only forward.
  const storage = new TracedStorage(await openStorage(location, settings));
  const keys = new TracedKeyProvider(await openKeyProvider(kind, location, settings));
  return {
    url: storeUrl(location),
    userUrl: url.replace(/^kmscrypt::/, ''),
    storage,
    keys,
    keyProvider: kind,
    keyId: settings.keyId,
    stateDir: await stateDir,
    beforeCreate: location.kind === 's3' ? () => checkConditionalWrites(storage, settings) : () => checkNewStoreDirectory(location.path),
  };
}

/** AWS's own environment variables come before git config; undefined lets the SDK read them itself. */
function afterEnv(names: string[], configured: string | undefined): string | undefined {
  return names.some((n) => process.env[n]) ? undefined : configured;
}

/** The SDK reads AWS_REGION itself but not AWS_DEFAULT_REGION, which the AWS CLI honours. */
function regionAfterEnv(configured: string | undefined): string | undefined {
  if (process.env.AWS_REGION) return undefined;
  return process.env.AWS_DEFAULT_REGION || configured;
}

async function openStorage(location: RemoteLocation, settings: Settings): Promise<Storage> {
  if (location.kind === 'local') return new LocalStorage(location.path);
  const { S3Storage } = await import('../storage/s3-storage');
  return new S3Storage({
    bucket: location.bucket,
    prefix: location.prefix,
    region: location.region ?? regionAfterEnv(settings.region),
    endpoint: location.endpoint ?? afterEnv(['AWS_ENDPOINT_URL_S3', 'AWS_ENDPOINT_URL'], settings.endpoint),
    profile: location.profile ?? afterEnv(['AWS_PROFILE'], settings.profile),
    forcePathStyle: settings.pathStyle,
    allowHttp: settings.allowHttp,
    idleTimeoutMs: settings.requestTimeoutSeconds === undefined ? undefined : settings.requestTimeoutSeconds * 1000,
  });
}

async function openKeyProvider(kind: 'local' | 'aws', location: RemoteLocation, settings: Settings): Promise<KeyProvider> {
  if (kind === 'local') return new LocalKeyProvider(new Keyring(settings.keyring));
  const { AwsKmsProvider } = await import('../keys/aws-kms-provider');
  const endpoint = resolveKmsEndpoint(settings.kmsEndpoint);
  if (endpoint.url) checkEndpointSecurity(endpoint.url, settings.allowHttp, undefined, { service: 'KMS', source: endpoint.source });
  return new AwsKmsProvider({
    // kmscrypt.kmsRegion / kmsProfile let KMS live elsewhere than the bucket (MinIO, Ceph or R2 with AWS KMS).
    region: settings.kmsRegion ?? (location.kind === 's3' ? location.region : undefined) ?? regionAfterEnv(settings.region),
    endpoint: endpoint.url,
    profile: settings.kmsProfile ?? (location.kind === 's3' ? location.profile : undefined) ?? afterEnv(['AWS_PROFILE'], settings.profile),
    credentials: settings.kmsProfile === undefined ? ownLocalKmsCredentials(endpoint.url, settings.keyring) : undefined,
    allowHttp: settings.allowHttp,
  });
}

/**
 * The access key of `git kmscrypt local-kms` when KMS is on this machine: the file beside the
 * keyring the user would use (kmscrypt.keyring, KMSCRYPT_KEYRING or the default), if there is one.
 */
function ownLocalKmsCredentials(endpoint: string | undefined, keyring: string | undefined): LocalKmsCredentials | undefined {
  return endpoint !== undefined && isLoopbackUrl(endpoint) ? readLocalKmsCredentials(keyring ?? defaultKeyringPath()) : undefined;
}

async function checkConditionalWrites(storage: Storage, settings: Settings): Promise<void> {
  const { probeConditionalWrites } = await import('../storage/conditional-write-probe');
  const result = await probeConditionalWrites(storage);
  if (result.ok) return;
  if (settings.allowUnsafeServer) {
    process.stderr.write(`warning: kmscrypt: ${storage.location} does not enforce conditional writes (${result.detail}); concurrent pushes may be lost\n`);
    return;
  }
  throw new KmscryptError('UNSAFE_SERVER', `${storage.location} ignores conditional writes (${result.detail}), so concurrent pushes could be lost`, {
    fix: 'use a server that supports If-None-Match, or set kmscrypt.allowUnsafeServer=true if you alone push',
  });
}
