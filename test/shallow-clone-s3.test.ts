import t from 'tap';
import { withoutHelperCoverage } from './support/git-scenarios';
import { s3Backend } from './support/s3-backend';
import { shallowCloneScenarios } from './support/shallow-clone-scenarios';

t.test('shallow clones and fetches over kmscrypt::s3:// (Ceph RGW) with the AWS KMS provider', async (tt) => {
  shallowCloneScenarios(tt, withoutHelperCoverage(await s3Backend()));
});
