import { randomBytes } from 'node:crypto';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { AwsKmsProvider } from '../../src/keys/aws-kms-provider';
import { S3Storage } from '../../src/storage/s3-storage';
import type { TamperBackend } from './tamper-scenarios';
import { kmsCredentialsFor, kmsEnvFor, runningServices, newBucket, s3ClientFor } from './services';
import { s3Store } from './store-access';

/**
 * The S3 backend of the shared scenarios: Ceph RGW and the local KMS endpoint started by the
 * test setup, reached by the real AWS SDK clients, with the AWS KMS key provider.
 */
export async function s3Backend(): Promise<TamperBackend> {
  const services = await runningServices();
  const client = s3ClientFor(services);
  const bucket = await newBucket('e2e');
  const env: NodeJS.ProcessEnv = {
    AWS_ACCESS_KEY_ID: services.s3.accessKeyId,
    AWS_SECRET_ACCESS_KEY: services.s3.secretAccessKey,
    AWS_REGION: services.s3.region,
    AWS_ENDPOINT_URL_S3: services.s3.endpoint,
    ...kmsEnvFor(services),
    AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
  };
  const kms = () => new KMSClient({ endpoint: services.kms.endpoint, region: services.kms.region, credentials: kmsCredentialsFor(services) });
  return {
    env,
    createKey: async (_sb, description) => {
      const client = kms();
      try {
        return (await client.send(new CreateKeyCommand({ Description: description }))).KeyMetadata!.Arn!;
      } finally {
        client.destroy();
      }
    },
    newStore: async (_sb, name) => s3Store(client, bucket, `${name}-${randomBytes(4).toString('hex')}`),
    remoteConfig: (_sb, store) => {
      const [, b, prefix] = /^kmscrypt::s3:\/\/([^/]+)\/(.+)$/.exec(store.url)!;
      return {
        url: store.url.replace(/^kmscrypt::/, ''),
        storage: new S3Storage({
          bucket: b,
          prefix,
          endpoint: services.s3.endpoint,
          region: services.s3.region,
          credentials: { accessKeyId: services.s3.accessKeyId, secretAccessKey: services.s3.secretAccessKey },
        }),
        keys: new AwsKmsProvider({
          client: new KMSClient({ endpoint: services.kms.endpoint, region: services.kms.region, credentials: kmsCredentialsFor(services) }),
        }),
        keyProvider: 'aws',
      };
    },
  };
}
