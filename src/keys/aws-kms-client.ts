import type {
  CreateAliasCommandInput,
  CreateAliasCommandOutput,
  CreateKeyCommandInput,
  CreateKeyCommandOutput,
  DecryptCommandInput,
  DecryptCommandOutput,
  DescribeKeyCommandInput,
  DescribeKeyCommandOutput,
  EncryptCommandInput,
  EncryptCommandOutput,
  GenerateDataKeyCommandInput,
  GenerateDataKeyCommandOutput,
  GenerateDataKeyWithoutPlaintextCommandInput,
  GenerateDataKeyWithoutPlaintextCommandOutput,
  ReEncryptCommandInput,
  ReEncryptCommandOutput,
  ScheduleKeyDeletionCommandInput,
  ScheduleKeyDeletionCommandOutput,
} from '@aws-sdk/client-kms';
import { refusePlainHttpRequest } from '../endpoint-security';

type KmsModule = typeof import('@aws-sdk/client-kms');

/** The KMS actions the provider calls, each with its input and output types. */
export interface Operations {
  DescribeKey: [DescribeKeyCommandInput, DescribeKeyCommandOutput];
  Encrypt: [EncryptCommandInput, EncryptCommandOutput];
  CreateKey: [CreateKeyCommandInput, CreateKeyCommandOutput];
  CreateAlias: [CreateAliasCommandInput, CreateAliasCommandOutput];
  GenerateDataKey: [GenerateDataKeyCommandInput, GenerateDataKeyCommandOutput];
  GenerateDataKeyWithoutPlaintext: [GenerateDataKeyWithoutPlaintextCommandInput, GenerateDataKeyWithoutPlaintextCommandOutput];
  Decrypt: [DecryptCommandInput, DecryptCommandOutput];
  ReEncrypt: [ReEncryptCommandInput, ReEncryptCommandOutput];
  ScheduleKeyDeletion: [ScheduleKeyDeletionCommandInput, ScheduleKeyDeletionCommandOutput];
}

export type Operation = keyof Operations;

/** A command of @aws-sdk/client-kms; an injected client can tell them apart by `constructor.name`. */
export interface KmsCommand {
  readonly input: object;
}

/** What the provider needs of a KMSClient; tests may inject a wrapper or a fake. */
export interface KmsClientLike {
  send(command: KmsCommand): Promise<unknown>;
  config?: { region?: string | (() => Promise<string>) };
}

let kmsModule: KmsModule | undefined;

/** The SDK is loaded on first use: processes that never talk to KMS do not pay for loading it. */
function loadKms(): KmsModule {
  kmsModule ??= require('@aws-sdk/client-kms') as KmsModule;
  return kmsModule;
}

export function newCommand(op: Operation, input: object): KmsCommand {
  const kms = loadKms();
  switch (op) {
    case 'DescribeKey':
      return new kms.DescribeKeyCommand(input as DescribeKeyCommandInput);
    case 'Encrypt':
      return new kms.EncryptCommand(input as EncryptCommandInput);
    case 'CreateKey':
      return new kms.CreateKeyCommand(input as CreateKeyCommandInput);
    case 'CreateAlias':
      return new kms.CreateAliasCommand(input as CreateAliasCommandInput);
    case 'GenerateDataKey':
      return new kms.GenerateDataKeyCommand(input as GenerateDataKeyCommandInput);
    case 'GenerateDataKeyWithoutPlaintext':
      return new kms.GenerateDataKeyWithoutPlaintextCommand(input as GenerateDataKeyWithoutPlaintextCommandInput);
    case 'Decrypt':
      return new kms.DecryptCommand(input as DecryptCommandInput);
    case 'ReEncrypt':
      return new kms.ReEncryptCommand(input as ReEncryptCommandInput);
    case 'ScheduleKeyDeletion':
      return new kms.ScheduleKeyDeletionCommand(input as ScheduleKeyDeletionCommandInput);
  }
}

/** How to reach KMS: what the provider passes to a KMSClient it makes itself. */
export interface KmsClientOptions {
  region?: string;
  /** Defaults to what the SDK resolves: AWS_ENDPOINT_URL_KMS, AWS_ENDPOINT_URL, the profile's endpoint_url, or AWS. */
  endpoint?: string;
  profile?: string;
  /** Signs with these instead of the SDK's credential chain (the local KMS's own access key). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /** kmscrypt.allowHttp: plain HTTP to a KMS endpoint that is not loopback (checked on every request). */
  allowHttp?: boolean;
}

/** A KMSClient that refuses plain HTTP to a KMS endpoint off this machine on every request. */
export function createKmsClient(options: KmsClientOptions): KmsClientLike {
  const { KMSClient } = loadKms();
  const { region, endpoint, profile, credentials, allowHttp = false } = options;
  const client = new KMSClient({
    ...(region !== undefined ? { region } : {}),
    ...(endpoint !== undefined ? { endpoint } : {}),
    ...(profile !== undefined ? { profile } : {}),
    // A copy: the SDK writes into the credentials object it is given.
    ...(credentials !== undefined ? { credentials: { ...credentials } } : {}),
    // A KMS endpoint that stops answering must not hang git forever: abandon a silent
    // connection after a minute (the SDK then retries), as the S3 client does.
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 60_000 },
  });
  // Plaintext data keys come back in KMS's answers: an endpoint the SDK found by itself (an
  // endpoint_url in the AWS config file) obeys the HTTPS rule too. Once per HTTP attempt.
  client.middlewareStack.add(
    (next) => async (args) => {
      refusePlainHttpRequest('KMS', args.request as { protocol?: string; hostname?: string }, allowHttp);
      return next(args);
    },
    { step: 'deserialize', name: 'kmscryptRefusePlainHttp' },
  );
  return client;
}
