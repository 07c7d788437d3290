import { KMSClient } from '@aws-sdk/client-kms';

export interface CapturedRequest {
  headers: Record<string, string>;
  body: string;
}

/**
 * The headers and body the real @aws-sdk/client-kms would send to `endpoint` for `command`,
 * signed with `credentials` (by a clock `clockOffsetMs` off), captured instead of sent: to check
 * them, or to replay them as someone else would.
 */
export async function signedRequest(
  endpoint: string,
  credentials: { accessKeyId: string; secretAccessKey: string; sessionToken?: string },
  command: object,
  clockOffsetMs = 0,
  region = 'us-east-1',
): Promise<CapturedRequest> {
  let captured: CapturedRequest | undefined;
  const capture = {
    handle: async (request: { headers: Record<string, string>; body?: unknown }) => {
      const body = request.body instanceof Uint8Array ? Buffer.from(request.body).toString('utf8') : String(request.body ?? '');
      captured = { headers: { ...request.headers }, body };
      throw new Error('captured, not sent');
    },
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
  };
  // A copy of the credentials: the SDK writes into the object it is given.
  const client = new KMSClient({ endpoint, region, credentials: { ...credentials }, maxAttempts: 1, systemClockOffset: clockOffsetMs, requestHandler: capture as never });
  await client.send(command as never).catch(() => undefined);
  client.destroy();
  if (!captured) throw new Error('the SDK sent nothing to capture');
  return captured;
}
