import { KmscryptError } from '../errors';
import { isObjectFormat, ObjectFormat } from '../format/object-format';
import { localObjectFormat } from '../git/repository';
import { RemoteRepository } from '../remote/remote-repository';
import { openRemote } from './open-remote';

export async function runInit(args: string[]): Promise<number> {
  let url: string | undefined;
  let format: ObjectFormat | undefined;
  let json = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '--json') json = true;
    else if (a === '--object-format') {
      const v = args[++i];
      if (!isObjectFormat(v)) throw new KmscryptError('USAGE', `--object-format must be sha1 or sha256, not ${JSON.stringify(v)}`);
      format = v;
    } else if (a.startsWith('-')) throw new KmscryptError('USAGE', `unknown option ${a}; see 'git kmscrypt init --help'`);
    else if (url === undefined) url = a.replace(/^kmscrypt::/, '');
    else throw new KmscryptError('USAGE', `unexpected argument ${a}; see 'git kmscrypt init --help'`);
  }
  if (!url) throw new KmscryptError('USAGE', "missing <url>; see 'git kmscrypt init --help'");
  const config = await openRemote(url);
  const existing = await RemoteRepository.open(config);
  if (existing) throw new KmscryptError('CONFLICT', `${config.url} already holds repository ${existing.repositoryId}`);
  format ??= await localObjectFormat().catch(() => 'sha1' as const);
  const repo = await RemoteRepository.create(config, format);
  const d = repo.descriptor;
  if (json) process.stdout.write(JSON.stringify({ url: config.url, repositoryId: d.repositoryId, objectFormat: d.objectFormat, keyId: d.keyId }) + '\n');
  else process.stdout.write(`Initialized empty encrypted repository ${d.repositoryId} at ${config.url}\n  key: ${d.keyId}\n  object format: ${d.objectFormat}\n`);
  return 0;
}
