import t from 'tap';
import { concurrencyScenarios, concurrencySize } from './support/concurrency-scenarios';
import { recordFigures } from './support/reliability-report';
import { s3Backend } from './support/s3-backend';

// The full 8 x 25 runs on the local store in `npm test`; over S3 a smaller run keeps the suite
// within its time budget, and `npm run test:reliability` runs 16 x 50 here too.
t.test('concurrent pushes over S3 (Ceph RGW conditional writes)', async (tt) => {
  concurrencyScenarios(tt, await s3Backend(), (name, tally) => recordFigures(`S3, ${name}`, { ...tally }), concurrencySize(true));
});
