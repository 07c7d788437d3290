import t from 'tap';
import { gitScenarios } from './support/git-scenarios';
import { s3Backend } from './support/s3-backend';

t.test('stock git over kmscrypt::s3:// (Ceph RGW) with the AWS KMS provider (local KMS endpoint)', async (tt) => {
  gitScenarios(tt, await s3Backend());
});
