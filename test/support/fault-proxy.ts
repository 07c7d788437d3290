import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { forwardFirstBytes, type ProxiedRequest } from './s3-proxy';

/**
 * Kinds of faults the proxy injects, each the way a real network or S3 server misbehaves:
 *   http500        500 InternalError, the request never reaches the server
 *   slowdown503    503 SlowDown, the request never reaches the server
 *   reset          the connection is reset before the request is forwarded (not performed)
 *   resetAfter     the request is performed by the server, then the connection is reset
 *                  before any answer (outcome unknown to the client)
 *   http500After   the request is performed by the server, then 500 is answered (outcome unknown)
 *   truncate       the server's answer is forwarded with its full Content-Length but the
 *                  connection is cut half-way through the body (for bodies of 2+ bytes;
 *                  otherwise it degrades to resetAfter)
 *   stall          nothing is sent for `stallMs`, then the request is forwarded normally
 */
export type FaultKind = 'http500' | 'slowdown503' | 'reset' | 'resetAfter' | 'http500After' | 'truncate' | 'stall';

export const ALL_FAULT_KINDS: FaultKind[] = ['http500', 'slowdown503', 'reset', 'resetAfter', 'http500After', 'truncate', 'stall'];

export interface FaultDecision {
  kind: FaultKind;
  /** For `stall`: how long nothing is sent. */
  stallMs?: number;
}

export interface FaultProxyOptions {
  /** The real S3 endpoint, e.g. the test RGW. */
  target: string;
  /** Seed of the PRNG that picks the faulted requests: a run is reproducible. */
  seed: number;
  /** Probability that a request is faulted while injection is enabled (0..1). */
  rate: number;
  /** Kinds dealt in turn to the faulted requests. Default: all. */
  kinds?: FaultKind[];
  /** Stall length for random `stall` faults (bounded so that the suite stays fast). */
  stallMs?: number;
  /**
   * Chosen before the random draw for every request: a decision injects that fault, null
   * forwards the request untouched, undefined falls through to the random draw.
   */
  targeted?: (req: ProxiedRequest) => FaultDecision | null | undefined;
}

export interface InjectedFault {
  kind: FaultKind;
  method: string;
  url: string;
  index: number;
  /** For stalls: whether the client gave up (closed the connection) before the stall ended, and when. */
  clientGaveUpAfterMs?: number;
}

export interface FaultProxy {
  url: string;
  requests: ProxiedRequest[];
  injected: InjectedFault[];
  /** Random injection on or off (targeted faults always apply). */
  enabled: boolean;
  rate: number;
  targeted: FaultProxyOptions['targeted'];
  countsByKind(): Record<FaultKind, number>;
  close(): Promise<void>;
}

/** mulberry32: a small seeded PRNG, enough to make fault choices reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const errorBody = (code: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>injected by the test fault proxy</Message><RequestId>fault</RequestId></Error>`;

/**
 * A loopback HTTP proxy between the helper and the test RGW that injects faults into a random
 * share of the requests, chosen with a seeded PRNG (the kinds in turn), plus any targeted ones. Requests are read
 * completely before they are forwarded (S3 requests are signed over their payload hash, so
 * nothing is altered on the way), answers are streamed back.
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const random = seededRandom(options.seed);
  const kinds = options.kinds ?? ALL_FAULT_KINDS;
  const requests: ProxiedRequest[] = [];
  const injected: InjectedFault[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const proxy: FaultProxy = {
    url: '',
    requests,
    injected,
    enabled: true,
    rate: options.rate,
    targeted: options.targeted,
    countsByKind: () => {
      const counts = Object.fromEntries(ALL_FAULT_KINDS.map((k) => [k, 0])) as Record<FaultKind, number>;
      for (const f of injected) counts[f.kind]++;
      return counts;
    },
    close: () =>
      new Promise<void>((done) => {
        for (const t of timers) clearTimeout(t);
        for (const s of sockets) s.destroy();
        server.close(() => done());
      }),
  };

  /** Kinds are dealt in turn to the requests the draw faults, so that n faults cover all n kinds. */
  let turn = 0;
  const decide = (seen: ProxiedRequest): FaultDecision | undefined => {
    const aimed = proxy.targeted?.(seen);
    if (aimed === null) return undefined;
    if (aimed) return aimed;
    const roll = random();
    if (!proxy.enabled || roll >= proxy.rate) return undefined;
    let kind = kinds[turn % kinds.length];
    // A truncation needs an answer with a body: while it is due, other requests take the next kind.
    if (kind === 'truncate' && seen.method !== 'GET' && kinds.length > 1) kind = kinds[(turn + 1) % kinds.length];
    else turn++;
    return kind === 'stall' ? { kind, stallMs: options.stallMs ?? 1500 } : { kind };
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    res.on('error', () => undefined);
    req.on('end', () => {
      const seen: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, index: requests.length };
      requests.push(seen);
      const fault = decide(seen);
      const record: InjectedFault | undefined = fault ? { kind: fault.kind, method: seen.method, url: seen.url, index: seen.index } : undefined;
      if (record) injected.push(record);
      const body = Buffer.concat(chunks);

      const answer = (status: number, code: string) => {
        const text = errorBody(code);
        res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      const reset = () => {
        req.socket.resetAndDestroy?.();
        if (!req.socket.destroyed) req.socket.destroy();
      };

      const forward = () => {
        if (req.socket.destroyed) return;
        const upstream = httpRequest({ host: target.hostname, port: target.port, method: seen.method, path: seen.url, headers: flatHeaders(seen.headers) }, (up) => {
          if (fault?.kind === 'http500After' || fault?.kind === 'resetAfter') {
            up.resume();
            up.on('end', () => (fault.kind === 'http500After' ? answer(500, 'InternalError') : reset()));
            return;
          }
          const length = Number(up.headers['content-length'] ?? NaN);
          if (fault?.kind === 'truncate') {
            if (!(length >= 2) || seen.method === 'HEAD') {
              record!.kind = 'resetAfter';
              up.resume();
              up.on('end', reset);
              return;
            }
            res.writeHead(up.statusCode ?? 502, up.headers);
            const cut = Math.floor(length / 2);
            const sent = forwardFirstBytes(up, res, cut, reset);
            up.on('end', () => {
              if (sent() < cut) reset();
            });
            return;
          }
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
        });
        upstream.on('error', () => reset());
        // The client gave up (or the answer is complete): nothing more to relay.
        res.once('close', () => upstream.destroy());
        upstream.end(body);
      };

      switch (fault?.kind) {
        case 'http500':
          return answer(500, 'InternalError');
        case 'slowdown503':
          return answer(503, 'SlowDown');
        case 'reset':
          return reset();
        case 'stall': {
          const started = Date.now();
          const onClose = () => {
            record!.clientGaveUpAfterMs ??= Date.now() - started;
          };
          req.socket.once('close', onClose);
          const timer = setTimeout(() => {
            timers.delete(timer);
            req.socket.off('close', onClose);
            forward();
          }, fault.stallMs ?? 1500);
          timers.add(timer);
          return;
        }
        default:
          return forward();
      }
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  proxy.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return proxy;
}

function flatHeaders(headers: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined) out[name] = Array.isArray(value) ? value.join(',') : value;
  return out;
}

/** S3 request kinds, for tallies and targeted faults. */
export function s3RequestKind(req: Pick<ProxiedRequest, 'method' | 'url'>): string {
  const [path, query = ''] = req.url.split('?');
  if (req.method === 'GET' && /(^|&)list-type=2/.test(query)) return 'list';
  if (req.method === 'POST' && /(^|&)uploads(=|&|$)/.test(query)) return 'createMultipart';
  if (req.method === 'POST' && /uploadId=/.test(query)) return 'completeMultipart';
  if (req.method === 'PUT' && /partNumber=/.test(query)) return 'uploadPart';
  if (req.method === 'DELETE' && /uploadId=/.test(query)) return 'abortMultipart';
  const key = decodeURIComponent(path.split('/').slice(2).join('/'));
  const what = /\/manifests\//.test('/' + key) ? 'manifest' : /\/containers\//.test('/' + key) ? 'container' : /kmscrypt\.json$/.test(key) ? 'descriptor' : /\.kmscrypt-probe-/.test(key) ? 'probe' : 'other';
  return `${req.method} ${what}`;
}
