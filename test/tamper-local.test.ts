import t from 'tap';
import { localBackend } from './support/local-backend';
import { recordFigures } from './support/reliability-report';
import { tamperScenarios } from './support/tamper-scenarios';

tamperScenarios(t, localBackend, (name, figures) => recordFigures(`local store, ${name}`, figures));
