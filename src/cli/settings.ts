import { KmscryptError } from '../errors';
import { runGit } from '../git/run-git';

/**
 * Settings, each looked up in this order: environment variable, `remote.<name>.kmscrypt<Name>`,
 * `kmscrypt.<name>` in git config (any scope), then the default. Documented in docs/configuration.md.
 */
export interface Settings {
  kms?: 'local' | 'aws';
  keyId?: string;
  keyring?: string;
  region?: string;
  endpoint?: string;
  profile?: string;
  kmsEndpoint?: string;
  kmsRegion?: string;
  kmsProfile?: string;
  pathStyle?: boolean;
  allowHttp: boolean;
  allowUnsafeServer: boolean;
  /** Seconds an S3 connection may stay silent before the request is abandoned and retried. */
  requestTimeoutSeconds?: number;
}

const ENV: Record<string, string> = {
  kms: 'KMSCRYPT_KMS',
  keyid: 'KMSCRYPT_KEY_ID',
  keyring: 'KMSCRYPT_KEYRING',
  allowhttp: 'KMSCRYPT_ALLOW_HTTP',
  allowunsafeserver: 'KMSCRYPT_ALLOW_UNSAFE_SERVER',
  requesttimeout: 'KMSCRYPT_REQUEST_TIMEOUT',
};

export async function readSettings(remoteName: string | undefined): Promise<Settings> {
  const config = await gitConfig();
  /**
   * The value of a setting (named as documented, e.g. allowHttp) and where it came from, so that
   * an error names exactly what the user set: the variable, remote.<name>.kmscryptAllowHttp, or
   * kmscrypt.allowHttp. git config keys are case-insensitive; the map holds them lower-cased.
   */
  const lookup = (name: string): { value: string; from: string } | undefined => {
    const lower = name.toLowerCase();
    const envName = ENV[lower];
    const env = envName ? process.env[envName] : undefined;
    if (envName && env !== undefined && env !== '') return { value: env, from: envName };
    if (remoteName) {
      const perRemote = config.get(`remote.${remoteName.toLowerCase()}.kmscrypt${lower}`);
      if (perRemote !== undefined) return { value: perRemote, from: `remote.${remoteName}.kmscrypt${name[0].toUpperCase()}${name.slice(1)}` };
    }
    const value = config.get(`kmscrypt.${lower}`);
    return value === undefined ? undefined : { value, from: `kmscrypt.${name}` };
  };
  const get = (name: string): string | undefined => lookup(name)?.value;
  const bool = (name: string): boolean | undefined => {
    const found = lookup(name);
    if (found === undefined) return undefined;
    if (/^(true|yes|on|1)$/i.test(found.value)) return true;
    if (/^(false|no|off|0)$/i.test(found.value)) return false;
    throw new KmscryptError('BAD_CONFIG', `${found.from} must be true or false, not ${JSON.stringify(found.value)}`);
  };
  const seconds = (name: string): number | undefined => {
    const found = lookup(name);
    if (found === undefined) return undefined;
    const n = Number(found.value);
    if (!/^\d+(\.\d+)?$/.test(found.value.trim()) || n < 1 || n > 3600) {
      throw new KmscryptError('BAD_CONFIG', `${found.from} must be a number of seconds between 1 and 3600, not ${JSON.stringify(found.value)}`);
    }
    return n;
  };
  const kmsSetting = lookup('kms');
  const kms = kmsSetting?.value;
  if (kms !== undefined && kms !== 'local' && kms !== 'aws') {
    throw new KmscryptError('BAD_CONFIG', `${kmsSetting?.from} must be "local" or "aws", not ${JSON.stringify(kms)}`, { setting: kmsSetting?.from });
  }
  return {
    kms,
    keyId: get('keyId'),
    keyring: get('keyring'),
    region: get('region'),
    endpoint: get('endpoint'),
    profile: get('profile'),
    kmsEndpoint: get('kmsEndpoint'),
    kmsRegion: get('kmsRegion'),
    kmsProfile: get('kmsProfile'),
    pathStyle: bool('pathStyle'),
    allowHttp: bool('allowHttp') ?? false,
    allowUnsafeServer: bool('allowUnsafeServer') ?? false,
    requestTimeoutSeconds: seconds('requestTimeout'),
  };
}

/** All git config entries, keys lower-cased; empty outside a repository. A key without a value is "true". */
async function gitConfig(): Promise<Map<string, string>> {
  const { code, stdout } = await runGit(['config', '-z', '--list'], { okCodes: [1, 128] });
  const map = new Map<string, string>();
  if (code !== 0) return map;
  for (const entry of stdout.toString('utf8').split('\0')) {
    if (entry === '') continue;
    const nl = entry.indexOf('\n');
    if (nl < 0) map.set(entry.toLowerCase(), 'true');
    else map.set(entry.slice(0, nl).toLowerCase(), entry.slice(nl + 1));
  }
  return map;
}
