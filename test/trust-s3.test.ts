import t from 'tap';
import { withoutHelperCoverage } from './support/git-scenarios';
import { s3Backend } from './support/s3-backend';
import { trustScenarios } from './support/trust-scenarios';

t.test('the store cannot choose identity, fork history or name a key: S3 (Ceph RGW) with the AWS KMS provider', async (tt) => {
  trustScenarios(tt, withoutHelperCoverage(await s3Backend()));
});
