import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { type RunResult, Sandbox } from './support/sandbox';

/**
 * A TLS mismatch with the S3 or the KMS endpoint (src/tls-failure.ts) is one line naming the
 * endpoint, the cause and the fix, not Node's own message: a self-signed certificate, one for
 * another host name, and a plain-HTTP server behind an https:// URL. The servers are in-process
 * and answer nothing useful: the handshake is what is tested.
 */

function listen(server: Server, t: { teardown(fn: () => void): void }): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
    t.teardown(() => server.close());
  });
}

function fatalLines(r: RunResult): string[] {
  return r.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
}

t.test('TLS mismatches with the S3 and the KMS endpoint: one line each, naming endpoint, cause and fix', async (tt) => {
  const sb = new Sandbox(tt, { AWS_ACCESS_KEY_ID: 'AKIDEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_REGION: 'us-east-1' });
  // A self-signed certificate for a host name that is not 127.0.0.1.
  const key = sb.path('key.pem');
  const cert = sb.path('cert.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '2',
      '-subj',
      '/CN=other.example',
      '-addext',
      'subjectAltName=DNS:other.example',
    ],
    { stdio: 'ignore' },
  );
  const answer = (_req: unknown, res: { writeHead(n: number): void; end(): void }) => {
    res.writeHead(500);
    res.end();
  };
  const tlsPort = await listen(createHttpsServer({ key: readFileSync(key), cert: readFileSync(cert) }, answer), tt);
  const plainPort = await listen(createHttpServer(answer), tt);
  const src = sb.repo('src');
  const ls = (url: string, env: NodeJS.ProcessEnv) => sb.runAsync(['git', 'ls-remote', url], { cwd: src, env, expectFailure: true });
  const trust = 'if the server uses a private certificate authority, give its certificate to Node.js: NODE_EXTRA_CA_CERTS=/path/to/ca.pem';

  const selfSigned = await ls('kmscrypt::s3://bucket-x/p', { AWS_ENDPOINT_URL_S3: `https://127.0.0.1:${tlsPort}` });
  tt.same(fatalLines(selfSigned), [
    `fatal: kmscrypt: cannot connect securely to S3 endpoint https://127.0.0.1:${tlsPort} (from AWS_ENDPOINT_URL_S3): its certificate is self-signed (DEPTH_ZERO_SELF_SIGNED_CERT); ${trust}`,
  ]);
  tt.equal(selfSigned.status, 128);

  const otherHost = await ls('kmscrypt::s3://bucket-x/p', { AWS_ENDPOINT_URL_S3: `https://127.0.0.1:${tlsPort}`, NODE_EXTRA_CA_CERTS: cert });
  tt.same(
    fatalLines(otherHost),
    [
      `fatal: kmscrypt: cannot connect securely to S3 endpoint https://127.0.0.1:${tlsPort} (from AWS_ENDPOINT_URL_S3): its certificate is for another host name (DNS:other.example) (ERR_TLS_CERT_ALTNAME_INVALID); write the endpoint with a host name the certificate names`,
    ],
    'trusted (NODE_EXTRA_CA_CERTS), but for another name',
  );
  tt.equal(otherHost.status, 128);

  const notTls = await ls('kmscrypt::s3://bucket-x/p', { AWS_ENDPOINT_URL_S3: `https://127.0.0.1:${plainPort}` });
  tt.same(fatalLines(notTls), [
    `fatal: kmscrypt: cannot connect securely to S3 endpoint https://127.0.0.1:${plainPort} (from AWS_ENDPOINT_URL_S3): it does not answer in TLS (EPROTO: wrong version number); if the server speaks plain HTTP, write its endpoint with http:// (accepted on loopback, or with kmscrypt.allowHttp=true)`,
  ]);
  tt.equal(notTls.status, 128);

  // KMS: a repository whose keys are asked of AWS KMS at a self-signed endpoint.
  const store = sb.path('store');
  sb.commit(src, { 'a.txt': 'a\n' }, 'one');
  sb.git(src, 'push', '-q', `kmscrypt::${store}`, 'main');
  const kms = await ls(`kmscrypt::${store}`, { KMSCRYPT_KMS: 'aws', AWS_ENDPOINT_URL_KMS: `https://127.0.0.1:${tlsPort}` });
  const lines = fatalLines(kms);
  tt.equal(lines.length, 1, 'KMS: one line', { stderr: kms.stderr });
  tt.equal(kms.status, 128);
  tt.match(
    lines[0] ?? '',
    `: cannot connect securely to the KMS endpoint https://127.0.0.1:${tlsPort}: its certificate is self-signed (DEPTH_ZERO_SELF_SIGNED_CERT); ${trust}`,
  );
  tt.notMatch(kms.stderr + selfSigned.stderr + otherHost.stderr + notTls.stderr, /^\s+at |node:internal/m, 'no stack trace anywhere');
});
