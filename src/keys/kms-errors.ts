import { isLoopbackUrl } from '../endpoint-security';
import { KmscryptError } from '../errors';
import { tlsFailure } from '../tls-failure';
import { LOCAL_KMS_CREDENTIALS_FILE } from './local-kms-credentials';

/** The KMS actions kmscrypt performs on a repository's key, as CodeCommit lists them for aws/codecommit. */
export const KMSCRYPT_KMS_ACTIONS = [
  'kms:Encrypt',
  'kms:Decrypt',
  'kms:ReEncrypt',
  'kms:GenerateDataKey',
  'kms:GenerateDataKeyWithoutPlaintext',
  'kms:DescribeKey',
] as const;

const CONFIGURE_KEY = 'git config kmscrypt.keyId <key id, ARN, alias or alias ARN>';

/**
 * What to do about a key that will not serve, each written once: both providers' errors carry these
 * (data.fix), and doctor shows them. `key` is the key's ID or ARN when it is known; `keyring`: the
 * file of a local keyring that holds the key, whose key states only AWS's own commands change, sent
 * to git kmscrypt local-kms serving that file (git kmscrypt keys creates and lists keys, no more).
 *
 * A disabled key is enabled again, never "moved away from": rotate-key needs the old key to open the
 * repository and to rewrap its data keys, and a disabled key does neither.
 */
export const KEY_FIXES = {
  /** The key of an existing repository is disabled. */
  disabled: (key: string | undefined, keyring?: string) => `enable it again (${kmsCommands(['enable-key'], key, keyring)})`,
  /** The key chosen for new data is disabled. */
  disabledNewKey: (key: string | undefined, keyring?: string) =>
    keyring === undefined
      ? `enable it (${kmsCommands(['enable-key'], key)}) or set another key: ${CONFIGURE_KEY}`
      : `enable it (${kmsCommands(['enable-key'], key, keyring)}), or choose another: ${CHOOSE_LOCAL_KEY}`,
  pendingDeletion: (key: string | undefined, keyring?: string) =>
    keyring === undefined
      ? `cancel the deletion (${kmsCommands(['cancel-key-deletion'], key)}) and enable the key again`
      : `cancel the deletion and enable the key again (${kmsCommands(['cancel-key-deletion', 'enable-key'], key, keyring)})`,
  accessDenied: (action: string, key: string) =>
    `remove what denies kms:${action} on ${key} to this identity (an IAM policy, the key policy, a permissions boundary, an SCP or a VPC endpoint policy): ` +
    `kmscrypt needs ${KMSCRYPT_KMS_ACTIONS.slice(0, -1).join(', ')} and ${KMSCRYPT_KMS_ACTIONS[KMSCRYPT_KMS_ACTIONS.length - 1]} on this key not to be denied`,
  notSymmetric: `kmscrypt needs a symmetric encryption key (SYMMETRIC_DEFAULT, ENCRYPT_DECRYPT): ${CONFIGURE_KEY}`,
  cannotCreateDefault: `ask for a key and configure it: ${CONFIGURE_KEY}`,
  checkKeyId: 'check git config kmscrypt.keyId and the region (AWS_REGION)',
  /** The local keyring file that holds the key is gone. */
  restoreKeyring: 'restore it from your backup, or point KMSCRYPT_KEYRING (kmscrypt.keyring) at it',
  /** The local keyring lacks the key that wrapped a repository's data keys. */
  keyringOfRepository: 'restore the keyring this repository was made with, or point KMSCRYPT_KEYRING (kmscrypt.keyring) at it',
  /** The local keyring lacks a key named for something other than a new repository or rotate-key. */
  notInKeyring: 'set kmscrypt.keyId to a key it holds, or restore the keyring this repository was made with',
  /** The local keyring lacks the key chosen for a repository about to be created: nothing needs restoring. */
  missingLocalNewKey: (ref: string) =>
    ref.startsWith('alias/')
      ? `create it with 'git kmscrypt keys create --alias ${ref.slice('alias/'.length)}', or choose a key the keyring holds ('git kmscrypt keys list') with kmscrypt.keyId`
      : `set kmscrypt.keyId to a key the keyring holds ('git kmscrypt keys list' shows them, 'git kmscrypt keys create' makes one), or point KMSCRYPT_KEYRING (kmscrypt.keyring) at the keyring that holds it`,
  /** rotate-key --to names a key the local keyring does not hold (kmscrypt.keyId has nothing to do with it). */
  missingLocalTarget: (ref: string) =>
    ref.startsWith('alias/')
      ? `create it with 'git kmscrypt keys create --alias ${ref.slice('alias/'.length)}', or give --to a key that 'git kmscrypt keys list' shows`
      : `give --to a key that 'git kmscrypt keys list' shows, or create one with 'git kmscrypt keys create'`,
  /** rotate-key --to names a key AWS KMS does not have in the region kmscrypt uses. */
  missingKmsTarget: "give --to a key of this region ('aws kms list-aliases' lists them), or check the region (AWS_REGION)",
} as const;

const CHOOSE_LOCAL_KEY = "git config kmscrypt.keyId <a key 'git kmscrypt keys list' shows Enabled, or one 'git kmscrypt keys create' makes>";

/** The AWS CLI commands that change a key's state; for a local keyring's key, through git kmscrypt local-kms. */
function kmsCommands(commands: string[], key: string | undefined, keyring?: string): string {
  const aws = commands.map((c) => `aws kms ${c}${key === undefined ? '' : ` --key-id ${key}`}`).join(', then ');
  if (keyring === undefined) return aws;
  return `start git kmscrypt local-kms --keyring ${keyring}, then ${aws} with the endpoint and credentials it prints`;
}

export interface KmsCallContext {
  /** The KMS API action, e.g. 'Decrypt'. */
  action: string;
  /** The key the request named, when it named one. */
  keyId?: string;
  region: string;
  endpoint: string;
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE', 'ECONNABORTED']);
const CREDENTIAL_ERRORS = new Set([
  'CredentialsProviderError',
  'UnrecognizedClientException',
  'InvalidSignatureException',
  'MissingAuthenticationTokenException',
  'IncompleteSignatureException',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
]);
const ARN_REGION = /^arn:[^:]+:kms:([^:]+):/;

/** The error name KMS or the SDK gave, e.g. 'NotFoundException', or the errno code of a network failure. */
export function kmsErrorName(err: unknown): string {
  if (typeof err !== 'object' || err === null) return 'Error';
  const e = err as { name?: unknown; code?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && NETWORK_CODES.has(e.code)) return e.code;
  const cause = e.cause as { code?: unknown } | undefined;
  if (typeof cause?.code === 'string' && NETWORK_CODES.has(cause.code)) return cause.code;
  return typeof e.name === 'string' ? e.name : 'Error';
}

/** The key's ARN region when it differs from the region in use. */
export function otherRegion(keyId: string | undefined, region: string): string | undefined {
  const m = keyId === undefined ? null : ARN_REGION.exec(keyId);
  return m && m[1] !== region ? m[1] : undefined;
}

/** One line naming what failed, why, and what to do (data.fix); `data.kmsError` keeps the KMS error name. */
export function kmsError(err: unknown, ctx: KmsCallContext): KmscryptError {
  if (err instanceof KmscryptError) return err;
  const name = kmsErrorName(err);
  const detail = oneLine(err instanceof Error ? err.message : String(err));
  const action = `kms:${ctx.action}`;
  // "key <id>" when the request named one, else the key KMS found in the ciphertext.
  const key = ctx.keyId === undefined ? 'the key that wrapped the data key' : `key ${ctx.keyId}`;
  const make = (cause: string, fix?: string) => new KmscryptError('KEY_ERROR', cause, { kmsError: name, action: ctx.action, keyId: ctx.keyId, fix });
  const elsewhere = otherRegion(ctx.keyId, ctx.region);
  const tls = tlsFailure(err);
  if (tls) return make(`${action}: cannot connect securely to the KMS endpoint ${ctx.endpoint}: ${tls.cause}`, tls.fix);

  if (NETWORK_CODES.has(name) || name === 'TimeoutError' || name === 'RequestTimeout') {
    return make(
      `${action}: cannot reach the KMS endpoint ${ctx.endpoint} (${name})`,
      'check the network, or AWS_ENDPOINT_URL_KMS if you point kmscrypt at another KMS',
    );
  }
  if (/region is missing/i.test(detail)) {
    return make(`${action}: no AWS region is configured`, 'set AWS_REGION or a region in your AWS profile');
  }
  if (CREDENTIAL_ERRORS.has(name) && isLoopbackUrl(ctx.endpoint)) {
    return make(
      `${action}: no credentials that the KMS endpoint ${ctx.endpoint} on this machine accepts (${name}: ${detail})`,
      `for git kmscrypt local-kms, point kmscrypt.keyring (KMSCRYPT_KEYRING) at the keyring it serves: kmscrypt then signs with the ${LOCAL_KMS_CREDENTIALS_FILE} beside it`,
    );
  }
  if (CREDENTIAL_ERRORS.has(name)) {
    return make(
      `${action}: no valid AWS credentials for KMS in ${ctx.region} (${name})`,
      'configure them (aws configure, AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)',
    );
  }
  if (name === 'ExpiredTokenException' || name === 'ExpiredToken') {
    return make(`${action}: the AWS credentials have expired (${name})`, 'refresh them (for example aws sso login) and retry');
  }
  switch (name) {
    case 'AccessDeniedException':
      return make(`${action} on ${key} in ${ctx.region} was denied (AccessDeniedException)`, KEY_FIXES.accessDenied(ctx.action, ctx.keyId ?? 'the key'));
    case 'DisabledException':
      return make(`${action}: ${key} is disabled (DisabledException)`, KEY_FIXES.disabled(ctx.keyId));
    case 'KMSInvalidStateException':
      if (/pending deletion/i.test(detail))
        return make(`${action}: ${key} is pending deletion (KMSInvalidStateException)`, KEY_FIXES.pendingDeletion(ctx.keyId));
      return make(`${action}: ${key} is not in a usable state (KMSInvalidStateException: ${detail})`);
    case 'NotFoundException':
    case 'InvalidArnException':
      if (elsewhere)
        return make(`${action}: ${key} is in region ${elsewhere} but kmscrypt is using region ${ctx.region} (${name})`, `set AWS_REGION=${elsewhere}`);
      return make(`${action}: ${key} not found in AWS KMS region ${ctx.region} (${name})`, KEY_FIXES.checkKeyId);
    case 'InvalidCiphertextException':
      return make(
        `${action}: the wrapped data key belongs to another repository (encryption context mismatch) or was altered (InvalidCiphertextException)`,
        'check the repository URL and restore the object from a good copy',
      );
    case 'IncorrectKeyException':
      return make(`${action}: the data key was not wrapped by ${key} (IncorrectKeyException)`, 'set kmscrypt.keyId to the key this repository uses');
    case 'InvalidKeyUsageException':
      return make(`${action}: ${key} cannot encrypt and decrypt (InvalidKeyUsageException)`, KEY_FIXES.notSymmetric);
    case 'KeyUnavailableException':
    case 'KMSInternalException':
    case 'DependencyTimeoutException':
    case 'ThrottlingException':
    case 'LimitExceededException':
      return make(`${action}: AWS KMS in ${ctx.region} could not serve the request now (${name}: ${detail})`, 'retry later');
    default:
      return make(`${action} on ${key} failed in ${ctx.region} (${name}: ${detail})`);
  }
}

function oneLine(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 300 ? `${line.slice(0, 300)}…` : line;
}
