import { KmscryptError } from '../errors';
import { isObjectFormat, ObjectFormat } from '../format/object-format';
import { localObjectFormat } from '../git/repository';
import { configValue } from '../git/clone-config';
import { RemoteRepository } from '../remote/remote-repository';
import { branchRef, setHead } from '../remote/set-head';
import { openRemote } from './open-remote';

export async function runInit(args: string[]): Promise<number> {
  let url: string | undefined;
  let format: ObjectFormat | undefined;
  let json = false;
  let initialBranch: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--json') json = true;
    else if (a === '--object-format') {
      const v = args[++i];
      if (!isObjectFormat(v)) throw new KmscryptError('USAGE', `--object-format must be sha1 or sha256, not ${JSON.stringify(v)}`);
      format = v;
    } else if (a === '-b' || a === '--initial-branch' || a.startsWith('--initial-branch=')) {
      const v = a.startsWith('--initial-branch=') ? a.slice('--initial-branch='.length) : args[++i];
      if (!v || v.startsWith('-')) throw new KmscryptError('USAGE', `${a} needs a branch name`, { fix: `see 'git kmscrypt init --help'` });
      initialBranch = v;
    } else if (a.startsWith('-')) throw new KmscryptError('USAGE', `unknown option ${a}`, { fix: `see 'git kmscrypt init --help'` });
    else if (url === undefined) url = a.replace(/^kmscrypt::/, '');
    else throw new KmscryptError('USAGE', `unexpected argument ${a}`, { fix: `see 'git kmscrypt init --help'` });
  }
  if (!url) throw new KmscryptError('USAGE', 'missing <url>', { fix: "see 'git kmscrypt init --help'" });
  const config = await openRemote(url);
  const existing = await RemoteRepository.open(config);
  if (existing) throw new KmscryptError('CONFLICT', `${config.url} already holds repository ${existing.repositoryId}`);
  format ??= await localObjectFormat().catch(() => 'sha1' as const);
  const head = branchRef(initialBranch ?? (await configValue('init.defaultBranch').catch(() => undefined)) ?? 'master');
  const repo = await RemoteRepository.create(config, format);
  // Like git init --bare: HEAD names the initial branch before it exists (FORMAT.md §7.2 `head`).
  await setHead(repo, head);
  const d = repo.descriptor;
  if (json) process.stdout.write(JSON.stringify({ url: config.url, repositoryId: d.repositoryId, objectFormat: d.objectFormat, keyId: d.keyId, head }) + '\n');
  else
    process.stdout.write(
      `Initialized empty encrypted repository ${d.repositoryId} at ${config.url}\n  key: ${d.keyId}\n  object format: ${d.objectFormat}\n  HEAD: ${head}\n`,
    );
  return 0;
}
