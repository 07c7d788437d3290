import { KmscryptError } from '../errors';
import { runGit } from '../git/run-git';

/**
 * Settings, each looked up in this order: environment variable, `remote.<name>.kmscrypt<Name>`,
 * `kmscrypt.<name>` in git config (any scope), then the default. Documented in README's table.
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
}

const ENV: Record<string, string> = {
  kms: 'KMSCRYPT_KMS',
  keyid: 'KMSCRYPT_KEY_ID',
  keyring: 'KMSCRYPT_KEYRING',
  allowhttp: 'KMSCRYPT_ALLOW_HTTP',
  allowunsafeserver: 'KMSCRYPT_ALLOW_UNSAFE_SERVER',
};

export async function readSettings(remoteName: string | undefined): Promise<Settings> {
  const config = await gitConfig();
  const get = (name: string): string | undefined => {
    const env = ENV[name] ? process.env[ENV[name]] : undefined;
    if (env !== undefined && env !== '') return env;
    if (remoteName) {
      const perRemote = config.get(`remote.${remoteName.toLowerCase()}.kmscrypt${name}`);
      if (perRemote !== undefined) return perRemote;
    }
    return config.get(`kmscrypt.${name}`);
  };
  const bool = (name: string): boolean | undefined => {
    const v = get(name);
    if (v === undefined) return undefined;
    if (/^(true|yes|on|1)$/i.test(v)) return true;
    if (/^(false|no|off|0)$/i.test(v)) return false;
    throw new KmscryptError('BAD_CONFIG', `kmscrypt.${name} must be true or false, not ${JSON.stringify(v)}`);
  };
  const kms = get('kms');
  if (kms !== undefined && kms !== 'local' && kms !== 'aws') {
    throw new KmscryptError('BAD_CONFIG', `kmscrypt.kms (or KMSCRYPT_KMS) must be "local" or "aws", not ${JSON.stringify(kms)}`);
  }
  return {
    kms,
    keyId: get('keyid'),
    keyring: get('keyring'),
    region: get('region'),
    endpoint: get('endpoint'),
    profile: get('profile'),
    kmsEndpoint: get('kmsendpoint'),
    kmsRegion: get('kmsregion'),
    kmsProfile: get('kmsprofile'),
    pathStyle: bool('pathstyle'),
    allowHttp: bool('allowhttp') ?? false,
    allowUnsafeServer: bool('allowunsafeserver') ?? false,
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
