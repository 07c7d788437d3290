import t from 'tap';
import { Keyring } from '../src/keys/keyring';
import { LocalKeyProvider } from '../src/keys/local-key-provider';
import { LocalStorage } from '../src/storage/local-storage';
import { localStore } from './support/store-access';
import { tamperScenarios } from './support/tamper-scenarios';

tamperScenarios(t, {
  env: {},
  newStore: async (sb, name) => localStore(sb.path(name)),
  remoteConfig: (sb, store) => ({
    url: store.url,
    storage: new LocalStorage(store.url.replace('kmscrypt::file://', '')),
    keys: new LocalKeyProvider(new Keyring(sb.env.KMSCRYPT_KEYRING)),
    keyProvider: 'local',
  }),
});
