import { resolve } from 'node:path';
import { KmscryptError } from '../errors';
import { runGit } from '../git/run-git';

export interface CommandArgs {
  /** The <remote-or-url> argument as given. */
  target: string;
  json: boolean;
  /** --to <key>, for commands that take it. */
  to?: string;
}

/** Parses `<remote-or-url> [--json] [--to <key>]`; options a command does not take are refused. (`--help` is answered before a command runs.) */
export function parseCommandArgs(command: string, args: string[], accepts: { to?: boolean; json?: boolean } = {}): CommandArgs {
  let target: string | undefined;
  let json = false;
  let to: string | undefined;
  const seeHelp = `see 'git kmscrypt ${command} --help'`;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--json' && accepts.json !== false) json = true;
    else if ((a === '--to' || a.startsWith('--to=')) && accepts.to) {
      const value = a === '--to' ? args[++i] : a.slice('--to='.length);
      if (value === undefined || value === '' || value.startsWith('-')) {
        throw new KmscryptError('USAGE', '--to needs a key (key ID, key ARN, alias name or alias ARN)', { fix: seeHelp });
      }
      to = value;
    } else if (a.startsWith('-') && a !== '-') throw new KmscryptError('USAGE', `unknown option ${a}`, { fix: seeHelp });
    else if (target === undefined) target = a;
    else throw new KmscryptError('USAGE', `unexpected argument ${a}`, { fix: seeHelp });
  }
  if (target === undefined) {
    throw new KmscryptError('USAGE', 'missing <remote-or-url> (a remote name such as origin, or a kmscrypt URL)', { fix: seeHelp });
  }
  if (accepts.to && to === undefined) {
    throw new KmscryptError('USAGE', 'missing --to <key> (the key to move the repository to)', { fix: seeHelp });
  }
  return { target, json, to };
}

export interface ResolvedTarget {
  /** What follows kmscrypt::, ready for openRemote. */
  url: string;
  /** Set when the target was a configured remote: its per-remote settings apply. */
  remoteName?: string;
}

/**
 * A configured remote's name becomes its URL (as git would, the name wins over a URL of the same
 * spelling); anything else is a URL, with or without the kmscrypt:: prefix. A bare word that
 * names no remote is refused rather than taken for an S3 bucket: `info origin` outside the
 * repository, or a mistyped remote name, would otherwise fail with a message about a bucket
 * nobody meant. A bucket is named with s3:// here.
 */
export async function resolveTarget(target: string): Promise<ResolvedTarget> {
  if (isBareWord(target)) {
    const configured = await remoteUrl(target);
    if (configured === undefined) throw await notARemote(target);
    if (!configured.startsWith('kmscrypt::')) {
      throw new KmscryptError('BAD_URL', `remote ${target} is not a kmscrypt remote (its URL is ${configured})`, { fix: 'give a kmscrypt remote or URL' });
    }
    return { url: await anchorRelativePath(configured.slice('kmscrypt::'.length)), remoteName: target };
  }
  return { url: target.replace(/^kmscrypt::/, '') };
}

/** What could be a remote name: no path, no scheme, no query. */
function isBareWord(target: string): boolean {
  return !/^[/.]/.test(target) && !/[:/?]/.test(target);
}

async function notARemote(name: string): Promise<KmscryptError> {
  const inRepository = (await runGit(['rev-parse', '--git-dir'], { okCodes: [128] })).code === 0;
  const url = `a URL such as kmscrypt::s3://bucket/prefix or kmscrypt::./directory (kmscrypt::s3://${name} for the bucket of that name)`;
  if (!inRepository) {
    return new KmscryptError('BAD_URL', `${JSON.stringify(name)} is not a remote here: ${process.cwd()} is not in a git repository`, {
      target: name,
      fix: `run this inside the repository, or give ${url}`,
    });
  }
  const remotes = (await runGit(['remote'])).stdout.toString('utf8').split('\n').filter(Boolean);
  const known = remotes.length ? `remotes here: ${remotes.join(', ')}` : 'this repository has no remotes';
  return new KmscryptError('BAD_URL', `no remote named ${JSON.stringify(name)} (${known})`, { target: name, fix: `give a remote name or ${url}` });
}

async function remoteUrl(name: string): Promise<string | undefined> {
  const { code, stdout } = await runGit(['config', '--get', `remote.${name}.url`], { okCodes: [1, 2, 128, 129] });
  const url = stdout.toString('utf8').trim();
  return code === 0 && url !== '' ? url : undefined;
}

/**
 * git runs the helper from the top of the work tree (or the git directory of a bare repository),
 * so a remote's relative directory URL is resolved from there, not from where this command runs.
 */
async function anchorRelativePath(url: string): Promise<string> {
  if (!(url.startsWith('./') || url.startsWith('../') || url === '.' || url === '..')) return url;
  const top = await runGit(['rev-parse', '--show-toplevel'], { okCodes: [128] });
  let base = top.code === 0 ? top.stdout.toString('utf8').trim() : '';
  if (base === '') {
    const dir = await runGit(['rev-parse', '--absolute-git-dir'], { okCodes: [128] });
    base = dir.code === 0 ? dir.stdout.toString('utf8').trim() : process.cwd();
  }
  return resolve(base, url);
}
