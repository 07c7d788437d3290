import { EndpointService, isLoopbackHost } from '../../endpoint-security';
import type { Check } from './check';

/** The HTTPS rule (src/endpoint-security.ts) for the S3 or the KMS endpoint, as one row. */
export function endpointCheck(name: string, service: EndpointService, resolved: { url?: string; source: string }, allowHttp: boolean): Check {
  if (!resolved.url) return { name, status: 'PASS', detail: `AWS ${service} over HTTPS (an endpoint_url in the AWS config file is checked on every request)` };
  let url: URL;
  try {
    url = new URL(resolved.url);
  } catch {
    return {
      name,
      status: 'FAIL',
      detail: `${service} endpoint ${resolved.url} (from ${resolved.source}) is not a URL`,
      fix: `set ${resolved.source} to e.g. https://${service.toLowerCase()}.example.com`,
    };
  }
  const from = `${resolved.url} (from ${resolved.source})`;
  if (url.protocol === 'https:') return { name, status: 'PASS', detail: `${from} over HTTPS` };
  if (url.protocol !== 'http:') return { name, status: 'FAIL', detail: `${from} is neither https:// nor http://`, fix: 'use an https:// endpoint' };
  if (isLoopbackHost(url.hostname)) return { name, status: 'PASS', detail: `${from}: plain HTTP, but to this machine (loopback) only` };
  const exposed = service === 'KMS' ? 'plaintext data keys are' : 'request metadata is';
  if (allowHttp)
    return {
      name,
      status: 'WARN',
      detail: `${from}: plain HTTP across the network, accepted because kmscrypt.allowHttp is set; ${exposed} not protected in transit`,
    };
  return {
    name,
    status: 'FAIL',
    detail: `${from}: plain HTTP across the network is refused`,
    fix: 'use an https:// endpoint, or set kmscrypt.allowHttp=true (S3 and KMS) to accept unencrypted transport',
  };
}
