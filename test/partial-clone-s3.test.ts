import t from 'tap';
import { partialCloneScenarios } from './support/partial-clone-scenarios';
import { withoutHelperCoverage } from './support/git-scenarios';
import { s3Backend } from './support/s3-backend';

t.test('partial clones over kmscrypt::s3:// (Ceph RGW) with the AWS KMS provider', async (tt) => {
  partialCloneScenarios(tt, withoutHelperCoverage(await s3Backend()));
});
