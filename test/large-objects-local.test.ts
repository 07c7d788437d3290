import t from 'tap';
import { largeObjectScenarios, tooLargeScenario } from './support/large-object-scenarios';
import { localBackend } from './support/local-backend';

largeObjectScenarios(t, localBackend);
tooLargeScenario(t, localBackend);
