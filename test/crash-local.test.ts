import t from 'tap';
import { crashScenarios, killPointScenarios } from './support/crash-scenarios';
import type { ScenarioBackend } from './support/git-scenarios';
import { recordFigures } from './support/reliability-report';
import { localStore } from './support/store-access';

const backend: ScenarioBackend = { env: {}, newStore: async (sb, name) => localStore(sb.path(name)) };
crashScenarios(t, backend, 'local store', (name, tally) => recordFigures(name, tally));
killPointScenarios(t, backend, 'local store', (name, tally) => recordFigures(name, tally));
