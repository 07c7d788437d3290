import { Keyring } from '../../src/keys/keyring';
import { LocalKeyProvider } from '../../src/keys/local-key-provider';
import { LocalStorage } from '../../src/storage/local-storage';
import { localStore } from './store-access';
import type { TamperBackend } from './tamper-scenarios';

/** The local directory store with the sandbox's keyring, for the shared scenarios. */
export const localBackend: TamperBackend = {
  env: {},
  newStore: async (sb, name) => localStore(sb.path(name)),
  createKey: async (sb, description) => `arn:aws:kms:local:000000000000:key/${new Keyring(sb.env.KMSCRYPT_KEYRING).createKey(description).keyId}`,
  remoteConfig: (sb, store) => ({
    url: store.url.replace(/^kmscrypt::/, ''),
    storage: new LocalStorage(store.url.replace('kmscrypt::file://', '')),
    keys: new LocalKeyProvider(new Keyring(sb.env.KMSCRYPT_KEYRING)),
    keyProvider: 'local',
  }),
};
