import { randomBytes } from 'node:crypto';
import { isKmscryptError, KmscryptError } from '../../errors';
import type { EncryptionContext, KeyDescription, KeyProvider } from '../../keys/key-provider';
import { REPOSITORY_CONTEXT_KEY, repositoryContext } from '../../keys/key-provider';
import { DEFAULT_ALIAS } from '../../keys/keyring';
import { KEY_FIXES } from '../../keys/kms-errors';
import type { RemoteConfig, RemoteRepository } from '../../remote/remote-repository';
import { Add, addFailure } from './check';

const THROWAWAY_REPOSITORY_ID = 'doctor-check';
/** After DescribeKey, the other five actions, in the order they are exercised. */
const EXERCISED = ['GenerateDataKeyWithoutPlaintext', 'GenerateDataKey', 'Decrypt', 'ReEncrypt', 'Encrypt'];

/** DescribeKey, then each of the other five actions once, under the repository's encryption context. */
export async function checkKms(config: RemoteConfig, repo: RemoteRepository | undefined, currentKey: string | undefined, add: Add): Promise<void> {
  const keys = config.keys;
  const keyId = config.keyId ?? currentKey ?? repo?.descriptor.keyId ?? DEFAULT_ALIAS;
  const skipAll = (why: string) => EXERCISED.forEach((a) => add(`kms:${a}`, 'SKIP', why));

  let key: KeyDescription;
  try {
    key = await keys.describeKey(keyId);
  } catch (err) {
    if (!repo && keyId === DEFAULT_ALIAS && isKmscryptError(err) && err.data.kmsError === 'NotFoundException') {
      add(
        'kms:DescribeKey',
        'WARN',
        `${DEFAULT_ALIAS} does not exist yet: the first push creates it (kms:CreateKey, kms:CreateAlias), as CodeCommit creates aws/codecommit`,
      );
      skipAll(`no key to exercise yet (${DEFAULT_ALIAS} does not exist)`);
      return;
    }
    addKmsFailure(add, 'DescribeKey', err);
    skipAll('the key could not be described');
    return;
  }
  const named = `${key.arn}${key.aliases.length ? ` (${key.aliases.join(', ')})` : ''}`;
  const problems: string[] = [];
  if (!key.enabled) problems.push(`its state is ${key.state}`);
  if (key.keySpec !== 'SYMMETRIC_DEFAULT') problems.push(`its KeySpec is ${key.keySpec}`);
  if (key.keyUsage !== 'ENCRYPT_DECRYPT') problems.push(`its KeyUsage is ${key.keyUsage}`);
  if (problems.length) {
    // A local keyring's key changes state through git kmscrypt local-kms, which knows it by its key ID
    // (its ARN there has that server's region).
    const keyring = keyringPath(keys);
    const ref = keyring === undefined ? key.arn : key.keyId;
    const fix =
      key.state === 'PendingDeletion'
        ? KEY_FIXES.pendingDeletion(ref, keyring)
        : !key.enabled
          ? repo
            ? KEY_FIXES.disabled(ref, keyring)
            : KEY_FIXES.disabledNewKey(ref, keyring)
          : KEY_FIXES.notSymmetric;
    add('kms:DescribeKey', 'FAIL', `${named}: ${problems.join(', ')}`, fix);
    skipAll('the key is not usable');
    return;
  }
  add('kms:DescribeKey', 'PASS', `${named}: ${key.state}, ${key.keySpec}, ${key.keyUsage} (${keys.name})`);

  const context = repo ? repositoryContext(repo.repositoryId) : Object.freeze({ [REPOSITORY_CONTEXT_KEY]: THROWAWAY_REPOSITORY_ID });
  const withContext = `with encryption context ${JSON.stringify(context)}`;
  const exercise = async <T>(action: string, run: () => Promise<T>, detail: (value: T) => string = () => `allowed ${withContext}`): Promise<T | undefined> => {
    try {
      const value = await run();
      add(`kms:${action}`, 'PASS', detail(value));
      return value;
    } catch (err) {
      addKmsFailure(add, action, err);
      return undefined;
    }
  };

  const withoutPlaintext = await exercise('GenerateDataKeyWithoutPlaintext', () => keys.generateDataKeyWithoutPlaintext(key.arn, context));
  const generated = await exercise('GenerateDataKey', () => keys.generateDataKey(key.arn, context));
  try {
    const blob = generated?.wrapped ?? withoutPlaintext?.wrapped;
    if (!blob) {
      add('kms:Decrypt', 'SKIP', 'no data key to decrypt: both GenerateDataKey calls failed');
      add('kms:ReEncrypt', 'SKIP', 'no data key to re-encrypt: both GenerateDataKey calls failed');
    } else {
      await exercise('Decrypt', async () => {
        const unwrapped = await keys.decryptDataKey(blob, context, key.arn);
        const same = !generated || unwrapped.plaintext.equals(generated.plaintext);
        unwrapped.plaintext.fill(0);
        if (!same)
          throw new KmscryptError('KEY_ERROR', 'kms:Decrypt returned another plaintext than GenerateDataKey; the KMS endpoint does not behave like AWS KMS');
      });
      await exercise(
        'ReEncrypt',
        () => keys.reEncrypt(blob, context, key.arn),
        () => `allowed (to the same key) ${withContext}`,
      );
    }
  } finally {
    generated?.plaintext.fill(0);
  }
  await exercise('Encrypt', () => encrypt32(keys, key.arn, context));
}

/** kms:Encrypt of 32 random bytes, with the repository's encryption context. */
async function encrypt32(keys: KeyProvider, keyArn: string, context: EncryptionContext): Promise<void> {
  const plaintext = randomBytes(32);
  try {
    await keys.encrypt(keyArn, plaintext, context);
  } finally {
    plaintext.fill(0);
  }
}

/** The local keyring file the keys are in; undefined for a KMS service (or a keyring that cannot be read now). */
function keyringPath(keys: KeyProvider): string | undefined {
  try {
    const store = keys.keyStore();
    return store.kind === 'keyring' ? store.path : undefined;
  } catch {
    return undefined;
  }
}

/** A failed KMS action: the provider's error says what failed and, where it knows, what to do. */
function addKmsFailure(add: Add, action: string, err: unknown): void {
  addFailure(add, `kms:${action}`, err, 'act on the error above; with AWS KMS also check the endpoint (AWS_ENDPOINT_URL_KMS), the region and the credentials');
}
