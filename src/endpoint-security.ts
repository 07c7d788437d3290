import { isIPv4 } from 'node:net';
import { KmscryptError } from './errors';

/**
 * The HTTPS rule for the endpoints kmscrypt talks to: S3 (object names, sizes, timing and signed
 * request headers) and KMS (whose answers carry plaintext data keys). Plain HTTP is refused except
 * to loopback, unless kmscrypt.allowHttp is set, which then covers both.
 */

export type EndpointService = 'S3' | 'KMS';

/** Which endpoint, and the setting or variable it came from, for messages. */
export interface EndpointOrigin {
  service: EndpointService;
  source: string;
}

const EXPOSED: Record<EndpointService, string> = {
  S3: 'requests would cross the network unencrypted',
  KMS: 'its answers carry plaintext data keys, which would cross the network unencrypted',
};

const ALLOW = 'set kmscrypt.allowHttp=true to accept that (it allows plain HTTP to both the S3 and the KMS endpoint)';

/** localhost, 127.0.0.0/8 and [::1]: plain HTTP to these never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

/** True for a URL whose host is loopback; false for any other, or for what is no URL. */
export function isLoopbackUrl(endpoint: string): boolean {
  try {
    return isLoopbackHost(new URL(endpoint).hostname);
  } catch {
    return false;
  }
}

/**
 * Refuses a plain-HTTP endpoint unless it is loopback. With `allowHttp` the endpoint is accepted
 * and one warning line is written. Returns the parsed URL.
 */
export function checkEndpointSecurity(
  endpoint: string,
  allowHttp = false,
  warn: (line: string) => void = (line) => process.stderr.write(line + '\n'),
  origin: EndpointOrigin = { service: 'S3', source: 'kmscrypt.endpoint' },
): URL {
  const { service, source } = origin;
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new KmscryptError('BAD_CONFIG', `${service} endpoint ${JSON.stringify(endpoint)} (from ${source}) is not a URL`, {
      setting: source,
      fix: `set ${source} to e.g. https://${service.toLowerCase()}.example.com`,
    });
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol !== 'http:') {
    throw new KmscryptError('BAD_CONFIG', `${service} endpoint ${endpoint} (from ${source}) must start with https://`, {
      setting: source,
      fix: `fix ${source}`,
    });
  }
  if (isLoopbackHost(url.hostname)) return url;
  if (!allowHttp) {
    throw new KmscryptError('BAD_CONFIG', `refusing plain-HTTP ${service} endpoint ${endpoint} (from ${source}): ${EXPOSED[service]}`, {
      setting: source,
      fix: `use https://, or ${ALLOW}`,
    });
  }
  warn(
    `warning: kmscrypt: using plain-HTTP ${service} endpoint ${endpoint} because kmscrypt.allowHttp is set; ${service === 'KMS' ? 'data keys are' : 'request metadata is'} not protected in transit`,
  );
  return url;
}

/**
 * The last line of defence, for each request a client sends: an endpoint the SDK found by itself
 * (endpoint_url in the AWS config file) was not checked beforehand.
 */
export function refusePlainHttpRequest(service: EndpointService, request: { protocol?: string; hostname?: string }, allowHttp: boolean): void {
  if (request.protocol === 'http:' && !allowHttp && !isLoopbackHost(request.hostname ?? '')) {
    throw new KmscryptError(
      'BAD_CONFIG',
      `refusing plain-HTTP ${service} request to ${request.hostname}, an endpoint the AWS SDK found by itself (endpoint_url in the AWS config file): ${EXPOSED[service]}`,
      { setting: 'endpoint_url', fix: `use an https:// endpoint there, or ${ALLOW}` },
    );
  }
}
