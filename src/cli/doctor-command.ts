import type { Manifest } from '../format/manifest';
import { DEFAULT_ALIAS } from '../keys/keyring';
import { KEY_FIXES } from '../keys/kms-errors';
import { resolveKmsEndpoint } from '../keys/kms-endpoint';
import type { RemoteConfig, RemoteRepository } from '../remote/remote-repository';
import { resolveS3Endpoint } from '../storage/s3-client';
import { parseCommandArgs, ResolvedTarget, resolveTarget } from './command-args';
import { addFailure, Check, CheckStatus, plural } from './doctor/check';
import { endpointCheck } from './doctor/endpoint-check';
import { checkKms } from './doctor/kms-checks';
import { checkConditionalWrites, checkRepository, checkStore } from './doctor/store-checks';
import { openRemote } from './open-remote';
import { readSettings, Settings } from './settings';
import { parseRemoteUrl, RemoteLocation } from './url';

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
