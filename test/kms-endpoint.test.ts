import t, { Test } from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { checkEndpointSecurity, refusePlainHttpRequest } from '../src/endpoint-security';
import { Sandbox } from './support/sandbox';

// Addresses outside this machine appear only in endpoints that must be refused before any
// connection: nothing here sends a packet anywhere but loopback.
const REMOTE = 'http://10.1.2.3:4599';

function fatalLines(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l.startsWith('fatal:'));
}

/** A sandbox that pushes a one-commit repository to a local store, with AWS KMS as key provider. */
function world(t: Test): { sb: Sandbox; src: string; store: string } {
  const sb = new Sandbox(t, { KMSCRYPT_KMS: 'aws', AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'x'.repeat(40) });
  sb.env.AWS_CONFIG_FILE = sb.path('home', '.aws', 'config');
  sb.env.AWS_SHARED_CREDENTIALS_FILE = sb.path('home', '.aws', 'credentials');
  sb.env.AWS_EC2_METADATA_DISABLED = 'true';
  for (const name of ['AWS_ENDPOINT_URL', 'AWS_ENDPOINT_URL_KMS', 'AWS_ENDPOINT_URL_S3', 'AWS_PROFILE', 'AWS_IGNORE_CONFIGURED_ENDPOINT_URLS']) delete sb.env[name];
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  return { sb, src, store: sb.path('store') };
}

t.test('a plain-HTTP KMS endpoint across the network is one fatal line naming where it came from', async (t) => {
  const { sb, src, store } = world(t);
  const cases = [
    { label: 'AWS_ENDPOINT_URL_KMS', env: { AWS_ENDPOINT_URL_KMS: REMOTE }, args: [] },
    { label: 'AWS_ENDPOINT_URL', env: { AWS_ENDPOINT_URL: REMOTE }, args: [] },
    { label: 'kmscrypt.kmsEndpoint', env: {}, args: ['-c', `kmscrypt.kmsEndpoint=${REMOTE}`] },
  ];
  for (const c of cases) {
    const r = sb.run('git', [...c.args, 'push', `kmscrypt::${store}`, 'main'], { cwd: src, env: c.env, expectFailure: true });
    const lines = fatalLines(r.stderr);
    t.equal(lines.length, 1, `${c.label}: one fatal line`, { stderr: r.stderr });
    t.equal(
      lines[0],
      `fatal: kmscrypt: refusing plain-HTTP KMS endpoint ${REMOTE} (from ${c.label}): its answers carry plaintext data keys, which would cross the network unencrypted; ` +
        'use https://, or set kmscrypt.allowHttp=true to accept that (it allows plain HTTP to both the S3 and the KMS endpoint)',
      `${c.label}: names the setting and the fix`,
    );
    t.notOk(existsSync(store), `${c.label}: nothing was created`);
  }
  const doctor = sb.run('git', ['kmscrypt', 'doctor', `kmscrypt::${store}`, '--json'], { env: { AWS_ENDPOINT_URL_KMS: REMOTE }, expectFailure: true });
  const row = (JSON.parse(doctor.stdout) as { checks: { name: string; status: string; detail: string; fix?: string }[] }).checks.find((c) => c.name === 'kms https');
  t.match(row, { status: 'FAIL', detail: `${REMOTE} (from AWS_ENDPOINT_URL_KMS): plain HTTP across the network is refused`, fix: /kmscrypt\.allowHttp=true \(S3 and KMS\)/ }, 'doctor has a row for it');
});

t.test('an endpoint_url in the AWS config file obeys the same rule, before any request leaves', async (t) => {
  const { sb, src, store } = world(t);
  sb.run('mkdir', ['-p', sb.path('home', '.aws')]);
  writeFileSync(sb.env.AWS_CONFIG_FILE!, `[default]\nregion = us-east-1\nendpoint_url = ${REMOTE}\n`);
  const r = sb.run('git', ['push', `kmscrypt::${store}`, 'main'], { cwd: src, expectFailure: true });
  const lines = fatalLines(r.stderr);
  t.equal(lines.length, 1, 'one fatal line', { stderr: r.stderr });
  t.match(lines[0], /^fatal: kmscrypt: refusing plain-HTTP KMS request to 10\.1\.2\.3, an endpoint the AWS SDK found by itself \(endpoint_url in the AWS config file\): its answers carry plaintext data keys/);
  t.match(lines[0], /or set kmscrypt\.allowHttp=true to accept that \(it allows plain HTTP to both the S3 and the KMS endpoint\)$/);
  t.notOk(existsSync(store), 'nothing was created');
});

t.test('loopback is accepted over plain HTTP; kmscrypt.allowHttp accepts the rest with a warning', async (t) => {
  for (const ok of ['https://kms.example.com', 'http://127.0.0.1:4599', 'http://localhost:4599', 'http://[::1]:4599']) {
    t.doesNotThrow(() => checkEndpointSecurity(ok, false, () => t.fail('no warning'), { service: 'KMS', source: 'AWS_ENDPOINT_URL_KMS' }), ok);
  }
  const warnings: string[] = [];
  checkEndpointSecurity(REMOTE, true, (line) => warnings.push(line), { service: 'KMS', source: 'AWS_ENDPOINT_URL_KMS' });
  t.same(warnings, [`warning: kmscrypt: using plain-HTTP KMS endpoint ${REMOTE} because kmscrypt.allowHttp is set; data keys are not protected in transit`]);
  for (const bad of ['ftp://kms.example.com', 'not a url']) {
    t.throws(() => checkEndpointSecurity(bad, true, undefined, { service: 'KMS', source: 'kmscrypt.kmsEndpoint' }), { code: 'BAD_CONFIG', message: /\(from kmscrypt\.kmsEndpoint\)/ }, bad);
  }
});

t.test('the per-request guard: plain HTTP across the network only with allowHttp', async (t) => {
  const request = (protocol: string, hostname: string) => ({ protocol, hostname });
  t.throws(() => refusePlainHttpRequest('KMS', request('http:', '10.1.2.3'), false), { code: 'BAD_CONFIG', message: /^refusing plain-HTTP KMS request to 10\.1\.2\.3/ });
  t.doesNotThrow(() => refusePlainHttpRequest('KMS', request('http:', '10.1.2.3'), true), 'allowed with allowHttp');
  t.doesNotThrow(() => refusePlainHttpRequest('KMS', request('http:', '127.0.0.1'), false), 'loopback');
  t.doesNotThrow(() => refusePlainHttpRequest('KMS', request('https:', 'kms.example.com'), false), 'HTTPS');
});
