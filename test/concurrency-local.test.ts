import t from 'tap';
import { concurrencyScenarios } from './support/concurrency-scenarios';
import { localBackend } from './support/local-backend';
import { recordFigures } from './support/reliability-report';

concurrencyScenarios(t, localBackend, (name, tally) => recordFigures(`local store, ${name}`, { ...tally }));
