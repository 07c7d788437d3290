import t from 'tap';
import { shallowCloneScenarios } from './support/shallow-clone-scenarios';
import { localStore } from './support/store-access';

shallowCloneScenarios(t, { env: {}, newStore: async (sb, name) => localStore(sb.path(name)) });
