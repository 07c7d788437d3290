import t from 'tap';
import { crashScenarios, crashSize, killPointScenarios } from './support/crash-scenarios';
import { recordFigures } from './support/reliability-report';
import { s3Backend } from './support/s3-backend';

t.test('the helper killed during pushes, fetches and clones over S3 (Ceph RGW, AWS KMS provider)', async (tt) => {
  const backend = await s3Backend();
  crashScenarios(tt, backend, 'S3', (name, tally) => recordFigures(name, tally), crashSize(true));
  killPointScenarios(tt, backend, 'S3', (name, tally) => recordFigures(name, tally));
});
