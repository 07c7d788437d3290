import t from 'tap';
import { recordFigures } from './support/reliability-report';
import { withoutHelperCoverage } from './support/git-scenarios';
import { s3Backend } from './support/s3-backend';
import { tamperScenarios } from './support/tamper-scenarios';

t.test('tampering with an S3 store (Ceph RGW) is detected', async (tt) => {
  tamperScenarios(tt, withoutHelperCoverage(await s3Backend()), (name, figures) => recordFigures(`S3, ${name}`, figures));
});
