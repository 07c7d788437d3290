import { runHelperProtocol } from '../protocol/helper-protocol';
import { HelperSession } from '../remote/helper-session';
import type { RemoteConfig } from '../remote/remote-repository';
import { installInterruptCleanup, isInterrupted } from '../interrupt-cleanup';
import { recordStats, requestSummary } from './stats';
import { exitCodeFor, reportFatal } from './run-command';

const USAGE = `usage: git-remote-kmscrypt <remote> [<url>]

A git remote helper: git runs it for URLs of the form kmscrypt::<url>, e.g.
  git clone kmscrypt::s3://my-bucket/my-repo
  git push kmscrypt::file:///srv/encrypted/my-repo main
See 'git kmscrypt --help' for the management commands.
`;

export function main(argv: string[]): void {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(USAGE);
    return;
  }
  if (argv[0] === '--version') {
    process.stdout.write(`git-remote-kmscrypt ${require('../../package.json').version}\n`);
    return;
  }
  if (argv.length < 1 || argv.length > 2) {
    process.stderr.write(USAGE);
    process.exitCode = 129;
    return;
  }
  const [remote, url = remote] = argv;
  installInterruptCleanup();
  // Exit explicitly: stdin and SDK sockets would otherwise keep the process alive. stdout and
  // stderr are synchronous for pipes and files on POSIX, so nothing written is lost. Once
  // interrupted, the signal handler ends the process when it has cleaned up.
  run(url, remote === url ? undefined : remote).then(
    () => isInterrupted() || process.exit(0),
    (err: unknown) => {
      if (isInterrupted()) return;
      reportFatal(err);
      process.exit(exitCodeFor(err));
    },
  );
}

async function run(url: string, remoteName: string | undefined): Promise<void> {
  const startedAt = Date.now();
  const { openRemote } = await import('./open-remote');
  let config: RemoteConfig | undefined;
  try {
    config = await openRemote(url, remoteName);
    const session = new HelperSession(config);
    await runHelperProtocol(process.stdin, process.stdout, session);
    recordStats('helper', config, startedAt, 'ok');
    if (session.options.verbosity >= 2) process.stderr.write(requestSummary(config, startedAt));
  } catch (err) {
    recordStats('helper', config, startedAt, 'error', err);
    throw err;
  }
}
