import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * Checks an AWS Signature Version 4 `Authorization` header as AWS does for a JSON API such as KMS
 * (docs: "Create a signed AWS API request"): the canonical request over the method, path, query,
 * the signed headers and the SHA-256 of the body actually received; the credential scope
 * `<date>/<region>/<service>/aws4_request`; X-Amz-Date within 15 minutes of now; and the HMAC
 * compared in constant time.
 */

export interface SignedRequest {
  method: string;
  /** The path as sent, without the query. */
  path: string;
  /** The query string as sent, without '?' ('' for none). */
  query: string;
  /** Node's `rawHeaders`: name, value, name, value… as received. */
  rawHeaders: string[];
  body: Buffer;
}

export interface SigV4Expectations {
  region: string;
  service: string;
  now: Date;
  /** The secret of an access key ID, or undefined when the key is unknown. */
  secretFor(accessKeyId: string): string | undefined;
}

export type SigV4Refusal =
  | 'MissingAuthenticationTokenException'
  | 'IncompleteSignatureException'
  | 'UnrecognizedClientException'
  | 'InvalidSignatureException';

export type SigV4Result = { ok: true; accessKeyId: string } | { ok: false; type: SigV4Refusal; message: string };

const ALGORITHM = 'AWS4-HMAC-SHA256';
const MAX_SKEW_MS = 15 * 60_000;
const AMZ_DATE = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/;
const MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';

export function verifySigV4(request: SignedRequest, expect: SigV4Expectations): SigV4Result {
  const refuse = (type: SigV4Refusal, message: string): SigV4Result => ({ ok: false, type, message });
  const headers = headerValues(request.rawHeaders);
  const authorization = headers.get('authorization');
  if (authorization === undefined) return refuse('MissingAuthenticationTokenException', 'Missing Authentication Token');
  if (authorization.length !== 1) return refuse('IncompleteSignatureException', 'Only one Authorization header is allowed.');

  const auth = parseAuthorization(authorization[0]);
  if (typeof auth === 'string') return refuse('IncompleteSignatureException', auth);
  const [accessKeyId, scopeDate, scopeRegion, scopeService, terminator] = auth.credential.split('/');
  if (terminator !== 'aws4_request' || auth.credential.split('/').length !== 5 || !accessKeyId) {
    return refuse('IncompleteSignatureException', `Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/aws4_request, got '${auth.credential}'.`);
  }
  if (headers.has('x-amz-security-token')) {
    return refuse('UnrecognizedClientException', 'The security token included in the request is invalid.');
  }
  const secret = expect.secretFor(accessKeyId);
  if (secret === undefined) return refuse('UnrecognizedClientException', 'The security token included in the request is invalid.');

  const amzDate = headers.get('x-amz-date');
  if (amzDate?.length !== 1) {
    return refuse('IncompleteSignatureException', "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.");
  }
  const m = AMZ_DATE.exec(amzDate[0]);
  const signedAt = m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
  if (!m || Number.isNaN(signedAt)) return refuse('IncompleteSignatureException', `X-Amz-Date ${amzDate[0]} is not of the form YYYYMMDD'T'HHMMSS'Z'.`);
  const now = expect.now.getTime();
  if (signedAt < now - MAX_SKEW_MS) {
    return refuse('InvalidSignatureException', `Signature expired: ${amzDate[0]} is now earlier than ${basicDate(now - MAX_SKEW_MS)} (${basicDate(now)} - 15 min.)`);
  }
  if (signedAt > now + MAX_SKEW_MS) {
    return refuse('InvalidSignatureException', `Signature not yet current: ${amzDate[0]} is still later than ${basicDate(now + MAX_SKEW_MS)} (${basicDate(now)} + 15 min.)`);
  }
  if (scopeDate !== amzDate[0].slice(0, 8)) {
    return refuse('InvalidSignatureException', `Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '${scopeDate}' != '${amzDate[0].slice(0, 8)}', from '${amzDate[0]}'.`);
  }
  if (scopeRegion !== expect.region) return refuse('InvalidSignatureException', `Credential should be scoped to a valid region, not '${scopeRegion}'. This endpoint serves '${expect.region}'.`);
  if (scopeService !== expect.service) return refuse('InvalidSignatureException', `Credential should be scoped to correct service: '${expect.service}'.`);

  const signed = auth.signedHeaders.split(';');
  const sorted = [...signed].sort();
  if (signed.some((h, i) => h === '' || h !== h.toLowerCase() || h !== sorted[i] || h === sorted[i - 1])) {
    return refuse('InvalidSignatureException', `SignedHeaders '${auth.signedHeaders}' must be lower-case header names, sorted, separated by ';'.`);
  }
  for (const required of ['host', 'x-amz-date']) {
    if (!signed.includes(required)) return refuse('InvalidSignatureException', `'${required === 'host' ? 'Host' : 'X-Amz-Date'}' must be a 'SignedHeader' in the AWS Authorization.`);
  }
  const canonicalRequest = [
    request.method,
    canonicalUri(request.path),
    canonicalQuery(request.query),
    signed.map((name) => `${name}:${(headers.get(name) ?? []).map(trimValue).join(',')}\n`).join(''),
    auth.signedHeaders,
    sha256Hex(request.body),
  ].join('\n');
  const scope = `${scopeDate}/${scopeRegion}/${scopeService}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate[0], scope, sha256Hex(Buffer.from(canonicalRequest, 'utf8'))].join('\n');
  let key = hmac(`AWS4${secret}`, scopeDate);
  for (const part of [scopeRegion, scopeService, 'aws4_request']) key = hmac(key, part);
  const expected = hmac(key, stringToSign);
  const wellFormed = /^[0-9a-f]{64}$/.test(auth.signature);
  // Compared whole, in constant time (a malformed signature against zeros, so that it takes as long).
  const equal = timingSafeEqual(expected, wellFormed ? Buffer.from(auth.signature, 'hex') : Buffer.alloc(32));
  return wellFormed && equal ? { ok: true, accessKeyId } : refuse('InvalidSignatureException', MISMATCH);
}

/** The three parts of `AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`, or why not. */
function parseAuthorization(header: string): { credential: string; signedHeaders: string; signature: string } | string {
  const space = header.indexOf(' ');
  const algorithm = space < 0 ? header : header.slice(0, space);
  if (algorithm !== ALGORITHM) return `Unsupported AWS 'algorithm': '${algorithm}'; only ${ALGORITHM} is accepted.`;
  const parts = new Map<string, string>();
  for (const item of header.slice(space + 1).split(',')) {
    const eq = item.indexOf('=');
    if (eq > 0) parts.set(item.slice(0, eq).trim(), item.slice(eq + 1).trim());
  }
  const missing = ['Credential', 'SignedHeaders', 'Signature'].filter((p) => !parts.get(p));
  if (missing.length) return missing.map((p) => `Authorization header requires '${p}' parameter.`).join(' ') + ` Authorization=${header}`;
  return { credential: parts.get('Credential')!, signedHeaders: parts.get('SignedHeaders')!, signature: parts.get('Signature')! };
}

/** Lower-cased header name to its values in the order received. */
function headerValues(raw: string[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const list = map.get(name);
    if (list) list.push(raw[i + 1]);
    else map.set(name, [raw[i + 1]]);
  }
  return map;
}

function trimValue(value: string): string {
  return value.trim().replace(/\s+/g, ' ');
}

/** Each path segment URI-encoded, and encoded again, as SigV4 does for every service but S3. */
function canonicalUri(path: string): string {
  if (path === '' || path === '/') return '/';
  return path
    .split('/')
    .map((segment) => uriEncode(uriEncode(safeDecode(segment))))
    .join('/');
}

function canonicalQuery(query: string): string {
  if (query === '') return '';
  return query
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const name = eq < 0 ? pair : pair.slice(0, eq);
      const value = eq < 0 ? '' : pair.slice(eq + 1);
      return [uriEncode(safeDecode(name)), uriEncode(safeDecode(value))] as const;
    })
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([name, value]) => `${name}=${value}`)
    .join('&');
}

/** RFC 3986 encoding: everything but A-Z a-z 0-9 - _ . ~ as %XX. */
function uriEncode(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, '%20'));
  } catch {
    return s;
  }
}

function sha256Hex(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function basicDate(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}
