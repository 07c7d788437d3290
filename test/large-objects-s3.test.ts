import t from 'tap';
import { largeObjectScenarios } from './support/large-object-scenarios';
import { withoutHelperCoverage } from './support/git-scenarios';
import { s3Backend } from './support/s3-backend';

t.test('large objects over S3 (Ceph RGW, multipart uploads and ranged reads)', async (tt) => {
  largeObjectScenarios(tt, withoutHelperCoverage(await s3Backend()));
});
