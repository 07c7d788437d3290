import t from 'tap';
import { semanticsScenarios } from './support/semantics-scenarios';
import { withoutHelperCoverage } from './support/git-scenarios';
import { s3Backend } from './support/s3-backend';

t.test('git semantics over kmscrypt::s3:// (Ceph RGW) with the AWS KMS provider (local KMS endpoint), compared with a bare repository', async (tt) => {
  semanticsScenarios(tt, withoutHelperCoverage(await s3Backend()));
});
