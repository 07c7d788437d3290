import { KmscryptError } from '../errors';
import { tlsFailure } from '../tls-failure';

/** The parts of an SDK or socket error that we look at. */
interface ErrorLike {
  name?: string;
  Code?: string;
  code?: string;
  message?: string;
  Region?: string;
  errors?: unknown[];
  $metadata?: { httpStatusCode?: number; attempts?: number };
  $response?: { headers?: Record<string, string | undefined> };
}

/** What a message needs to name the cause and the fix. */
export interface S3ErrorContext {
  action: string;
  /** e.g. s3://bucket/prefix/key */
  target: string;
  bucket: string;
  region?: string;
  /** "http://127.0.0.1:7480 (from AWS_ENDPOINT_URL_S3)" or "AWS S3". */
  endpointLabel: string;
  /** Where credentials come from, e.g. `AWS profile "dev" (AWS_PROFILE)`. */
  credentialSource: string;
}

const TRANSPORT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ECONNABORTED',
  'ERR_STREAM_PREMATURE_CLOSE',
]);
const TIMEOUT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);

function like(err: unknown): ErrorLike {
  return typeof err === 'object' && err !== null ? (err as ErrorLike) : {};
}

export function errorName(err: unknown): string {
  const e = like(err);
  return e.Code ?? e.name ?? 'Error';
}

export function httpStatus(err: unknown): number | undefined {
  return like(err).$metadata?.httpStatusCode;
}

/** How many HTTP attempts the SDK made; more than one means an earlier attempt's outcome is unknown. */
export function attemptsOf(err: unknown): number {
  return like(err).$metadata?.attempts ?? 1;
}

/** A socket-level code (ECONNREFUSED, ...), also from inside Node's AggregateError of address attempts. */
export function transportCode(err: unknown): string | undefined {
  const e = like(err);
  if (e.code && TRANSPORT_CODES.has(e.code)) return e.code;
  for (const inner of e.errors ?? []) {
    const code = like(inner).code;
    if (code && TRANSPORT_CODES.has(code)) return code;
  }
  if (TIMEOUT_NAMES.has(e.name ?? '')) return 'timeout';
  return undefined;
}

/** The object (not the bucket) does not exist. HEAD answers carry no body, hence the bare 404. */
export function isNoSuchKey(err: unknown): boolean {
  const name = errorName(err);
  if (name === 'NoSuchKey' || name === 'NotFound') return true;
  return httpStatus(err) === 404 && name !== 'NoSuchBucket' && name !== 'NoSuchUpload';
}

export function isPreconditionFailed(err: unknown): boolean {
  return errorName(err) === 'PreconditionFailed' || httpStatus(err) === 412;
}

/**
 * A conditional write that may or may not have happened: 409 ConditionalRequestConflict (AWS),
 * 5xx (RGW answers 500 to losers of a race), or a connection lost after the request was sent.
 */
export function isOutcomeUnknown(err: unknown): boolean {
  if (err instanceof KmscryptError) return false;
  const status = httpStatus(err);
  if (status !== undefined) return status === 409 || status >= 500;
  return transportCode(err) !== undefined;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/** One KmscryptError line for any S3 failure, naming the cause and the fix. */
export function s3Error(err: unknown, ctx: S3ErrorContext): KmscryptError {
  if (err instanceof KmscryptError) return err;
  const e = like(err);
  const name = errorName(err);
  const status = httpStatus(err);
  const transport = transportCode(err);
  const bad = (cause: string, fix: string) => new KmscryptError('BAD_CONFIG', cause, { s3Error: name, fix });
  switch (name) {
    case 'NoSuchBucket':
      return bad(`bucket ${ctx.bucket} does not exist at ${ctx.endpointLabel}`, 'create it or fix the URL');
    case 'InvalidBucketName':
      return bad(`${JSON.stringify(ctx.bucket)} is not a valid S3 bucket name`, 'fix the URL');
    case 'InvalidAccessKeyId':
      return bad(`the access key ID from ${ctx.credentialSource} is not known to ${ctx.endpointLabel}`, 'fix the credentials or the endpoint');
    case 'SignatureDoesNotMatch':
      return bad(`the secret access key from ${ctx.credentialSource} does not match its access key ID at ${ctx.endpointLabel}`, 'fix the secret key');
    case 'ExpiredToken':
    case 'TokenRefreshRequired':
    case 'InvalidToken':
      return bad(`the session credentials from ${ctx.credentialSource} have expired or are invalid`, 'refresh them (e.g. aws sso login) and retry');
    case 'CredentialsProviderError':
      return bad(
        `no AWS credentials found (looked in ${ctx.credentialSource})`,
        'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE / kmscrypt.profile',
      );
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
    case 'IllegalLocationConstraintException':
      return wrongRegion(e, ctx);
  }
  if (status === 301) return wrongRegion(e, ctx);
  if (name === 'AccessDenied' || status === 403) {
    return bad(
      `access denied to ${ctx.target} (${ctx.action}) with credentials from ${ctx.credentialSource}`,
      `grant them access to bucket ${ctx.bucket} or use other credentials`,
    );
  }
  const tls = status === undefined ? tlsFailure(err) : undefined;
  if (tls) {
    return bad(`cannot connect securely to S3 endpoint ${ctx.endpointLabel}: ${tls.cause}`, tls.fix);
  }
  if (/region is missing/i.test(e.message ?? '')) {
    return bad(`no AWS region set for bucket ${ctx.bucket}`, 'set kmscrypt.region, AWS_REGION or region in the AWS profile');
  }
  if (transport !== undefined && status === undefined) {
    return new KmscryptError('STORAGE', `cannot reach S3 endpoint ${ctx.endpointLabel} (${transport}) to ${ctx.action} ${ctx.target}`, {
      s3Error: name,
      fix: 'check kmscrypt.endpoint / AWS_ENDPOINT_URL_S3 and the network',
    });
  }
  if (name === 'SlowDown' || status === 503) {
    return new KmscryptError('STORAGE', `${ctx.endpointLabel} kept refusing requests (${name}, HTTP ${status ?? '?'}) to ${ctx.action} ${ctx.target}`, {
      s3Error: name,
      fix: 'the server is overloaded, try again later',
    });
  }
  const detail = oneLine(e.message ?? '');
  return new KmscryptError(
    'STORAGE',
    `cannot ${ctx.action} ${ctx.target}: ${name}${status ? ` (HTTP ${status})` : ''}${detail && detail !== name ? `: ${detail}` : ''}`,
    { s3Error: name },
  );
}

function wrongRegion(e: ErrorLike, ctx: S3ErrorContext): KmscryptError {
  const actual = e.$response?.headers?.['x-amz-bucket-region'] ?? e.Region;
  return new KmscryptError(
    'BAD_CONFIG',
    `bucket ${ctx.bucket} is in ${actual ? `region ${actual}` : 'another region'}${ctx.region ? `, not ${ctx.region}` : ''}`,
    { s3Error: e.Code ?? e.name, fix: `set kmscrypt.region (or AWS_REGION) to ${actual ?? 'the bucket region'}` },
  );
}
