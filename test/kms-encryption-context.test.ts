/**
 * A data key is bound to its repository: every KMS request that seals or opens one (GenerateDataKey,
 * Decrypt, Encrypt, ReEncrypt) names the repository's ID as its encryption context, which KMS
 * checks on every Decrypt and which CloudTrail records, so that a repository's KMS activity can be
 * found by its ID (docs/s3-and-kms.md, "CloudTrail"). Checked on the KMS wire: push, clone, fetch
 * and rotate-key through the AWS KMS provider against an in-process local KMS whose log, like
 * CloudTrail, lists each request with its encryption context.
 */
import t from 'tap';
import { KMSClient } from '@aws-sdk/client-kms';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Keyring } from '../src/keys/keyring';
import { startLocalKmsServer } from '../src/keys/local-kms-server';
import { createKey } from './support/local-kms-harness';
import { Sandbox } from './support/sandbox';
import { localStore } from './support/store-access';

/** The actions that take a data key's encryption context. */
const SEALING = /^(GenerateDataKey|GenerateDataKeyWithoutPlaintext|Decrypt|Encrypt|ReEncrypt) ok/;

t.test('every KMS request of a push, clone, fetch and rotate-key names the repository in its encryption context', async (t) => {
  const sb = new Sandbox(t);
  const requests: string[] = [];
  const server = await startLocalKmsServer({ port: 0, keyring: new Keyring(sb.env.KMSCRYPT_KEYRING!), log: (line) => requests.push(line) });
  t.teardown(() => server.close());
  const env = { KMSCRYPT_KMS: 'aws', AWS_ENDPOINT_URL_KMS: server.url, AWS_REGION: 'us-east-1' };
  const git = (cwd: string, ...args: string[]) => sb.runAsync(['git', ...args], { cwd, env });

  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'first');
  await git(src, 'push', '-q', store.url, 'main');
  const repositoryId = (JSON.parse(readFileSync(join(sb.path('store'), 'kmscrypt.json'), 'utf8')) as { repositoryId: string }).repositoryId;
  t.match(repositoryId, /^[0-9a-f-]{36}$/, 'the repository has an ID');

  await git(sb.root, 'clone', '-q', store.url, 'clone');
  sb.commit(src, { 'b.txt': 'b\n' }, 'second');
  await git(src, 'push', '-q', store.url, 'main');
  await git(sb.path('clone'), 'pull', '-q');
  const kms = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: { ...server.credentials } });
  t.teardown(() => kms.destroy());
  const target = await createKey(kms);
  await sb.runAsync(['git', 'kmscrypt', 'rotate-key', store.url, '--to', target.arn], { env });

  const sealing = requests.filter((line) => SEALING.test(line));
  const count = (action: string) => sealing.filter((line) => line.startsWith(`${action} ok`)).length;
  t.ok(count('GenerateDataKey') >= 3, `data keys were generated (${count('GenerateDataKey')})`);
  t.ok(count('Decrypt') >= 2, `data keys were unwrapped (${count('Decrypt')})`);
  t.ok(count('ReEncrypt') + count('Encrypt') >= 1, `rotate-key rewrapped or endorsed (${count('ReEncrypt')} ReEncrypt, ${count('Encrypt')} Encrypt)`);
  const context = JSON.stringify({ 'kmscrypt:repository-id': repositoryId });
  const unbound = sealing.filter((line) => {
    const contexts = [...line.matchAll(/ (?:Source|Destination)?EncryptionContext=(\{[^}]*\})/g)].map((m) => m[1]);
    return contexts.length === 0 || contexts.some((c) => c !== context);
  });
  t.same(unbound, [], `every one of the ${sealing.length} requests names ${context}`);
});
