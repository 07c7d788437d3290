import { forbidLazyFetch } from '../git/lazy-fetch-guard';
import { runHelperProtocol } from '../protocol/helper-protocol';
import { HelperSession } from '../remote/helper-session';
import type { RemoteConfig } from '../remote/remote-repository';
import { installInterruptCleanup, isInterrupted } from '../interrupt-cleanup';
import { recordStats, requestSummary } from './stats';
import { exitCodeFor, reportFatal } from './run-command';
import { GIT_REMOTE_KMSCRYPT_PAGE } from './help/git-remote-kmscrypt-manual';
import { helperUsage } from './help/render-text';
import { packageVersion } from './version';

export function main(argv: string[]): void {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(helperUsage(GIT_REMOTE_KMSCRYPT_PAGE));
    return;
  }
  if (argv[0] === '--version' || argv[0] === '-V') {
    process.stdout.write(`git-remote-kmscrypt version ${packageVersion()}\n`);
    return;
  }
  if (argv.length < 1 || argv.length > 2) {
    process.stderr.write(helperUsage(GIT_REMOTE_KMSCRYPT_PAGE));
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
  const { absoluteFormOfRelative } = await import('./url');
  let config: RemoteConfig | undefined;
  try {
    forbidLazyFetch();
    config = await openRemote(url, remoteName);
    const session = new HelperSession(config, { remoteName, url, absolutePath: absoluteFormOfRelative(url) });
    await runHelperProtocol(process.stdin, process.stdout, session);
    recordStats('helper', config, startedAt, 'ok');
    if (session.options.verbosity >= 2) process.stderr.write(requestSummary(config, startedAt));
  } catch (err) {
    recordStats('helper', config, startedAt, 'error', err);
    throw err;
  }
}
