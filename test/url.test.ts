/** parseRemoteUrl (src/cli/url.ts): every URL form it accepts and every message it refuses with. */
import t from 'tap';
import { isKmscryptError } from '../src/errors';
import { parseRemoteUrl } from '../src/cli/url';

const cwd = '/home/user/work';

t.test('local directory forms', async (t) => {
  t.same(parseRemoteUrl('file:///srv/repos/a', cwd), { kind: 'local', path: '/srv/repos/a' });
  t.same(parseRemoteUrl('file:///srv/repos/a/', cwd), { kind: 'local', path: '/srv/repos/a' }, 'trailing slash');
  t.same(parseRemoteUrl('file:///srv/x/../y', cwd), { kind: 'local', path: '/srv/y' }, 'normalized');
  t.same(parseRemoteUrl('file:///srv/with%20space', cwd), { kind: 'local', path: '/srv/with space' }, 'percent-decoded');
  t.same(parseRemoteUrl('file://localhost/srv/repos/a', cwd), { kind: 'local', path: '/srv/repos/a' }, 'file://localhost/ is this machine');
  t.same(parseRemoteUrl('file://LocalHost/srv/a%20b', cwd), { kind: 'local', path: '/srv/a b' }, 'the host name in any case, the path percent-decoded');
  t.same(parseRemoteUrl('/abs/path', cwd), { kind: 'local', path: '/abs/path' });
  t.same(parseRemoteUrl('./rel', cwd), { kind: 'local', path: '/home/user/work/rel' });
  t.same(parseRemoteUrl('../up', cwd), { kind: 'local', path: '/home/user/up' });
  t.same(parseRemoteUrl('.', cwd), { kind: 'local', path: '/home/user/work' });
  t.same(parseRemoteUrl('..', cwd), { kind: 'local', path: '/home/user' });
  t.same(parseRemoteUrl('./Not_A_Bucket', cwd), { kind: 'local', path: '/home/user/work/Not_A_Bucket' });
});

t.test('S3 forms', async (t) => {
  t.same(parseRemoteUrl('s3://my-bucket', cwd), { kind: 's3', bucket: 'my-bucket', prefix: '', profile: undefined });
  t.same(parseRemoteUrl('s3://my-bucket/', cwd), { kind: 's3', bucket: 'my-bucket', prefix: '', profile: undefined });
  t.same(parseRemoteUrl('s3://my-bucket/team/repo.git', cwd), { kind: 's3', bucket: 'my-bucket', prefix: 'team/repo.git', profile: undefined });
  t.same(parseRemoteUrl('s3://my-bucket/team/repo//', cwd), { kind: 's3', bucket: 'my-bucket', prefix: 'team/repo', profile: undefined }, 'trailing slashes dropped');
  t.same(parseRemoteUrl('s3://work.profile_1+x@my.bucket.name/p', cwd), { kind: 's3', bucket: 'my.bucket.name', prefix: 'p', profile: 'work.profile_1+x' });
  t.same(parseRemoteUrl('s3://my-bucket/pre@fix', cwd), { kind: 's3', bucket: 'my-bucket', prefix: 'pre@fix', profile: undefined }, 'an @ after the first / is part of the prefix');
  t.same(parseRemoteUrl('s3://my-bucket/p?region=eu-west-1', cwd), { kind: 's3', bucket: 'my-bucket', prefix: 'p', profile: undefined, region: 'eu-west-1' });
  t.same(
    parseRemoteUrl('s3://prof@my-bucket?region=us-east-1&endpoint=http%3A%2F%2F127.0.0.1%3A7480', cwd),
    { kind: 's3', bucket: 'my-bucket', prefix: '', profile: 'prof', region: 'us-east-1', endpoint: 'http://127.0.0.1:7480' },
    'query parameters are percent-decoded',
  );
  t.same(parseRemoteUrl('my-bucket', cwd), { kind: 's3', bucket: 'my-bucket', prefix: '', profile: undefined }, 'a bare word is a bucket');
  t.same(parseRemoteUrl('my-bucket/a/b?endpoint=https://s3.example.com', cwd), {
    kind: 's3',
    bucket: 'my-bucket',
    prefix: 'a/b',
    profile: undefined,
    endpoint: 'https://s3.example.com',
  });
  t.same(parseRemoteUrl('abc', cwd), { kind: 's3', bucket: 'abc', prefix: '', profile: undefined }, 'a 3-character bucket');
  const b63 = 'a'.repeat(63);
  t.same(parseRemoteUrl(b63, cwd), { kind: 's3', bucket: b63, prefix: '', profile: undefined }, 'a 63-character bucket');
  t.equal((parseRemoteUrl('s3://b1-x?region=a&region=b', cwd) as { region?: string }).region, 'b', 'the last value of a repeated parameter wins');
});

/** The one-line message a user sees, or what was thrown instead of a BAD_URL error. */
function refusal(url: string): string {
  try {
    parseRemoteUrl(url, cwd);
    return 'accepted';
  } catch (err) {
    return isKmscryptError(err, 'BAD_URL') ? err.message : `not BAD_URL: ${String(err)}`;
  }
}

const refused: Array<[string, string]> = [
  ['', 'invalid kmscrypt URL "": it is empty; use kmscrypt::s3://bucket/prefix or kmscrypt::file:///path'],
  ['file://', 'invalid kmscrypt URL "file://": no path after file://'],
  ['file://localhost', 'invalid kmscrypt URL "file://localhost": no path after file://localhost'],
  // Two slashes: git reads "tmp" as a host name; a store is on this machine only.
  [
    'file://tmp/x',
    'invalid kmscrypt URL "file://tmp/x": file:// is followed by a host name, here "tmp"; for the absolute path /tmp/x write file:///tmp/x (three slashes), for a directory relative to here write ./tmp/x',
  ],
  [
    'file://server.example.com/srv/repo',
    'invalid kmscrypt URL "file://server.example.com/srv/repo": file:// is followed by a host name, here "server.example.com"; for the absolute path /server.example.com/srv/repo write file:///server.example.com/srv/repo (three slashes), for a directory relative to here write ./server.example.com/srv/repo',
  ],
  ['s3://bad profile@bucket', 'invalid kmscrypt URL "s3://bad profile@bucket": profile name "bad profile" is not valid'],
  ['s3://@bucket', 'invalid kmscrypt URL "s3://@bucket": profile name "" is not valid'],
  ['http://example.com/x', 'invalid kmscrypt URL "http://example.com/x": unsupported scheme http; use s3:// or file://'],
  ['S3://bucket', 'invalid kmscrypt URL "S3://bucket": unsupported scheme S3; use s3:// or file://'],
  ['file:/srv/x', 'invalid kmscrypt URL "file:/srv/x": unsupported scheme file; use s3:// or file://'],
  ['gs://bucket', 'invalid kmscrypt URL "gs://bucket": unsupported scheme gs; use s3:// or file://'],
  [
    'My_Repo',
    'invalid kmscrypt URL "My_Repo": "My_Repo" is not a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens); for a local directory write ./My_Repo or file:///absolute/path',
  ],
  ['s3://', 'invalid kmscrypt URL "s3://": "" is not a valid S3 bucket name (3-63 lowercase letters, digits, dots, hyphens); write s3://bucket/prefix'],
];

for (const [url, message] of refused) {
  t.test(`refused: ${JSON.stringify(url)}`, async (t) => {
    t.equal(refusal(url), message);
  });
}

const badBuckets = ['ab', 'a'.repeat(64), 'Bucket', '-bucket', 'bucket-', 'a..b', 'my_bucket', 'buck et', '.bucket'];
t.test('invalid bucket names', async (t) => {
  for (const bucket of badBuckets) {
    t.match(refusal(`s3://${bucket}/p`), `${JSON.stringify(bucket)} is not a valid S3 bucket name`, bucket);
    t.match(refusal(bucket), `${JSON.stringify(bucket)} is not a valid S3 bucket name`, `${bucket} (bare)`);
  }
});

t.test('invalid prefixes', async (t) => {
  for (const url of ['s3://bucket/a//b', 's3://bucket/./x', 's3://bucket/../x', 's3://bucket/a/..', 'bucket/a/./b', 's3://bucket//x']) {
    t.equal(refusal(url), `invalid kmscrypt URL ${JSON.stringify(url)}: the prefix has an empty, "." or ".." segment`, url);
  }
});

t.test('unknown query parameters', async (t) => {
  t.equal(refusal('s3://bucket?foo=1'), 'invalid kmscrypt URL "s3://bucket?foo=1": unknown parameter "foo"; known: region, endpoint');
  t.equal(refusal('bucket/p?region=x&profile=y'), 'invalid kmscrypt URL "bucket/p?region=x&profile=y": unknown parameter "profile"; known: region, endpoint');
  t.match(refusal('s3://bucket?region='), /^invalid kmscrypt URL "s3:\/\/bucket\?region=": /, 'an empty value is refused');
});

t.test('malformed percent-encoding is a BAD_URL error', async (t) => {
  t.match(refusal('file:///srv/%zz'), /^invalid kmscrypt URL/);
  t.match(refusal('s3://bucket?region=%E0%A4%A'), /^invalid kmscrypt URL/);
});
