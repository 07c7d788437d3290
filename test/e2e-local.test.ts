import t from 'tap';
import { gitScenarios } from './support/git-scenarios';
import { localStore } from './support/store-access';

gitScenarios(t, {
  env: {},
  newStore: async (sb, name) => localStore(sb.path(name)),
});
