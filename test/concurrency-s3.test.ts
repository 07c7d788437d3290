import t from 'tap';
import { concurrencyScenarios, concurrencySize } from './support/concurrency-scenarios';
import { recordFigures } from './support/reliability-report';
import { s3Backend } from './support/s3-backend';

// Over S3 `npm test` runs a smaller size than on the local store (concurrencySize), to keep the
// suite within its time budget; `npm run test:reliability` runs 16 x 50 here too.
t.test('concurrent pushes over S3 (Ceph RGW conditional writes)', async (tt) => {
  concurrencyScenarios(tt, await s3Backend(), (name, tally) => recordFigures(`S3, ${name}`, { ...tally }), concurrencySize(true));
});
