import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import { errorMessage, isKmscryptError, KmscryptError } from '../errors';
import { generationOfKey, MANIFEST_READ, STORE_KEYS } from '../format/constants';
import { Manifest, parseManifestEnvelope } from '../format/manifest';
import type { EncryptionContext, KeyDescription, KeyProvider } from '../keys/key-provider';
import { REPOSITORY_CONTEXT_KEY, repositoryContext } from '../keys/key-provider';
import { DEFAULT_ALIAS } from '../keys/keyring';
import { KEY_FIXES } from '../keys/kms-errors';
import { RemoteConfig, RemoteRepository } from '../remote/remote-repository';
import { probeConditionalWrites } from '../storage/conditional-write-probe';
import { EndpointService, isLoopbackHost } from '../endpoint-security';
import { resolveKmsEndpoint } from '../keys/kms-endpoint';
import { resolveS3Endpoint } from '../storage/s3-client';
import { untracedStorage } from '../storage/traced-storage';
import { parseCommandArgs, ResolvedTarget, resolveTarget } from './command-args';
import { openRemote } from './open-remote';
import { readSettings, Settings } from './settings';
import { parseRemoteUrl, RemoteLocation } from './url';

export type CheckStatus = 'PASS' | 'WARN' | 'FAIL' | 'SKIP';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  fix?: string;
}

const THROWAWAY_REPOSITORY_ID = 'doctor-check';
/** After DescribeKey, the other five actions, in the order they are exercised. */
const EXERCISED = ['GenerateDataKeyWithoutPlaintext', 'GenerateDataKey', 'Decrypt', 'ReEncrypt', 'Encrypt'];

export async function runDoctor(args: string[]): Promise<number> {
  const parsed = parseCommandArgs('doctor', args);
  const checks = await diagnose(parsed.target);
  const failed = checks.filter((c) => c.status === 'FAIL').length;
  if (parsed.json) {
    process.stdout.write(JSON.stringify({ target: parsed.target, ok: failed === 0, checks }) + '\n');
  } else {
    const width = Math.max(...checks.map((c) => c.name.length), 5);
    const lines = [`${'CHECK'.padEnd(width)}  STATUS  DETAIL`];
    for (const c of checks) {
      lines.push(`${c.name.padEnd(width)}  ${c.status.padEnd(6)}  ${c.detail}`);
      if (c.fix) lines.push(`${''.padEnd(width)}  ${''.padEnd(6)}  fix: ${c.fix}`);
    }
    const warned = checks.filter((c) => c.status === 'WARN').length;
    lines.push(
      failed
        ? `doctor: ${failed} check${failed === 1 ? '' : 's'} failed`
        : `doctor: all checks passed${warned ? ` (${warned} warning${warned === 1 ? '' : 's'})` : ''}`,
    );
    process.stdout.write(lines.join('\n') + '\n');
  }
  return failed ? 1 : 0;
}

/** Runs the checks in order; a check whose prerequisite failed is not attempted. */
export async function diagnose(target: string): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (name: string, status: CheckStatus, detail: string, fix?: string) => checks.push({ name, status, detail, ...(fix ? { fix } : {}) });

  let resolved: ResolvedTarget;
  let location: RemoteLocation;
  try {
    resolved = await resolveTarget(target);
    location = parseRemoteUrl(resolved.url);
  } catch (err) {
    addFailure(add, 'url', err, 'give a remote name or a URL such as kmscrypt::s3://bucket/prefix or kmscrypt::file:///path');
    return checks;
  }
  const where =
    location.kind === 'local' ? `local directory ${location.path}` : `S3 bucket ${location.bucket}${location.prefix ? `, prefix ${location.prefix}` : ''}`;
  add('url', 'PASS', `${where}${resolved.remoteName ? ` (remote ${resolved.remoteName})` : ''}`);

  let settings: Settings;
  try {
    settings = await readSettings(resolved.remoteName);
  } catch (err) {
    addFailure(add, 'settings', err, 'correct the setting named above in git config or the environment');
    return checks;
  }
  const kind = settings.kms ?? (location.kind === 'local' ? 'local' : 'aws');
  add('settings', 'PASS', `key provider ${kind}; key ${settings.keyId ?? `the repository's own (${DEFAULT_ALIAS} for a new one)`}`);

  if (location.kind === 's3') checks.push(endpointCheck('https', 'S3', resolveS3Endpoint(location.endpoint ?? settings.endpoint), settings.allowHttp));
  if (kind === 'aws') checks.push(endpointCheck('kms https', 'KMS', resolveKmsEndpoint(settings.kmsEndpoint), settings.allowHttp));

  let config: RemoteConfig;
  try {
    config = await openRemote(resolved.url, resolved.remoteName);
  } catch (err) {
    addFailure(add, 'open store', err, 'correct the URL or the setting named above');
    return checks;
  }

  const store = await checkStore(config, location, add);
  let repo: RemoteRepository | undefined;
  let manifest: Manifest | undefined;
  let sealedBy: string | undefined;
  if (store === 'unreachable') {
    add('repository', 'SKIP', 'the store could not be listed');
    add('conditional writes', 'SKIP', 'the store could not be listed');
  } else {
    ({ repo, manifest, sealedBy } = await checkRepository(config, add));
    if (store === 'missing') add('conditional writes', 'SKIP', 'the directory does not exist yet; checked once it does');
    else await checkConditionalWrites(config, settings, add);
  }

  try {
    const store = config.keys.keyStore();
    if (store.kind === 'keyring') {
      if (store.keys === undefined)
        add(
          'keyring',
          repo ? 'FAIL' : 'WARN',
          `${store.path} does not exist${repo ? '' : ' yet: the first push creates it'}`,
          repo ? KEY_FIXES.restoreKeyring : undefined,
        );
      else add('keyring', 'PASS', `${store.path} (mode 0600, ${plural(store.keys, 'key')})`);
    }
  } catch (err) {
    addFailure(add, 'keyring', err, 'restore the keyring from your backup');
  }
  await checkKms(config, repo, manifest?.keyId ?? sealedBy, add);
  return checks;
}

/** The HTTPS rule (src/endpoint-security.ts) for the S3 or the KMS endpoint, as one row. */
function endpointCheck(name: string, service: EndpointService, resolved: { url?: string; source: string }, allowHttp: boolean): Check {
  if (!resolved.url) return { name, status: 'PASS', detail: `AWS ${service} over HTTPS (an endpoint_url in the AWS config file is checked on every request)` };
  let url: URL;
  try {
    url = new URL(resolved.url);
  } catch {
    return {
      name,
      status: 'FAIL',
      detail: `${service} endpoint ${resolved.url} (from ${resolved.source}) is not a URL`,
      fix: `set ${resolved.source} to e.g. https://${service.toLowerCase()}.example.com`,
    };
  }
  const from = `${resolved.url} (from ${resolved.source})`;
  if (url.protocol === 'https:') return { name, status: 'PASS', detail: `${from} over HTTPS` };
  if (url.protocol !== 'http:') return { name, status: 'FAIL', detail: `${from} is neither https:// nor http://`, fix: 'use an https:// endpoint' };
  if (isLoopbackHost(url.hostname)) return { name, status: 'PASS', detail: `${from}: plain HTTP, but to this machine (loopback) only` };
  const exposed = service === 'KMS' ? 'plaintext data keys are' : 'request metadata is';
  if (allowHttp)
    return {
      name,
      status: 'WARN',
      detail: `${from}: plain HTTP across the network, accepted because kmscrypt.allowHttp is set; ${exposed} not protected in transit`,
    };
  return {
    name,
    status: 'FAIL',
    detail: `${from}: plain HTTP across the network is refused`,
    fix: 'use an https:// endpoint, or set kmscrypt.allowHttp=true (S3 and KMS) to accept unencrypted transport',
  };
}

type Add = (name: string, status: CheckStatus, detail: string, fix?: string) => void;

/** A failure's cause and, when it was made with one, its fix (data.fix); a raw error has no fix of its own. */
function causeAndFix(err: unknown): { cause: string; fix?: string } {
  if (!(err instanceof KmscryptError) || err.data.fix === undefined) return { cause: errorMessage(err) };
  const { unchanged } = err.data;
  return { cause: unchanged ? `${err.summary}; ${unchanged}` : err.summary, fix: err.data.fix };
}

/**
 * A failed check, its fix matching its failure: the row shows the cause and, as its fix, the
 * message's own. Only a failure without one gets `otherwise`. Stored data found altered or rolled
 * back gets the check's own advice: its message says what was found and that nothing changed, not
 * how to repair the store.
 */
function addFailure(add: Add, name: string, err: unknown, otherwise: string): void {
  const { cause, fix } = causeAndFix(err);
  const aboutStoredData = isKmscryptError(err, 'TAMPERED') || isKmscryptError(err, 'ROLLBACK') || isKmscryptError(err, 'CORRUPT');
  if (fix && !aboutStoredData) add(name, 'FAIL', cause, fix);
  else add(name, 'FAIL', errorMessage(err), otherwise);
}

/** What to do about a newest manifest that cannot be read, by what went wrong. */
function manifestFix(err: unknown, url: string): string {
  if (isKmscryptError(err, 'ROLLBACK'))
    return `if the store was restored from an older backup on purpose: git kmscrypt forget ${url}, then push what this clone has`;
  if (isKmscryptError(err, 'TAMPERED') || isKmscryptError(err, 'CORRUPT'))
    return "restore the store's objects from a backup or bucket versioning; run 'git kmscrypt verify' for the details";
  return "run 'git kmscrypt verify' for details";
}

/** Credentials, region and a list request for S3; the directory and a list for a local store. */
async function checkStore(config: RemoteConfig, location: RemoteLocation, add: Add): Promise<'ok' | 'missing' | 'unreachable'> {
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
    const { S3Storage } = await import('../storage/s3-storage');
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

async function checkRepository(config: RemoteConfig, add: Add): Promise<{ repo?: RemoteRepository; manifest?: Manifest; sealedBy?: string }> {
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

async function checkConditionalWrites(config: RemoteConfig, settings: Settings, add: Add): Promise<void> {
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

/** DescribeKey, then each of the other five actions once, under the repository's encryption context. */
async function checkKms(config: RemoteConfig, repo: RemoteRepository | undefined, currentKey: string | undefined, add: Add): Promise<void> {
  const keys = config.keys;
  const keyId = config.keyId ?? currentKey ?? repo?.descriptor.keyId ?? DEFAULT_ALIAS;
  const skipAll = (why: string) => EXERCISED.forEach((a) => add(`kms:${a}`, 'SKIP', why));

  let key: KeyDescription;
  try {
    key = await keys.describeKey(keyId);
  } catch (err) {
    if (!repo && keyId === DEFAULT_ALIAS && isKmscryptError(err) && err.data.kmsError === 'NotFoundException') {
      add(
        'kms:DescribeKey',
        'WARN',
        `${DEFAULT_ALIAS} does not exist yet: the first push creates it (kms:CreateKey, kms:CreateAlias), as CodeCommit creates aws/codecommit`,
      );
      skipAll(`no key to exercise yet (${DEFAULT_ALIAS} does not exist)`);
      return;
    }
    addKmsFailure(add, 'DescribeKey', err);
    skipAll('the key could not be described');
    return;
  }
  const named = `${key.arn}${key.aliases.length ? ` (${key.aliases.join(', ')})` : ''}`;
  const problems: string[] = [];
  if (!key.enabled) problems.push(`its state is ${key.state}`);
  if (key.keySpec !== 'SYMMETRIC_DEFAULT') problems.push(`its KeySpec is ${key.keySpec}`);
  if (key.keyUsage !== 'ENCRYPT_DECRYPT') problems.push(`its KeyUsage is ${key.keyUsage}`);
  if (problems.length) {
    // A local keyring's key changes state through git kmscrypt local-kms, which knows it by its key ID
    // (its ARN there has that server's region).
    const keyring = keyringPath(keys);
    const ref = keyring === undefined ? key.arn : key.keyId;
    const fix =
      key.state === 'PendingDeletion'
        ? KEY_FIXES.pendingDeletion(ref, keyring)
        : !key.enabled
          ? repo
            ? KEY_FIXES.disabled(ref, keyring)
            : KEY_FIXES.disabledNewKey(ref, keyring)
          : KEY_FIXES.notSymmetric;
    add('kms:DescribeKey', 'FAIL', `${named}: ${problems.join(', ')}`, fix);
    skipAll('the key is not usable');
    return;
  }
  add('kms:DescribeKey', 'PASS', `${named}: ${key.state}, ${key.keySpec}, ${key.keyUsage} (${keys.name})`);

  const context = repo ? repositoryContext(repo.repositoryId) : Object.freeze({ [REPOSITORY_CONTEXT_KEY]: THROWAWAY_REPOSITORY_ID });
  const withContext = `with encryption context ${JSON.stringify(context)}`;
  const exercise = async <T>(action: string, run: () => Promise<T>, detail: (value: T) => string = () => `allowed ${withContext}`): Promise<T | undefined> => {
    try {
      const value = await run();
      add(`kms:${action}`, 'PASS', detail(value));
      return value;
    } catch (err) {
      addKmsFailure(add, action, err);
      return undefined;
    }
  };

  const withoutPlaintext = await exercise('GenerateDataKeyWithoutPlaintext', () => keys.generateDataKeyWithoutPlaintext(key.arn, context));
  const generated = await exercise('GenerateDataKey', () => keys.generateDataKey(key.arn, context));
  try {
    const blob = generated?.wrapped ?? withoutPlaintext?.wrapped;
    if (!blob) {
      add('kms:Decrypt', 'SKIP', 'no data key to decrypt: both GenerateDataKey calls failed');
      add('kms:ReEncrypt', 'SKIP', 'no data key to re-encrypt: both GenerateDataKey calls failed');
    } else {
      await exercise('Decrypt', async () => {
        const unwrapped = await keys.decryptDataKey(blob, context, key.arn);
        const same = !generated || unwrapped.plaintext.equals(generated.plaintext);
        unwrapped.plaintext.fill(0);
        if (!same)
          throw new KmscryptError('KEY_ERROR', 'kms:Decrypt returned another plaintext than GenerateDataKey; the KMS endpoint does not behave like AWS KMS');
      });
      await exercise(
        'ReEncrypt',
        () => keys.reEncrypt(blob, context, key.arn),
        () => `allowed (to the same key) ${withContext}`,
      );
    }
  } finally {
    generated?.plaintext.fill(0);
  }
  await exercise('Encrypt', () => encrypt32(keys, key.arn, context));
}

/** kms:Encrypt of 32 random bytes, with the repository's encryption context. */
async function encrypt32(keys: KeyProvider, keyArn: string, context: EncryptionContext): Promise<void> {
  const plaintext = randomBytes(32);
  try {
    await keys.encrypt(keyArn, plaintext, context);
  } finally {
    plaintext.fill(0);
  }
}

/** The local keyring file the keys are in; undefined for a KMS service (or a keyring that cannot be read now). */
function keyringPath(keys: KeyProvider): string | undefined {
  try {
    const store = keys.keyStore();
    return store.kind === 'keyring' ? store.path : undefined;
  } catch {
    return undefined;
  }
}

/** A failed KMS action: the provider's error says what failed and, where it knows, what to do. */
function addKmsFailure(add: Add, action: string, err: unknown): void {
  addFailure(add, `kms:${action}`, err, 'act on the error above; with AWS KMS also check the endpoint (AWS_ENDPOINT_URL_KMS), the region and the credentials');
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
