import t from 'tap';
import { concurrencyScenarios } from './support/concurrency-scenarios';
import { localStore } from './support/store-access';

concurrencyScenarios(t, { env: {}, newStore: async (sb, name) => localStore(sb.path(name)) });
