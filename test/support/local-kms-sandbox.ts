import type { Test } from 'tap';
import { Keyring } from '../../src/keys/keyring';
import { LocalKmsServer, startLocalKmsServer } from '../../src/keys/local-kms-server';
import { Sandbox } from './sandbox';

/**
 * A sandbox whose key provider is the AWS KMS provider, talking to a local KMS endpoint served
 * by the test process itself (so that a test can change the keyring behind it). KMSCRYPT_KEYRING
 * names the keyring it serves: the helper signs with the credentials beside it, as a user's would.
 */
export async function withLocalKms(t: Test): Promise<{ sb: Sandbox; server: LocalKmsServer; keyring: Keyring }> {
  const sb = new Sandbox(t);
  const keyring = new Keyring(sb.path('kms', 'keyring.json'));
  const server = await startLocalKmsServer({ port: 0, keyring });
  t.teardown(() => server.close());
  Object.assign(sb.env, {
    KMSCRYPT_KMS: 'aws',
    AWS_ENDPOINT_URL_KMS: server.url,
    AWS_REGION: server.region,
    KMSCRYPT_KEYRING: keyring.path,
  });
  return { sb, server, keyring };
}
