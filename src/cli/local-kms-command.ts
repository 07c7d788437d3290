import { KmscryptError } from '../errors';
import { defaultKeyringPath, Keyring } from '../keys/keyring';
import { localKmsCredentialsPath } from '../keys/local-kms-credentials';
import { startLocalKmsServer } from '../keys/local-kms-server';

interface LocalKmsArgs {
  port: number;
  keyring: string;
  region: string;
  deny: string[];
  denyFile?: string;
  verbose: boolean;
}

function parseArgs(args: string[]): LocalKmsArgs {
  const parsed: LocalKmsArgs = { port: 0, keyring: defaultKeyringPath(), region: 'us-east-1', deny: [], verbose: false };
  const envDeny = process.env.KMSCRYPT_LOCAL_KMS_DENY;
  if (envDeny) parsed.deny.push(envDeny);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const eq = arg.indexOf('=');
    const flag = arg.startsWith('--') && eq > 0 ? arg.slice(0, eq) : arg;
    const value = (): string => {
      if (eq > 0 && arg.startsWith('--')) return arg.slice(eq + 1);
      const next = args[++i];
      if (next === undefined) throw new KmscryptError('USAGE', `local-kms: ${flag} needs a value`, { fix: `run 'git kmscrypt local-kms --help'` });
      return next;
    };
    switch (flag) {
      case '--port': {
        const text = value();
        const port = Number(text);
        if (!/^\d+$/.test(text) || port > 65535) throw new KmscryptError('USAGE', `local-kms: --port ${text} is not a port number (0-65535)`);
        parsed.port = port;
        break;
      }
      case '--keyring':
        parsed.keyring = value();
        break;
      case '--region':
        parsed.region = value();
        break;
      case '--deny':
        parsed.deny.push(value());
        break;
      case '--deny-file':
        parsed.denyFile = value();
        break;
      case '--verbose':
        parsed.verbose = true;
        break;
      default:
        throw new KmscryptError('USAGE', `local-kms: unknown option '${arg}'`, { fix: `run 'git kmscrypt local-kms --help'` });
    }
  }
  return parsed;
}

/** `git kmscrypt local-kms`: a KMS endpoint on 127.0.0.1 until SIGTERM or SIGINT. */
export async function runLocalKms(args: string[]): Promise<number> {
  const options = parseArgs(args);
  const log = (line: string) => process.stderr.write(`local-kms: ${line}\n`);
  const server = await startLocalKmsServer({
    port: options.port,
    keyring: new Keyring(options.keyring),
    region: options.region,
    deny: options.deny,
    denyFile: options.denyFile,
    log: options.verbose ? log : undefined,
  });
  const credentialsFile = localKmsCredentialsPath(options.keyring);
  process.stdout.write(`KMS_ENDPOINT=${server.url}\nKMS_CREDENTIALS_FILE=${credentialsFile}\n`);
  log(`serving AWS KMS (region ${options.region}) on ${server.url} with keyring ${options.keyring}`);
  log(`it answers only requests signed with the access key in ${credentialsFile} (mode 0600: yours alone)`);
  const keyringSetting = options.keyring === defaultKeyringPath() ? '' : ` KMSCRYPT_KEYRING=${options.keyring}`;
  log(`to use it: export AWS_ENDPOINT_URL_KMS=${server.url} KMSCRYPT_KMS=aws AWS_REGION=${options.region}${keyringSetting}`);
  log('  (git-remote-kmscrypt then signs with that access key itself, unless kmscrypt.kmsProfile names other credentials)');
  log(`other AWS clients: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from that file, e.g. for the AWS CLI:`);
  const field = (name: string) => `$(node -p 'require(${JSON.stringify(credentialsFile).replace(/'/g, "'\\''")}).${name}')`;
  log(
    `  AWS_ACCESS_KEY_ID=${field('accessKeyId')} AWS_SECRET_ACCESS_KEY=${field('secretAccessKey')} aws kms list-keys --endpoint-url ${server.url} --region ${options.region}`,
  );
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', stop);
      process.off('SIGINT', stop);
      log(`${signal}: stopping`);
      resolve();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
  await server.close();
  return 0;
}
