import { isIPv4 } from 'node:net';
import { KmscryptError } from './errors';

/** localhost, 127.0.0.0/8 and [::1]: plain HTTP to these never leaves the machine. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/^\[(.*)\]$/, '$1');
  if (host === 'localhost' || host === '::1') return true;
  return isIPv4(host) && host.startsWith('127.');
}

/**
 * Refuses a plain-HTTP endpoint unless it is loopback: object names, sizes, timing and
 * signed request headers would cross the network in clear. With `allowHttp` the endpoint
 * is accepted and one warning line is written. Returns the parsed URL.
 */
export function checkEndpointSecurity(
  endpoint: string,
  allowHttp = false,
  warn: (line: string) => void = (line) => process.stderr.write(line + '\n'),
): URL {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw new KmscryptError('BAD_CONFIG', `S3 endpoint ${JSON.stringify(endpoint)} is not a URL; set kmscrypt.endpoint (or AWS_ENDPOINT_URL_S3) to e.g. https://s3.example.com`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol !== 'http:') {
    throw new KmscryptError('BAD_CONFIG', `S3 endpoint ${endpoint} must start with https://; fix kmscrypt.endpoint (or AWS_ENDPOINT_URL_S3)`);
  }
  if (isLoopbackHost(url.hostname)) return url;
  if (!allowHttp) {
    throw new KmscryptError('BAD_CONFIG', `refusing plain-HTTP S3 endpoint ${endpoint}: requests would cross the network unencrypted; use https://, or set kmscrypt.allowHttp=true to accept that`);
  }
  warn(`warning: kmscrypt: using plain-HTTP S3 endpoint ${endpoint} because kmscrypt.allowHttp is set; request metadata is not protected in transit`);
  return url;
}
