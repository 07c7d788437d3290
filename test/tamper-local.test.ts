import t from 'tap';
import { localBackend } from './support/local-backend';
import { tamperScenarios } from './support/tamper-scenarios';

tamperScenarios(t, localBackend);
