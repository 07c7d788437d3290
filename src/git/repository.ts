import { KmscryptError } from '../errors';
import type { ObjectFormat } from '../format/object-format';
import { isObjectFormat } from '../format/object-format';
import { gitText, runGit } from './run-git';

/** Questions about the local repository, each one git command. */
export async function localObjectFormat(): Promise<ObjectFormat> {
  const value = await gitText(['rev-parse', '--show-object-format']);
  if (!isObjectFormat(value)) throw new KmscryptError('GIT', `unsupported object format ${value}`);
  return value;
}

/** True when `ancestor` is reachable from `descendant`; false when not, or when either is missing. */
export async function isAncestor(ancestor: string, descendant: string): Promise<boolean> {
  const { code } = await runGit(['merge-base', '--is-ancestor', ancestor, descendant], { okCodes: [1, 128] });
  return code === 0;
}

export async function resolveRef(ref: string): Promise<string | undefined> {
  const { code, stdout } = await runGit(['rev-parse', '--verify', '--quiet', `${ref}^{object}`], { okCodes: [1, 128] });
  return code === 0 ? stdout.toString('utf8').trim() : undefined;
}

export async function isValidRefName(name: string): Promise<boolean> {
  const { code } = await runGit(['check-ref-format', name], { okCodes: [1, 128] });
  return code === 0;
}

export async function currentBranch(): Promise<string | undefined> {
  const { code, stdout } = await runGit(['symbolic-ref', '--quiet', 'HEAD'], { okCodes: [1, 128] });
  return code === 0 ? stdout.toString('utf8').trim() : undefined;
}

export async function gitDir(): Promise<string> {
  return gitText(['rev-parse', '--absolute-git-dir']);
}

/** Whether every object reachable from `tips` but not from local refs is present. */
export async function isConnected(tips: string[]): Promise<boolean> {
  if (tips.length === 0) return true;
  const { code } = await runGit(['rev-list', '--objects', '--quiet', '--stdin', '--not', '--all'], {
    input: tips.join('\n') + '\n',
    okCodes: [1, 128],
  });
  return code === 0;
}
