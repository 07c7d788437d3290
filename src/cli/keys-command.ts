import { KmscryptError } from '../errors';
import { defaultKeyringPath, Keyring, KeyringFile, KeyringKey } from '../keys/keyring';
import { localKeyArn } from '../keys/local-key-provider';
import { readSettings } from './settings';

const HELP = `usage: git kmscrypt keys create [--alias NAME] [--description TEXT] [--keyring PATH] [--json]
       git kmscrypt keys list [--keyring PATH] [--json]

The master keys of the local keyring: kmscrypt.keyring, else KMSCRYPT_KEYRING, else
~/.config/kmscrypt/keyring.json (or --keyring PATH). Keys are never deleted here.

  create   makes a new key (AES-256, state Enabled) and prints it; --alias names it
           (alias/NAME; "alias/" is added when missing), --description describes it.
           Then: git config kmscrypt.keyId <ID> for new repositories, or
           git kmscrypt rotate-key <remote> --to <ID> to move a repository to it.
  list     prints one line per key: ID, ARN, state, aliases (comma-separated, or -).

The ARN is the one kmscrypt records for the local keyring (region "local"); through
git kmscrypt local-kms the same key ID has that server's region and account in its ARN.
Back the keyring up after creating a key: without it the data it protects cannot be decrypted.
`;

const ALIAS_NAME = /^alias\/[a-zA-Z0-9/_-]{1,250}$/;

interface KeysArgs {
  action?: 'create' | 'list';
  alias?: string;
  description: string;
  keyring?: string;
  json: boolean;
  help: boolean;
}

export interface KeyLine {
  keyId: string;
  arn: string;
  state: string;
  aliases: string[];
  description: string;
  createdAt: string;
}

function parseArgs(args: string[]): KeysArgs {
  const parsed: KeysArgs = { description: '', json: false, help: false };
  const seeHelp = "see 'git kmscrypt keys --help'";
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      const v = eq > 0 ? arg.slice(eq + 1) : args[++i];
      if (v === undefined) throw new KmscryptError('USAGE', `keys: ${flag} needs a value`, { fix: seeHelp });
      return v;
    };
    if (flag === '--help' || flag === '-h') parsed.help = true;
    else if (flag === '--json') parsed.json = true;
    else if (flag === '--alias') parsed.alias = value();
    else if (flag === '--description') parsed.description = value();
    else if (flag === '--keyring') parsed.keyring = value();
    else if (arg.startsWith('-')) throw new KmscryptError('USAGE', `keys: unknown option ${arg}`, { fix: seeHelp });
    else if (parsed.action === undefined && (arg === 'create' || arg === 'list')) parsed.action = arg;
    else throw new KmscryptError('USAGE', `keys: unexpected argument ${arg}`, { fix: `use 'git kmscrypt keys create' or 'git kmscrypt keys list'` });
  }
  if (parsed.help) return parsed;
  if (parsed.action === undefined)
    throw new KmscryptError('USAGE', 'keys: missing action', { fix: `use 'git kmscrypt keys create' or 'git kmscrypt keys list'` });
  if (parsed.action === 'list' && (parsed.alias !== undefined || parsed.description !== '')) {
    throw new KmscryptError('USAGE', 'keys list takes no --alias or --description', { fix: seeHelp });
  }
  if (parsed.alias !== undefined) parsed.alias = aliasName(parsed.alias);
  if (parsed.description.length > 8192) throw new KmscryptError('USAGE', 'keys create: --description is longer than 8192 characters');
  return parsed;
}

/** `team`, `alias/team`: checked as KMS checks an alias name. */
function aliasName(given: string): string {
  const name = given.startsWith('alias/') ? given : `alias/${given}`;
  if (!ALIAS_NAME.test(name)) {
    throw new KmscryptError('USAGE', `keys create: --alias ${JSON.stringify(given)} is not an alias name`, {
      fix: `use letters, digits, '/', '_' and '-' (e.g. --alias team-repos)`,
    });
  }
  if (name.startsWith('alias/aws/'))
    throw new KmscryptError('USAGE', 'keys create: alias names that begin with alias/aws/ are reserved by AWS', { fix: 'choose another' });
  return name;
}

function keyLine(file: KeyringFile, key: KeyringKey): KeyLine {
  return {
    keyId: key.keyId,
    arn: localKeyArn(key.keyId),
    state: key.state,
    aliases: Object.entries(file.aliases)
      .filter(([, id]) => id === key.keyId)
      .map(([alias]) => alias)
      .sort(),
    description: key.description,
    createdAt: key.createdAt,
  };
}

function format(line: KeyLine): string {
  return `${line.keyId}  ${line.arn}  ${line.state}  ${line.aliases.length ? line.aliases.join(',') : '-'}\n`;
}

/** `git kmscrypt keys create|list`: the local keyring's master keys. */
export async function runKeys(args: string[]): Promise<number> {
  const parsed = parseArgs(args);
  if (parsed.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const keyring = new Keyring(parsed.keyring ?? (await readSettings(undefined)).keyring ?? defaultKeyringPath());
  if (parsed.action === 'list') {
    const file = keyring.load();
    const lines = file.keys.map((k) => keyLine(file, k));
    process.stdout.write(parsed.json ? JSON.stringify({ keyring: keyring.path, keys: lines }) + '\n' : lines.map(format).join(''));
    return 0;
  }
  const created = keyring.createKey(parsed.description, { alias: parsed.alias, aliasTaken: 'refuse' });
  const line = keyLine(keyring.load(), created);
  process.stdout.write(parsed.json ? JSON.stringify(line) + '\n' : format(line));
  process.stderr.write(
    `kmscrypt: created key ${created.keyId} in ${keyring.path}; back the keyring up. ` +
      `Use it with: git config kmscrypt.keyId ${created.keyId}, or move a repository to it: git kmscrypt rotate-key <remote> --to ${created.keyId}\n`,
  );
  return 0;
}
