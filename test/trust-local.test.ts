import t from 'tap';
import { localBackend } from './support/local-backend';
import { trustScenarios } from './support/trust-scenarios';

trustScenarios(t, localBackend);
