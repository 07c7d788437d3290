/**
 * An in-process local KMS server (src/keys/local-kms-server.ts) on a fresh keyring, with an AWS SDK
 * client signing with its credentials, for the tests of local-kms.
 */
import type { Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateKeyCommand, KMSClient } from '@aws-sdk/client-kms';
import { Keyring } from '../../src/keys/keyring';
import { LocalKmsServer, startLocalKmsServer } from '../../src/keys/local-kms-server';

export const context = { 'kmscrypt:repository-id': 'repo-1' };

export function tempKeyring(t: Test): Keyring {
  const dir = mkdtempSync(join(tmpdir(), 'local-kms-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return new Keyring(join(dir, 'kms', 'keyring.json'));
}

export async function setup(t: Test, deny?: string[], denyFile?: string): Promise<{ server: LocalKmsServer; kms: KMSClient; keyring: Keyring }> {
  const keyring = tempKeyring(t);
  const server = await startLocalKmsServer({ port: 0, keyring, deny, denyFile });
  // A copy: the SDK writes into the credentials object it is given.
  const kms = new KMSClient({ endpoint: server.url, region: 'us-east-1', credentials: { ...server.credentials }, maxAttempts: 1 });
  t.teardown(async () => {
    kms.destroy();
    await server.close();
  });
  return { server, kms, keyring };
}

export async function createKey(kms: KMSClient): Promise<{ keyId: string; arn: string }> {
  const out = await kms.send(new CreateKeyCommand({ Description: 'test key' }));
  return { keyId: out.KeyMetadata!.KeyId!, arn: out.KeyMetadata!.Arn! };
}

/** Resolves to the rejection's error, failing the test when the promise resolves. */
export async function failure(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try {
    await p;
  } catch (err) {
    return err as Error;
  }
  throw new Error('expected a rejection');
}
