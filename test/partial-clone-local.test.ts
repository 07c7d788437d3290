import t from 'tap';
import { partialCloneScenarios } from './support/partial-clone-scenarios';
import { localStore } from './support/store-access';

partialCloneScenarios(t, { env: {}, newStore: async (sb, name) => localStore(sb.path(name)) });
