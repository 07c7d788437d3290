import { installInterruptCleanup } from '../interrupt-cleanup';
import { COMMAND_DOCS } from './help/git-kmscrypt-manual';
import { commandHelp, commandList } from './help/render-text';
import { runCommand } from './run-command';
import { packageVersion } from './version';

interface Subcommand {
  run(args: string[]): Promise<number>;
  /** Stops on SIGINT/SIGTERM by itself (a server); the others clean up and die of the signal. */
  handlesSignals?: boolean;
}

/**
 * `git kmscrypt <command>`: each command is loaded only when it is used, to keep start-up small.
 * Its usage, options and summary live in help/git-kmscrypt-manual.ts, which the manual page is
 * made from too.
 */
export const COMMANDS: Record<string, Subcommand> = {
  init: { run: async (args) => (await import('./init-command')).runInit(args) },
  info: { run: async (args) => (await import('./info-command')).runInfo(args) },
  verify: { run: async (args) => (await import('./verify-command')).runVerify(args) },
  doctor: { run: async (args) => (await import('./doctor-command')).runDoctor(args) },
  'rotate-key': { run: async (args) => (await import('./rotate-key-command')).runRotateKey(args) },
  'set-head': { run: async (args) => (await import('./set-head-command')).runSetHead(args) },
  gc: { run: async (args) => (await import('./gc-command')).runGc(args) },
  forget: { run: async (args) => (await import('./forget-command')).runForget(args) },
  keys: { run: async (args) => (await import('./keys-command')).runKeys(args) },
  'local-kms': { run: async (args) => (await import('./local-kms-command')).runLocalKms(args), handlesSignals: true },
};

const isHelpFlag = (arg: string): boolean => arg === '--help' || arg === '-h';

function unknownCommand(name: string): void {
  process.stderr.write(`fatal: unknown command '${name}'; run 'git kmscrypt help' for the list\n`);
  process.exitCode = 129;
}

export function main(argv: string[]): void {
  const [name, ...rest] = argv;
  if (name === undefined) {
    process.stderr.write(commandList(COMMAND_DOCS));
    process.exitCode = 129;
    return;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    process.stdout.write(`git-remote-kmscrypt version ${packageVersion()}\n`);
    return;
  }
  // `git kmscrypt --help` never gets here: git turns it into `git help kmscrypt`, the manual page.
  if (isHelpFlag(name) || (name === 'help' && rest.length === 0)) {
    process.stdout.write(commandList(COMMAND_DOCS));
    return;
  }
  const topic = name === 'help' ? rest[0] : name;
  const doc = COMMAND_DOCS.find((c) => c.name === topic);
  const command = Object.hasOwn(COMMANDS, topic) ? COMMANDS[topic] : undefined;
  if (doc === undefined || command === undefined) {
    unknownCommand(topic);
    return;
  }
  if (name === 'help' || rest.some(isHelpFlag)) {
    process.stdout.write(commandHelp(doc));
    return;
  }
  if (!command.handlesSignals) installInterruptCleanup();
  runCommand(() => command.run(rest));
}
