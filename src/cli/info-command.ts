import { errorMessage } from '../errors';
import { containerIdOfKey, generationOfKey, STORE_KEYS } from '../format/constants';
import { REPOSITORY_CONTEXT_KEY } from '../keys/key-provider';
import { RemoteRepository } from '../remote/remote-repository';
import { parseCommandArgs } from './command-args';
import { openTargetRepository } from './open-remote';

export interface RepositoryInfo {
  url: string;
  repositoryId: string;
  objectFormat: string;
  createdAt: string;
  keyProvider: string;
  /** The key new data is wrapped with, as the newest manifest records it. */
  key: { arn: string; aliases: string[]; state?: string; error?: string };
  /** Containers of the newest manifest per key that wraps their data key. */
  containerKeys: Record<string, number>;
  generation: number;
  manifestsStored: number;
  refs: number;
  head: string | null;
  containers: number;
  /** Containers stored but not in the newest manifest. */
  unlistedContainers: number;
  bytes: { total: number; containers: number; manifests: number; descriptor: number; other: number };
  /** A command that lists the repository's KMS requests, or null for the local keyring. */
  cloudTrail: string | null;
}

export async function runInfo(args: string[]): Promise<number> {
  const parsed = parseCommandArgs('info', args);
  const repo = await openTargetRepository(parsed.target);
  const info = await repositoryInfo(repo);
  process.stdout.write(parsed.json ? JSON.stringify(info) + '\n' : formatInfo(info));
  return 0;
}

async function repositoryInfo(repo: RemoteRepository): Promise<RepositoryInfo> {
  const { manifest } = await repo.latest('read');
  const listing = await repo.storage.list('');
  const listed = new Set(manifest?.containers.map((c) => c.id) ?? []);
  const bytes = { total: 0, containers: 0, manifests: 0, descriptor: 0, other: 0 };
  let unlisted = 0;
  let manifestsStored = 0;
  for (const o of listing) {
    bytes.total += o.size;
    if (o.key.startsWith(STORE_KEYS.containerPrefix)) {
      bytes.containers += o.size;
      const id = containerIdOfKey(o.key);
      if (id === undefined || !listed.has(id)) unlisted++;
    } else if (generationOfKey(o.key) !== undefined) {
      bytes.manifests += o.size;
      manifestsStored++;
    } else if (o.key === STORE_KEYS.descriptor) bytes.descriptor += o.size;
    else bytes.other += o.size;
  }
  const arn = manifest?.keyId ?? repo.descriptor.keyId;
  const key: RepositoryInfo['key'] = { arn, aliases: [] };
  try {
    const described = await repo.config.keys.describeKey(arn);
    key.arn = described.arn;
    key.aliases = described.aliases;
    key.state = described.state;
  } catch (err) {
    key.error = errorMessage(err);
  }
  const containerKeys: Record<string, number> = {};
  for (const c of manifest?.containers ?? []) containerKeys[c.keyId] = (containerKeys[c.keyId] ?? 0) + 1;
  return {
    url: repo.config.url,
    repositoryId: repo.repositoryId,
    objectFormat: repo.descriptor.objectFormat,
    createdAt: repo.descriptor.createdAt,
    keyProvider: repo.config.keys.name,
    key,
    containerKeys,
    generation: manifest?.generation ?? 0,
    manifestsStored,
    refs: Object.keys(manifest?.refs ?? {}).length,
    head: manifest?.head ?? null,
    containers: manifest?.containers.length ?? 0,
    unlistedContainers: unlisted,
    bytes,
    cloudTrail: repo.config.keyProvider === 'aws' ? cloudTrailCommand(key.arn, repo.repositoryId) : null,
  };
}

/**
 * KMS logs the encryption context of every request in CloudTrail (requestParameters.encryptionContext,
 * or sourceEncryptionContext for ReEncrypt); lookup-events can filter by the key, not by the context.
 */
function cloudTrailCommand(keyArn: string, repositoryId: string): string {
  const region = /^arn:[^:]+:kms:([^:]+):/.exec(keyArn)?.[1];
  const filter =
    `.[] | fromjson | select((.requestParameters.encryptionContext // .requestParameters.sourceEncryptionContext // {})["${REPOSITORY_CONTEXT_KEY}"] == "${repositoryId}")` +
    ' | [.eventTime, .eventName, .userIdentity.arn] | @tsv';
  return (
    `aws cloudtrail lookup-events${region ? ` --region ${region}` : ''} --lookup-attributes AttributeKey=ResourceName,AttributeValue=${keyArn}` +
    ` --query 'Events[].CloudTrailEvent' --output json | jq -r '${filter}'`
  );
}

function formatInfo(i: RepositoryInfo): string {
  const keyLine = `${i.key.arn}${i.key.aliases.length ? ` (${i.key.aliases.join(', ')})` : ''}${i.key.state ? `, ${i.key.state}` : ''}${i.key.error ? ` (cannot describe it: ${i.key.error})` : ''}`;
  const perKey = Object.entries(i.containerKeys).map(([arn, n]) => `${n} under ${arn}`);
  const rows: Array<[string, string]> = [
    ['repository', i.repositoryId],
    ['location', i.url],
    ['object format', i.objectFormat],
    ['created', i.createdAt],
    ['key', keyLine],
    ['key provider', i.keyProvider],
    ['context', `{"${REPOSITORY_CONTEXT_KEY}":"${i.repositoryId}"}`],
    ['manifest', `generation ${i.generation} (${i.manifestsStored} stored)`],
    ['refs', `${i.refs}${i.head ? `, HEAD -> ${i.head}` : ''}`],
    ['containers', `${i.containers}${i.unlistedContainers ? ` (+${i.unlistedContainers} stored but not in the manifest)` : ''}`],
    ['data keys', perKey.length ? perKey.join('; ') : 'none yet'],
    ['stored bytes', `${i.bytes.total} (containers ${i.bytes.containers}, manifests ${i.bytes.manifests}, descriptor ${i.bytes.descriptor}${i.bytes.other ? `, other ${i.bytes.other}` : ''})`],
    ['CloudTrail', i.cloudTrail ?? 'not applicable: the local keyring logs nothing (with AWS KMS every request is logged with the repository ID)'],
  ];
  return rows.map(([k, v]) => `${k.padEnd(14)} ${v}`).join('\n') + '\n';
}
