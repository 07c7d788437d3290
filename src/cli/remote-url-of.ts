import { gitText } from '../git/run-git';

/**
 * A command's <remote-or-url>: a configured remote's name (its URL is read from git config)
 * or a URL, with or without the kmscrypt:: prefix.
 */
export async function remoteUrlOf(target: string): Promise<{ url: string; remoteName?: string }> {
  if (/^[A-Za-z0-9._-]+$/.test(target) && !target.includes('.')) {
    const url = await gitText(['config', '--get', `remote.${target}.url`]).catch(() => '');
    if (url) return { url: url.replace(/^kmscrypt::/, ''), remoteName: target };
  }
  return { url: target.replace(/^kmscrypt::/, '') };
}
