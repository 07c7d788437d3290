import { rotateKey } from '../remote/rotate-key';
import { parseCommandArgs } from './command-args';
import { openTargetRepository } from './open-remote';

const HELP = `usage: git kmscrypt rotate-key <remote-or-url> --to <key> [--json]

Moves the repository to another KMS key (key ID, key ARN, alias name or alias ARN): every data
key is rewrapped under it with kms:ReEncrypt, without decrypting or rewriting any object, and
the next manifest, sealed under a new data key of that key, records it. Pushes then use it
(unless kmscrypt.keyId names another key). Nothing changes until that manifest is published,
so an interrupted run leaves the repository as it was; run it again to finish. Once it has
succeeded the old key can be disabled: every clone, old and new, keeps working.
`;

export async function runRotateKey(args: string[]): Promise<number> {
  const parsed = parseCommandArgs('rotate-key', args, { to: true });
  if (parsed.help) {
    process.stdout.write(HELP);
    return 0;
  }
  const repo = await openTargetRepository(parsed.target!);
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
