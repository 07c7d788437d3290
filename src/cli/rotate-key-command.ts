import { rotateKey } from '../remote/rotate-key';
import { parseCommandArgs } from './command-args';
import { openTargetRepository } from './open-remote';

export async function runRotateKey(args: string[]): Promise<number> {
  const parsed = parseCommandArgs('rotate-key', args, { to: true });
  const repo = await openTargetRepository(parsed.target);
  const { config } = repo;
  const r = await rotateKey(repo, parsed.to!);
  if (parsed.json) {
    process.stdout.write(JSON.stringify(r) + '\n');
  } else if (r.generation === null) {
    process.stdout.write(`Repository ${r.repositoryId} is already entirely under ${r.keyArn} (${r.alreadyUnderKey} data keys); nothing to do\n`);
  } else {
    const lines = [
      `Rewrapped ${r.rewrapped} data key${r.rewrapped === 1 ? '' : 's'} of repository ${r.repositoryId} under ${r.keyArn}` +
        `${r.alreadyUnderKey ? ` (${r.alreadyUnderKey} already under it)` : ''}; published manifest generation ${r.generation}`,
    ];
    if (r.previousKeys.length) {
      lines.push(`No longer used by the newest manifest: ${r.previousKeys.join(', ')}; it can be disabled once no push started before this rotation is still running (run rotate-key again to pick up such a push)`);
    }
    process.stdout.write(lines.join('\n') + '\n');
  }
  if (config.keyId !== undefined && config.keyId !== r.keyArn && config.keyId !== parsed.to) {
    process.stderr.write(`warning: kmscrypt: kmscrypt.keyId (or KMSCRYPT_KEY_ID) is ${config.keyId} here, so pushes from here still use that key; change it: git config kmscrypt.keyId ${r.keyArn}\n`);
  }
  return 0;
}
