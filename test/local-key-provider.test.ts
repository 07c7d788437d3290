import t, { Test } from 'tap';
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKmscryptError, KmscryptError } from '../src/errors';
import { repositoryContext } from '../src/keys/key-provider';
import { Keyring } from '../src/keys/keyring';
import { LocalKeyProvider } from '../src/keys/local-key-provider';

const ctx = repositoryContext('repo-1');

function tempKeyring(t: Test): Keyring {
  const dir = mkdtempSync(join(tmpdir(), 'local-key-provider-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return new Keyring(join(dir, 'kmscrypt', 'keyring.json'));
}

async function rejection(p: Promise<unknown>): Promise<KmscryptError> {
  try {
    await p;
  } catch (err) {
    if (isKmscryptError(err)) return err;
    throw err;
  }
  throw new Error('expected a KmscryptError');
}

t.test('creates the default key once, mode 0600, and round-trips data keys', async (t) => {
  const keyring = tempKeyring(t);
  const local = new LocalKeyProvider(keyring);
  const key = await local.ensureKey('alias/kmscrypt', true);
  t.match(key, { enabled: true, state: 'Enabled', keySpec: 'SYMMETRIC_DEFAULT', aliases: ['alias/kmscrypt'] });
  t.equal((await local.ensureKey('alias/kmscrypt', true)).keyId, key.keyId);
  t.equal(local.calls.createKey, 1);
  if (process.platform !== 'win32') t.equal(statSync(keyring.path).mode & 0o777, 0o600);

  const dk = await local.generateDataKey('alias/kmscrypt', ctx);
  t.equal(dk.plaintext.length, 32);
  const back = await new LocalKeyProvider(keyring).decryptDataKey(dk.wrapped, ctx, key.arn);
  t.same(back.plaintext, dk.plaintext);
});

t.test('a wrong encryption context or an altered blob does not decrypt', async (t) => {
  const local = new LocalKeyProvider(tempKeyring(t));
  await local.ensureKey('alias/kmscrypt', true);
  const dk = await local.generateDataKey('alias/kmscrypt', ctx);
  const wrong = await rejection(local.decryptDataKey(dk.wrapped, repositoryContext('repo-2')));
  t.equal(wrong.code, 'KEY_ERROR');
  t.match(wrong.message, /does not belong to this repository or was altered \(InvalidCiphertextException: encryption context mismatch\)/);
  t.equal(wrong.data.kmsError, 'InvalidCiphertextException', 'the KMS error name is data, as AwsKmsProvider gives it');
  const altered = Buffer.from(dk.wrapped);
  altered[altered.length - 1] ^= 1;
  t.match((await rejection(local.decryptDataKey(altered, ctx))).message, /InvalidCiphertextException/);
  t.match((await rejection(local.decryptDataKey(Buffer.from('not a blob'), ctx))).message, /InvalidCiphertextException/);
});

t.test('a data key wrapped by another key is refused when a key ID is given', async (t) => {
  const keyring = tempKeyring(t);
  const local = new LocalKeyProvider(keyring);
  await local.ensureKey('alias/kmscrypt', true);
  const other = keyring.createKey('other');
  const dk = await local.generateDataKey('alias/kmscrypt', ctx);
  const incorrect = await rejection(local.decryptDataKey(dk.wrapped, ctx, other.keyId));
  t.match(incorrect.message, /IncorrectKeyException/);
  t.equal(incorrect.data.kmsError, 'IncorrectKeyException');
});

t.test('disabled keys and keys pending deletion', async (t) => {
  const keyring = tempKeyring(t);
  const local = new LocalKeyProvider(keyring);
  const key = await local.ensureKey('alias/kmscrypt', true);
  const dk = await local.generateDataKey(key.keyId, ctx);
  const setState = (state: 'Enabled' | 'Disabled' | 'PendingDeletion') =>
    keyring.update((file) => {
      file.keys.find((k) => k.keyId === key.keyId)!.state = state;
    });

  setState('Disabled');
  const disabled = await rejection(local.generateDataKey(key.keyId, ctx));
  t.equal(
    disabled.message,
    `GenerateDataKey: key ${key.keyId} is disabled (DisabledException); enable it again (start git kmscrypt local-kms --keyring ${keyring.path}, then aws kms enable-key --key-id ${key.keyId} with the endpoint and credentials it prints)`,
  );
  t.match(disabled.data, { kmsError: 'DisabledException', action: 'GenerateDataKey', keyId: key.keyId, fix: /^enable it / });
  t.match((await rejection(local.decryptDataKey(dk.wrapped, ctx))).message, /DisabledException/);
  t.equal((await local.describeKey(key.keyId)).enabled, false);

  setState('PendingDeletion');
  const pending = await rejection(local.decryptDataKey(dk.wrapped, ctx));
  t.equal(
    pending.message,
    `Decrypt: key ${key.keyId} is pending deletion (KMSInvalidStateException); cancel the deletion and enable the key again (start git kmscrypt local-kms --keyring ${keyring.path}, then aws kms cancel-key-deletion --key-id ${key.keyId}, then aws kms enable-key --key-id ${key.keyId} with the endpoint and credentials it prints)`,
  );
  t.equal(pending.data.kmsError, 'KMSInvalidStateException');

  setState('Enabled');
  t.same((await local.decryptDataKey(dk.wrapped, ctx)).plaintext, dk.plaintext);
});

t.test('unknown keys', async (t) => {
  const keyring = tempKeyring(t);
  const local = new LocalKeyProvider(keyring);
  const gone = await rejection(local.describeKey('alias/kmscrypt'));
  t.equal(
    gone.message,
    `the local keyring ${keyring.path} does not exist, and without it this repository cannot be decrypted (NotFoundException: key alias/kmscrypt); restore it from your backup, or point KMSCRYPT_KEYRING (kmscrypt.keyring) at it`,
    'no keyring file: the advice is to restore it, not to choose another key',
  );
  t.equal(gone.data.kmsError, 'NotFoundException');

  // A new repository's key: nothing is encrypted yet, so the advice is to make the key, not to restore anything.
  const notCreated = await rejection(local.ensureKey('alias/team', false));
  t.equal(
    notCreated.message,
    `key alias/team for the new repository is not in local keyring ${keyring.path}, which does not exist yet (NotFoundException); create it with 'git kmscrypt keys create --alias team', or choose a key the keyring holds ('git kmscrypt keys list') with kmscrypt.keyId`,
  );
  t.equal(notCreated.data.kmsError, 'NotFoundException');
  t.notOk(keyring.exists(), 'nothing was created');
  const otherAlias = await rejection(local.ensureKey('alias/other', true));
  t.match(
    otherAlias.message,
    /^key alias\/other for the new repository is not in .* \(NotFoundException\); create it with 'git kmscrypt keys create --alias other'/,
    'only the default alias is created',
  );
  t.notOk(keyring.exists(), 'still nothing was created');
  await local.ensureKey('alias/kmscrypt', true);
  t.equal(
    (await rejection(local.ensureKey('00000000-0000-0000-0000-000000000000', false))).message,
    `key 00000000-0000-0000-0000-000000000000 for the new repository is not in local keyring ${keyring.path} (NotFoundException); set kmscrypt.keyId to a key the keyring holds ('git kmscrypt keys list' shows them, 'git kmscrypt keys create' makes one), or point KMSCRYPT_KEYRING (kmscrypt.keyring) at the keyring that holds it`,
    'a key ID the keyring lacks: another key, or the keyring that holds it',
  );
  const unknown = await rejection(local.generateDataKey('00000000-0000-0000-0000-000000000000', ctx));
  t.equal(
    unknown.message,
    `key 00000000-0000-0000-0000-000000000000 not found in local keyring ${keyring.path} (NotFoundException); set kmscrypt.keyId to a key it holds, or restore the keyring this repository was made with`,
    'a key chosen for new data can be replaced by another',
  );
  // Data wrapped by a key this keyring does not hold: only the keyring that holds it helps.
  const other = tempKeyring(t);
  const wrapped = (await new LocalKeyProvider(other).generateDataKey((await new LocalKeyProvider(other).ensureKey('alias/kmscrypt', true)).keyId, ctx)).wrapped;
  const foreign = await rejection(local.decryptDataKey(wrapped, ctx));
  t.match(
    foreign.message,
    new RegExp(
      `^Decrypt: key [0-9a-f-]+, which wrapped this repository's data keys, is not in local keyring ${keyring.path.replace(/[.*+?^$()|[\]\\/]/g, '\\$&')} \\(NotFoundException\\); restore the keyring this repository was made with, or point KMSCRYPT_KEYRING \\(kmscrypt.keyring\\) at it$`,
    ),
  );
});

t.test('a keyring readable by group or others is refused', { skip: process.platform === 'win32' }, async (t) => {
  const keyring = tempKeyring(t);
  const local = new LocalKeyProvider(keyring);
  await local.ensureKey('alias/kmscrypt', true);
  chmodSync(keyring.path, 0o644);
  const err = await rejection(local.ensureKey('alias/kmscrypt', true));
  t.equal(err.code, 'KEYRING');
  t.equal(err.message, `keyring ${keyring.path} is readable by group or others (mode 644); run: chmod 600 ${keyring.path}`);
});

t.test('a corrupt keyring is refused', async (t) => {
  const keyring = tempKeyring(t);
  await new LocalKeyProvider(keyring).ensureKey('alias/kmscrypt', true);
  const cases: Array<[string, RegExp]> = [
    ['{ not json', /not valid JSON/],
    ['{"version":2,"keys":[],"aliases":{}}', /unknown version 2/],
    ['{"version":1,"keys":[{"keyId":"k","material":"c2hvcnQ=","state":"Enabled"}],"aliases":{}}', /no 32-byte key material/],
  ];
  for (const [text, why] of cases) {
    writeFileSync(keyring.path, text, { mode: 0o600 });
    const err = await rejection(new LocalKeyProvider(keyring).ensureKey('alias/kmscrypt', true));
    t.equal(err.code, 'KEYRING');
    t.match(err.message, why);
    t.match(err.message, /is corrupt .*; restore it from your backup$/);
  }
});

t.test('encrypt and decrypt a small plaintext, asking only the named key', async (t) => {
  const keyring = tempKeyring(t);
  const local = new LocalKeyProvider(keyring);
  const key = await local.ensureKey('alias/kmscrypt', true);
  const other = keyring.createKey('other');
  const plaintext = Buffer.from('endorsement of the next key');
  const { ciphertext, keyId } = await local.encrypt('alias/kmscrypt', plaintext, ctx);
  t.equal(keyId, key.arn, 'the ARN of the key that encrypted');
  t.same(await local.decrypt(key.arn, ciphertext, ctx), plaintext);
  t.same({ encrypt: local.calls.encrypt, decrypt: local.calls.decrypt }, { encrypt: 1, decrypt: 1 }, 'counted');
  const wrongKey = await rejection(local.decrypt(other.keyId, ciphertext, ctx));
  t.match(wrongKey, { code: 'KEY_ERROR', data: { kmsError: 'IncorrectKeyException' } }, 'a blob of another key is refused');
  t.match(
    await rejection(local.decrypt(key.arn, ciphertext, repositoryContext('repo-2'))),
    { data: { kmsError: 'InvalidCiphertextException' } },
    'another context',
  );
  await t.rejects(local.encrypt(key.arn, Buffer.alloc(4097), ctx), RangeError, 'KMS takes at most 4096 bytes');
});
