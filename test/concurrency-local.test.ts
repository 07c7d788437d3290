import t from 'tap';
import { concurrencyScenarios } from './support/concurrency-scenarios';
import { recordFigures } from './support/reliability-report';
import { localStore } from './support/store-access';

concurrencyScenarios(t, { env: {}, newStore: async (sb, name) => localStore(sb.path(name)) }, (name, tally) => recordFigures(`local store, ${name}`, { ...tally }));
