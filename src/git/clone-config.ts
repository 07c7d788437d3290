import { gitText, runGit } from './run-git';

/** The local repository's value of a config key (all scopes), or undefined when unset. */
export async function configValue(key: string): Promise<string | undefined> {
  const { code, stdout } = await runGit(['config', '--get', key], { okCodes: [1] });
  return code === 0 ? stdout.toString('utf8').replace(/\n$/, '') : undefined;
}

export async function setLocalConfig(key: string, value: string): Promise<void> {
  await runGit(['config', '--local', key, value]);
}

/** Whether the repository has any ref at all (HEAD aside). */
export async function hasRefs(): Promise<boolean> {
  return (await gitText(['for-each-ref', '--count=1', '--format=x'])) !== '';
}

/** The branch HEAD names when that branch has no commit yet (an empty clone), else undefined. */
export async function unbornBranch(): Promise<string | undefined> {
  const target = await runGit(['symbolic-ref', '--quiet', 'HEAD'], { okCodes: [1, 128] });
  if (target.code !== 0) return undefined;
  const born = await runGit(['rev-parse', '--verify', '--quiet', 'HEAD'], { okCodes: [1, 128] });
  return born.code === 0 ? undefined : target.stdout.toString('utf8').trim();
}

/**
 * Points an unborn HEAD at another branch and moves the upstream configuration git wrote for the
 * old one (`branch.<name>.remote` and `.merge`, as `git clone` sets them) to the new one.
 */
export async function renameUnbornBranch(from: string, to: string, remote: string): Promise<void> {
  await runGit(['symbolic-ref', 'HEAD', to]);
  const short = (ref: string) => ref.slice('refs/heads/'.length);
  if ((await configValue(`branch.${short(from)}.remote`)) !== remote || (await configValue(`branch.${short(from)}.merge`)) !== from) return;
  await runGit(['config', '--local', '--remove-section', `branch.${short(from)}`]);
  await setLocalConfig(`branch.${short(to)}.remote`, remote);
  await setLocalConfig(`branch.${short(to)}.merge`, to);
}
