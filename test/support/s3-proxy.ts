import { createHash, createHmac } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ProxiedRequest {
  method: string;
  /** Path and query as sent, e.g. /bucket/key?x-id=PutObject */
  url: string;
  headers: IncomingHttpHeaders;
  /** 0 for the first request through this proxy. */
  index: number;
}

export interface ProxyFault {
  /** Answer with this HTTP status and S3 error code instead of the server's answer. */
  fail?: { status: number; code: string; /** whether the request still reaches the server first */ forward: boolean };
  /** Close the connection after this many bytes of the answer's body. */
  cutBodyAfter?: number;
}

export interface S3ProxyOptions {
  target: string;
  /** Needed to re-sign requests whose headers were stripped. */
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Request headers to remove before forwarding, e.g. ['if-none-match', 'if-match']. */
  stripHeaders?: string[];
  fault?: (req: ProxiedRequest) => ProxyFault | undefined;
}

export interface S3Proxy {
  url: string;
  requests: ProxiedRequest[];
  close(): Promise<void>;
}

/**
 * A loopback HTTP proxy in front of the test RGW that can misbehave on purpose: strip
 * conditional headers (as servers that ignore them effectively do), fail requests with or
 * without performing them, or cut a response body short.
 */
export async function startS3Proxy(options: S3ProxyOptions): Promise<S3Proxy> {
  const target = new URL(options.target);
  const requests: ProxiedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const seen: ProxiedRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, index: requests.length };
      requests.push(seen);
      const fault = options.fault?.(seen);
      const failNow = () => {
        const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault!.fail!.code}</Code><Message>injected by the test proxy</Message></Error>`;
        res.writeHead(fault!.fail!.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      };
      if (fault?.fail && !fault.fail.forward) return failNow();
      const headers = forwardHeaders(seen, options);
      const upstream = httpRequest({ host: target.hostname, port: target.port, method: seen.method, path: seen.url, headers }, (up) => {
        if (fault?.fail) {
          up.resume();
          up.on('end', failNow);
          return;
        }
        res.writeHead(up.statusCode ?? 502, up.headers);
        const cut = fault?.cutBodyAfter;
        if (cut === undefined) {
          up.pipe(res);
          return;
        }
        forwardFirstBytes(up, res, cut, () => res.socket?.destroy());
        up.on('end', () => res.end());
      });
      upstream.on('error', () => res.destroy());
      upstream.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests,
    close: () =>
      new Promise<void>((done) => {
        server.closeAllConnections();
        server.close(() => done());
      }),
  };
}

function forwardHeaders(req: ProxiedRequest, options: S3ProxyOptions): OutgoingHttpHeaders {
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(',') : value;
  const strip = (options.stripHeaders ?? []).filter((name) => name in headers);
  if (strip.length === 0) return headers;
  for (const name of strip) delete headers[name];
  headers.authorization = resign(req.method, req.url, headers, strip, options.credentials);
  return headers;
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data).digest();

/** AWS Signature V4 again over the same request minus the stripped headers (same date and payload hash). */
function resign(method: string, url: string, headers: Record<string, string>, stripped: string[], creds: { accessKeyId: string; secretAccessKey: string }): string {
  const auth = /Credential=[^/]+\/([^,]+), SignedHeaders=([^,]+),/.exec(headers.authorization ?? '');
  if (!auth) throw new Error(`cannot re-sign a request without a SigV4 Authorization header: ${headers.authorization}`);
  const scope = auth[1];
  const [date, region, service] = scope.split('/');
  const signed = auth[2].split(';').filter((name) => !stripped.includes(name));
  const [path, query = ''] = url.split(/\?(.*)/s);
  const canonicalQuery = query
    .split('&')
    .filter(Boolean)
    .map((pair) => (pair.includes('=') ? pair.split(/=(.*)/s, 2) : [pair, '']))
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  const canonicalHeaders = signed.map((name) => `${name}:${(headers[name] ?? '').trim().replace(/\s+/g, ' ')}\n`).join('');
  const canonicalRequest = [method, path, canonicalQuery, canonicalHeaders, signed.join(';'), headers['x-amz-content-sha256']].join('\n');
  const stringToSign = ['AWS4-HMAC-SHA256', headers['x-amz-date'], scope, createHash('sha256').update(canonicalRequest).digest('hex')].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${creds.secretAccessKey}`, date), region), service), 'aws4_request');
  return `AWS4-HMAC-SHA256 Credential=${creds.accessKeyId}/${scope}, SignedHeaders=${signed.join(';')}, Signature=${hmac(key, stringToSign).toString('hex')}`;
}

/**
 * Forwards only the first `cut` bytes of an upstream response body, then calls `cutOff` (which
 * drops the client's connection). Returns how many bytes have been forwarded so far.
 */
export function forwardFirstBytes(up: IncomingMessage, res: ServerResponse, cut: number, cutOff: () => void): () => number {
  let sent = 0;
  up.on('data', (chunk: Buffer) => {
    if (sent >= cut) return;
    const part = chunk.subarray(0, cut - sent);
    sent += part.length;
    res.write(part, () => {
      if (sent >= cut) {
        cutOff();
        up.destroy();
      }
    });
  });
  return () => sent;
}
