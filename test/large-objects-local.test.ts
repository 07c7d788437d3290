import t from 'tap';
import { Keyring } from '../src/keys/keyring';
import { LocalKeyProvider } from '../src/keys/local-key-provider';
import { LocalStorage } from '../src/storage/local-storage';
import { largeObjectScenarios, tooLargeScenario } from './support/large-object-scenarios';
import { localStore } from './support/store-access';
import type { TamperBackend } from './support/tamper-scenarios';

const backend: TamperBackend = {
  env: {},
  newStore: async (sb, name) => localStore(sb.path(name)),
  remoteConfig: (sb, store) => ({
    url: store.url,
    storage: new LocalStorage(store.url.replace('kmscrypt::file://', '')),
    keys: new LocalKeyProvider(new Keyring(sb.env.KMSCRYPT_KEYRING)),
    keyProvider: 'local',
  }),
};
largeObjectScenarios(t, backend);
tooLargeScenario(t, backend);
