import { runCommand } from './run-command';

interface Subcommand {
  summary: string;
  run(args: string[]): Promise<number>;
}

/** `git kmscrypt <command>`: each command is loaded only when it is used, to keep start-up small. */
const COMMANDS: Record<string, Subcommand> = {
  init: {
    summary: 'create an empty encrypted repository and print its ID',
    run: async (args) => (await import('./init-command')).runInit(args),
  },
  'local-kms': {
    summary: 'serve the AWS KMS JSON protocol on 127.0.0.1, backed by the local keyring (development and tests)',
    run: async (args) => (await import('./local-kms-command')).runLocalKms(args),
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
  runCommand(() => command.run(rest));
}
