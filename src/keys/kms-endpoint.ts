/** Where the KMS client sends requests, and the setting that said so (for messages that name it). */
export interface KmsEndpoint {
  /** undefined: AWS's own endpoint for the region, or an endpoint_url in the AWS config file. */
  url?: string;
  source: string;
}

/**
 * The KMS endpoint as kmscrypt and the SDK resolve it: AWS_ENDPOINT_URL_KMS, then AWS_ENDPOINT_URL
 * (both ignored, as the SDK ignores them, under AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), then
 * kmscrypt.kmsEndpoint; otherwise the SDK's choice.
 */
export function resolveKmsEndpoint(configured: string | undefined): KmsEndpoint {
  if (!/^true$/i.test(process.env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? '')) {
    if (process.env.AWS_ENDPOINT_URL_KMS) return { url: process.env.AWS_ENDPOINT_URL_KMS, source: 'AWS_ENDPOINT_URL_KMS' };
    if (process.env.AWS_ENDPOINT_URL) return { url: process.env.AWS_ENDPOINT_URL, source: 'AWS_ENDPOINT_URL' };
  }
  if (configured) return { url: configured, source: 'kmscrypt.kmsEndpoint' };
  return { source: 'AWS' };
}
