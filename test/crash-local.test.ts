import t from 'tap';
import { crashScenarios } from './support/crash-scenarios';
import { recordFigures } from './support/reliability-report';
import { localStore } from './support/store-access';

crashScenarios(t, { env: {}, newStore: async (sb, name) => localStore(sb.path(name)) }, 'local store', (name, tally) => recordFigures(name, tally));
