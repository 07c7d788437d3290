import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KmscryptError } from '../errors';
import type { Keyring } from './keyring';
import { LocalKmsCredentials, localKmsCredentialsFor } from './local-kms-credentials';
import { isLocalKmsAction, KmsFault, KmsRequest, LOCAL_KMS_ACTIONS, LocalKmsAction, LocalKmsOperations } from './local-kms-operations';
import { verifySigV4 } from './sigv4-verifier';

export interface LocalKmsServerOptions {
  /** 0 picks a free port. */
  port: number;
  /** Only 127.0.0.1 is accepted: the keys it serves are for this machine's owner alone. */
  host?: string;
  keyring: Keyring;
  /** The one access key answered; default: local-kms-credentials.json beside the keyring, made on first start. */
  credentials?: LocalKmsCredentials;
  region?: string;
  account?: string;
  /** Actions answered with AccessDeniedException, as `kms:Decrypt` or `Decrypt`; `kms:*` denies all. */
  deny?: string[];
  /** A file re-read on every request whose comma- or space-separated actions are denied too (absent = none). */
  denyFile?: string;
  /** One line per request, when given. */
  log?: (line: string) => void;
}

export interface LocalKmsServer {
  url: string;
  port: number;
  region: string;
  /** The access key every request must be signed with (SigV4). */
  credentials: LocalKmsCredentials;
  close(): Promise<void>;
  /** Replaces the set of denied actions; `deny([])` allows everything again. */
  deny(actions: string[]): void;
  /** Requests received per action (including those that failed), e.g. `calls.Decrypt`. */
  calls: Record<string, number>;
}

const HOST = '127.0.0.1';
const TARGET_PREFIX = 'TrentService.';
const MAX_BODY = 1024 * 1024;
const PRINCIPAL = 'user/kmscrypt-local-kms';

/** Parses `kms:Decrypt,kms:ReEncrypt` style lists into actions; throws one line on an unknown action. */
export function parseDeniedActions(entries: string[]): Set<LocalKmsAction> {
  const denied = new Set<LocalKmsAction>();
  for (const entry of entries.flatMap((e) => e.split(/[\s,]+/)).filter((e) => e !== '')) {
    const name = entry.replace(/^kms:/i, '');
    if (name === '*') {
      for (const action of LOCAL_KMS_ACTIONS) denied.add(action);
    } else if (name === 'ReEncrypt*' || name === 'ReEncryptFrom' || name === 'ReEncryptTo') {
      denied.add('ReEncrypt');
    } else if (isLocalKmsAction(name)) {
      denied.add(name);
    } else {
      throw new KmscryptError('BAD_CONFIG', `cannot deny unknown KMS action '${entry}'`, {
        fix: `use some of ${LOCAL_KMS_ACTIONS.map((a) => `kms:${a}`).join(', ')} or kms:*`,
      });
    }
  }
  return denied;
}

/**
 * Serves the AWS KMS JSON 1.1 protocol on 127.0.0.1, backed by a keyring file, for development
 * and tests. Every request must carry a valid SigV4 signature made with the one access key kept
 * beside the keyring (mode 0600): other users of the machine can reach the port but not use it.
 */
export async function startLocalKmsServer(options: LocalKmsServerOptions): Promise<LocalKmsServer> {
  const host = options.host ?? HOST;
  if (host !== HOST) {
    throw new KmscryptError(
      'BAD_CONFIG',
      `local-kms listens on ${HOST} only, not ${host}: it serves keys for this machine's owner and must not be reachable from other machines`,
    );
  }
  const region = options.region ?? 'us-east-1';
  const credentials = options.credentials ?? localKmsCredentialsFor(options.keyring.path);
  const account = options.account ?? '111122223333';
  const operations = new LocalKmsOperations(options.keyring, region, account);
  const calls: Record<string, number> = {};
  let denied = parseDeniedActions(options.deny ?? []);
  let port = 0;

  const isDenied = (action: LocalKmsAction): boolean => {
    if (denied.has(action)) return true;
    if (options.denyFile === undefined) return false;
    let text: string;
    try {
      text = readFileSync(options.denyFile, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
    return parseDeniedActions([text]).has(action);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const hostHeader = req.headers.host ?? '';
    // A page in a browser could reach 127.0.0.1 through DNS rebinding; its Host header gives it away.
    if (hostHeader !== `${HOST}:${port}` && hostHeader !== `localhost:${port}`) {
      await drain(req);
      return reply(res, 403, { __type: 'AccessDeniedException', message: `local-kms answers only requests addressed to ${HOST}:${port}` });
    }
    const target = req.headers['x-amz-target'];
    const name = typeof target === 'string' && target.startsWith(TARGET_PREFIX) ? target.slice(TARGET_PREFIX.length) : undefined;
    if (req.method !== 'POST' || (req.url ?? '/') !== '/' || name === undefined || !isLocalKmsAction(name)) {
      await drain(req);
      return reply(res, 400, { __type: 'UnknownOperationException', message: `local-kms does not support ${req.method} ${req.url} ${String(target)}` });
    }
    const action = name;
    calls[action] = (calls[action] ?? 0) + 1;
    const body = await readBody(req);
    if (body === undefined) return reply(res, 413, { __type: 'ValidationException', message: `request body larger than ${MAX_BODY} bytes` });
    const verified = verifySigV4(
      { method: 'POST', path: '/', query: '', rawHeaders: req.rawHeaders, body },
      { region, service: 'kms', now: new Date(), secretFor: (id) => (id === credentials.accessKeyId ? credentials.secretAccessKey : undefined) },
    );
    if (!verified.ok) {
      options.log?.(`${action} refused: ${verified.type}: ${verified.message}`);
      return reply(res, 400, { __type: verified.type, message: verified.message });
    }
    let request: KmsRequest;
    try {
      const parsed: unknown = JSON.parse(body.length === 0 ? '{}' : body.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
      request = parsed as KmsRequest;
    } catch {
      return reply(res, 400, { __type: 'SerializationException', message: 'Start of structure or map found where not expected.' });
    }
    try {
      if (isDenied(action)) {
        const iamAction = action === 'ReEncrypt' ? 'kms:ReEncryptFrom' : `kms:${action}`;
        const message =
          `User: arn:aws:iam::${account}:${PRINCIPAL} is not authorized to perform: ${iamAction} on resource: ` +
          `${operations.resource(action, request)} because no identity-based policy allows the ${iamAction} action`;
        options.log?.(`${action} denied`);
        return reply(res, 400, { __type: 'AccessDeniedException', message });
      }
      const response = operations.run(action, request);
      options.log?.(`${action} ok${encryptionContexts(request)}`);
      reply(res, 200, response);
    } catch (err) {
      if (err instanceof KmsFault) {
        options.log?.(`${action} ${err.type}: ${err.message}`);
        return reply(res, err.status, { __type: err.type, message: err.message });
      }
      const message = err instanceof Error ? err.message : String(err);
      options.log?.(`${action} KMSInternalException: ${message}`);
      reply(res, 500, { __type: 'KMSInternalException', message });
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) reply(res, 500, { __type: 'KMSInternalException', message: String(err) });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new KmscryptError('BAD_CONFIG', `port ${options.port} on ${HOST} is already in use`, {
              fix: 'choose another with --port, or --port 0 for a free one',
            })
          : new KmscryptError('BAD_CONFIG', `local-kms cannot listen on ${HOST}:${options.port}: ${err.code ?? err.message}`),
      );
    };
    server.once('error', onError);
    server.listen(options.port, HOST, () => {
      server.off('error', onError);
      resolve();
    });
  });
  port = (server.address() as AddressInfo).port;

  return {
    url: `http://${HOST}:${port}`,
    port,
    region,
    credentials,
    calls,
    deny(actions: string[]): void {
      denied = parseDeniedActions(actions);
    },
    close(): Promise<void> {
      return new Promise((resolve, reject) => {
        server.close((err) => (err ? reject(err) : resolve()));
        // SDK clients keep connections alive; without this close() would wait for them to time out.
        server.closeAllConnections();
      });
    },
  };
}

function reply(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/x-amz-json-1.1',
    'Content-Length': Buffer.byteLength(payload),
    'x-amzn-RequestId': randomUUID(),
  });
  res.end(payload);
}

/** The request body, or undefined when it exceeds MAX_BODY. */
async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size <= MAX_BODY) chunks.push(chunk as Buffer);
  }
  return size > MAX_BODY ? undefined : Buffer.concat(chunks);
}

async function drain(req: IncomingMessage): Promise<void> {
  for await (const chunk of req) void chunk;
}

/** A request's encryption contexts, as CloudTrail records them among its requestParameters. */
function encryptionContexts(request: KmsRequest): string {
  return ['EncryptionContext', 'SourceEncryptionContext', 'DestinationEncryptionContext']
    .filter((field) => request[field] !== undefined)
    .map((field) => ` ${field}=${JSON.stringify(request[field])}`)
    .join('');
}
