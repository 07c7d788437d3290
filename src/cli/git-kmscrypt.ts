import { installInterruptCleanup } from '../interrupt-cleanup';
import { runCommand } from './run-command';

interface Subcommand {
  summary: string;
  run(args: string[]): Promise<number>;
  /** Stops on SIGINT/SIGTERM by itself (a server); the others clean up and die of the signal. */
  handlesSignals?: boolean;
}

/** `git kmscrypt <command>`: each command is loaded only when it is used, to keep start-up small. */
const COMMANDS: Record<string, Subcommand> = {
  gc: {
    summary: 'consolidate containers, drop unreachable objects, delete superseded data after a grace period',
    run: async (args) => (await import('./gc-command')).runGc(args),
  },
  doctor: {
    summary: 'check URL, settings, store, conditional writes, KMS key and permissions; a fix for each failure',
    run: async (args) => (await import('./doctor-command')).runDoctor(args),
  },
  forget: {
    summary: 'make this clone forget the repository it remembers at a URL (after deliberately deleting or replacing it)',
    run: async (args) => (await import('./forget-command')).runForget(args),
  },
  info: {
    summary: 'show repository ID, KMS key, generation, refs, containers, bytes stored, and its CloudTrail query',
    run: async (args) => (await import('./info-command')).runInfo(args),
  },
  init: {
    summary: 'create an empty encrypted repository and print its ID',
    run: async (args) => (await import('./init-command')).runInit(args),
  },
  'rotate-key': {
    summary: 'rewrap every data key under another KMS key (kms:ReEncrypt), without rewriting any object',
    run: async (args) => (await import('./rotate-key-command')).runRotateKey(args),
  },
  verify: {
    summary: 'download and authenticate every manifest, container and object; check each ref with git fsck',
    run: async (args) => (await import('./verify-command')).runVerify(args),
  },
  'local-kms': {
    summary: 'serve the AWS KMS JSON protocol on 127.0.0.1, backed by the local keyring (development and tests)',
    run: async (args) => (await import('./local-kms-command')).runLocalKms(args),
    handlesSignals: true,
  },
};

export function usage(): string {
  const lines = ['usage: git kmscrypt <command> [options]', '', 'commands:'];
  for (const [name, cmd] of Object.entries(COMMANDS)) lines.push(`  ${name.padEnd(12)} ${cmd.summary}`);
  lines.push('', "Run 'git kmscrypt <command> --help' for a command's options.");
  return lines.join('\n') + '\n';
}

export function main(argv: string[]): void {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return;
  }
  const command = COMMANDS[name];
  if (!command) {
    process.stderr.write(`fatal: unknown command '${name}'; run 'git kmscrypt --help' for the list\n`);
    process.exitCode = 129;
    return;
  }
  if (!command.handlesSignals) installInterruptCleanup();
  runCommand(() => command.run(rest));
}
