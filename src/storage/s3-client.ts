import type { S3Client, S3ClientConfig } from '@aws-sdk/client-s3';
import { elapsed, trace, tracing } from '../trace';
import { refusePlainHttpRequest } from '../endpoint-security';
import { countRequest, type S3RequestCounts } from './s3-request-counts';

export type S3Sdk = typeof import('@aws-sdk/client-s3');

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3ClientSettings {
  region?: string;
  /** Already resolved and checked with checkEndpointSecurity; undefined = AWS. */
  endpoint?: string;
  profile?: string;
  forcePathStyle: boolean;
  allowHttp: boolean;
  credentials?: S3Credentials;
  idleTimeoutMs?: number;
}

/** Silence on an S3 connection (ms) before the request is abandoned and retried by the SDK; kmscrypt.requestTimeout overrides it. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000;

let sdk: S3Sdk | undefined;

/** The SDK, loaded on first use: processes that never touch S3 do not pay its load time. */
export function s3Sdk(): S3Sdk {
  // Otherwise every S3 client prints a 7-line Node-version notice into git's output.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  sdk ??= require('@aws-sdk/client-s3') as S3Sdk;
  return sdk;
}

/** The endpoint a client will use and where it came from, following AWS conventions. */
export function resolveS3Endpoint(explicit?: string): { url?: string; source: string } {
  if (explicit) return { url: explicit, source: 'kmscrypt.endpoint' };
  if (process.env.AWS_ENDPOINT_URL_S3) return { url: process.env.AWS_ENDPOINT_URL_S3, source: 'AWS_ENDPOINT_URL_S3' };
  if (process.env.AWS_ENDPOINT_URL) return { url: process.env.AWS_ENDPOINT_URL, source: 'AWS_ENDPOINT_URL' };
  return { source: 'AWS' };
}

export function createS3Client(settings: S3ClientSettings, counts: S3RequestCounts): S3Client {
  const { S3Client } = s3Sdk();
  const config: S3ClientConfig = {
    region: settings.region ?? (settings.endpoint ? regionOrUsEast1(settings.profile) : undefined),
    endpoint: settings.endpoint,
    forcePathStyle: settings.forcePathStyle,
    profile: settings.profile,
    credentials: settings.credentials,
    // With the newer defaults a streamed PutObject fails with 411 on Ceph RGW.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A stalled server is detected by silence on the socket, not by a deadline on the whole
    // request: a 16 MiB part on a slow link may take minutes while bytes keep flowing. The SDK's
    // requestTimeout would only print a warning into git's output unless made fatal.
    requestHandler: { connectionTimeout: 10_000, socketTimeout: settings.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS },
  };
  const client = new S3Client(config);
  // The deserialize step runs once per HTTP attempt, below the SDK's retry loop.
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const request = args.request as HttpRequestParts;
      refusePlainHttpRequest('S3', request, settings.allowHttp);
      countRequest(counts, context.commandName);
      if (!tracing()) return next(args);
      // One line per HTTP attempt, retries included: method, URL without query values, status.
      const what = `s3 ${context.commandName} ${request.method ?? ''} ${request.protocol ?? ''}//${request.hostname ?? ''}${request.port ? `:${request.port}` : ''}${request.path ?? ''}`;
      const started = process.hrtime.bigint();
      try {
        const out = await next(args);
        const response = out.response as { statusCode?: number; headers?: Record<string, string> };
        trace(`${what}: HTTP ${response.statusCode ?? '?'}${requestId(response.headers)}, ${elapsed(started)}`);
        return out;
      } catch (err) {
        const e = err as { name?: string; $metadata?: { httpStatusCode?: number; requestId?: string }; message?: string };
        const status = e.$metadata?.httpStatusCode;
        trace(`${what}: ${status ? `HTTP ${status} ` : ''}${e.name ?? 'Error'}${e.$metadata?.requestId ? ` (request ${e.$metadata.requestId})` : ''}${status ? '' : `: ${(e.message ?? '').split('\n')[0]}`}, ${elapsed(started)}`);
        throw err;
      }
    },
    { step: 'deserialize', name: 'kmscryptCountAndGuardRequests' },
  );
  return client;
}

interface HttpRequestParts {
  method?: string;
  protocol?: string;
  hostname?: string;
  port?: number;
  path?: string;
}

function requestId(headers: Record<string, string> | undefined): string {
  const id = headers?.['x-amz-request-id'];
  return id ? ` (request ${id})` : '';
}

/** S3-compatible servers rarely care about the region, so a custom endpoint needs none configured. */
function regionOrUsEast1(profile: string | undefined): () => Promise<string> {
  let region: Promise<string> | undefined;
  return () => {
    region ??= (async () => {
      try {
        return await new (s3Sdk().S3Client)({ profile }).config.region();
      } catch {
        return 'us-east-1';
      }
    })();
    return region;
  };
}
