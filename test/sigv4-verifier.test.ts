import t from 'tap';
import { DecryptCommand, GenerateDataKeyCommand, ListKeysCommand } from '@aws-sdk/client-kms';
import { SigV4Expectations, SignedRequest, verifySigV4 } from '../src/keys/sigv4-verifier';
import { CapturedRequest, signedRequest } from './support/signed-request';

// The example credentials of AWS's SigV4 test suite.
const CREDENTIALS = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const ENDPOINT = 'http://127.0.0.1:4599';

function request(captured: CapturedRequest, change: { headers?: Record<string, string | undefined>; body?: string } = {}): SignedRequest {
  const headers: Record<string, string | undefined> = { ...captured.headers, ...change.headers };
  const rawHeaders = Object.entries(headers).flatMap(([name, value]) => (value === undefined ? [] : [name, value]));
  return { method: 'POST', path: '/', query: '', rawHeaders, body: Buffer.from(change.body ?? captured.body, 'utf8') };
}

function expectations(signedAt: Date, change: Partial<SigV4Expectations> = {}): SigV4Expectations {
  return {
    region: 'us-east-1',
    service: 'kms',
    now: signedAt,
    secretFor: (id) => (id === CREDENTIALS.accessKeyId ? CREDENTIALS.secretAccessKey : undefined),
    ...change,
  };
}

function signedAt(captured: CapturedRequest): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(captured.headers['x-amz-date'])!;
  return new Date(Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]));
}

t.test("AWS's published test vectors verify", async (t) => {
  const at = new Date('2015-08-30T12:36:00Z');
  const vector = (method: string, query: string, signature: string): SignedRequest => ({
    method,
    path: '/',
    query,
    rawHeaders: [
      'Host', 'example.amazonaws.com',
      'X-Amz-Date', '20150830T123600Z',
      'Authorization', `AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=${signature}`,
    ],
    body: Buffer.alloc(0),
  });
  const expect = expectations(at, { service: 'service' });
  t.same(verifySigV4(vector('GET', '', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'), expect), { ok: true, accessKeyId: 'AKIDEXAMPLE' }, 'get-vanilla');
  t.same(verifySigV4(vector('POST', '', '5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b'), expect), { ok: true, accessKeyId: 'AKIDEXAMPLE' }, 'post-vanilla');
  t.same(
    verifySigV4(vector('GET', 'Param2=value2&Param1=value1', 'b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500'), expect),
    { ok: true, accessKeyId: 'AKIDEXAMPLE' },
    'get-vanilla-query-order-key-case',
  );
  t.equal(verifySigV4(vector('PUT', '', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'), expect).ok, false, 'the method is signed');
});

t.test('requests signed by @aws-sdk/client-kms verify, and any change to what was signed is refused', async (t) => {
  const commands = [
    new ListKeysCommand({}),
    new GenerateDataKeyCommand({ KeyId: 'alias/kmscrypt', KeySpec: 'AES_256', EncryptionContext: { 'kmscrypt:repository-id': 'r-1', 'ünïcode': 'välue' } }),
    new DecryptCommand({ CiphertextBlob: Buffer.from('0123456789abcdef'), EncryptionContext: { 'kmscrypt:repository-id': 'r-1' } }),
  ];
  for (const command of commands) {
    const name = command.constructor.name;
    const captured = await signedRequest(ENDPOINT, CREDENTIALS, command);
    const at = signedAt(captured);
    t.same(verifySigV4(request(captured), expectations(at)), { ok: true, accessKeyId: CREDENTIALS.accessKeyId }, `${name} as signed`);
    t.same(verifySigV4(request(captured, { headers: { 'user-agent': 'curl/8' } }), expectations(at)).ok, true, `${name}: an unsigned header may change`);
    t.same(verifySigV4(request(captured, { headers: { 'X-Extra': 'added' } }), expectations(at)).ok, true, `${name}: an unsigned header may be added`);

    const refusal = (req: SignedRequest, expect = expectations(at)) => {
      const result = verifySigV4(req, expect);
      return result.ok ? 'accepted' : result.type;
    };
    const body = captured.body;
    const flipped = body.slice(0, -2) + (body.at(-2) === 'a' ? 'b' : 'a') + body.slice(-1);
    t.equal(refusal(request(captured, { body: flipped })), 'InvalidSignatureException', `${name}: one character of the body changed`);
    t.equal(refusal(request(captured, { headers: { 'x-amz-target': 'TrentService.DisableKey' } })), 'InvalidSignatureException', `${name}: the operation changed`);
    t.equal(refusal(request(captured, { headers: { host: '127.0.0.1:4600' } })), 'InvalidSignatureException', `${name}: the host changed`);
    t.equal(refusal({ ...request(captured), method: 'PUT' }), 'InvalidSignatureException', `${name}: the method changed`);
    t.equal(refusal({ ...request(captured), path: '/other' }), 'InvalidSignatureException', `${name}: the path changed`);
    t.equal(refusal(request(captured), expectations(at, { secretFor: () => 'another secret' })), 'InvalidSignatureException', `${name}: another secret`);
    t.equal(refusal(request(captured), expectations(at, { secretFor: () => undefined })), 'UnrecognizedClientException', `${name}: an unknown access key`);
    t.equal(refusal(request(captured), expectations(at, { region: 'eu-west-1' })), 'InvalidSignatureException', `${name}: signed for another region`);
    t.equal(refusal(request(captured), expectations(at, { service: 's3' })), 'InvalidSignatureException', `${name}: signed for another service`);
  }
});

t.test('the signature is checked in full and the authorization header must be well formed', async (t) => {
  const captured = await signedRequest(ENDPOINT, CREDENTIALS, new ListKeysCommand({}));
  const at = signedAt(captured);
  const auth = captured.headers.authorization;
  const withAuth = (authorization: string | undefined) => verifySigV4(request(captured, { headers: { authorization } }), expectations(at));
  const signature = /Signature=([0-9a-f]{64})$/.exec(auth)![1];
  const lastFlipped = signature.slice(0, -1) + (signature.at(-1) === '0' ? '1' : '0');
  t.match(withAuth(auth.replace(signature, lastFlipped)), { ok: false, type: 'InvalidSignatureException' }, 'the last hex digit changed');
  t.match(withAuth(auth.replace(signature, signature.slice(0, 63))), { ok: false, type: 'InvalidSignatureException' }, 'one digit short');
  t.match(withAuth(auth.replace(signature, signature.toUpperCase())), { ok: false, type: 'InvalidSignatureException' }, 'upper-case hex');
  t.match(withAuth(undefined), { ok: false, type: 'MissingAuthenticationTokenException', message: 'Missing Authentication Token' }, 'no Authorization');
  t.match(withAuth('AWS4-HMAC-SHA256 anything'), { ok: false, type: 'IncompleteSignatureException' }, 'no parts');
  t.match(withAuth(auth.replace('AWS4-HMAC-SHA256', 'AWS4-HMAC-SHA512')), { ok: false, type: 'IncompleteSignatureException' }, 'another algorithm');
  t.match(withAuth(auth.replace('/aws4_request', '/aws5_request')), { ok: false, type: 'IncompleteSignatureException' }, 'another terminator');
  t.match(withAuth(auth.replace(/SignedHeaders=[^,]+/, 'SignedHeaders=content-type;x-amz-date;x-amz-target')), { ok: false, type: 'InvalidSignatureException', message: "'Host' must be a 'SignedHeader' in the AWS Authorization." }, 'host not signed');
  t.match(withAuth(auth.replace(/SignedHeaders=[^,]+/, 'SignedHeaders=host;content-type')), { ok: false, type: 'InvalidSignatureException' }, 'headers not sorted');
  t.match(verifySigV4(request(captured, { headers: { 'x-amz-security-token': 'session' } }), expectations(at)), { ok: false, type: 'UnrecognizedClientException' }, 'a session token local-kms never issued');
  t.match(verifySigV4(request(captured, { headers: { 'x-amz-date': undefined } }), expectations(at)), { ok: false, type: 'IncompleteSignatureException' }, 'no X-Amz-Date');
});

t.test('the signing time must be within 15 minutes of now, as AWS requires', async (t) => {
  const captured = await signedRequest(ENDPOINT, CREDENTIALS, new ListKeysCommand({}));
  const at = signedAt(captured).getTime();
  const at_ = (minutes: number) => verifySigV4(request(captured), expectations(new Date(at + minutes * 60_000)));
  t.equal(at_(14).ok, true, 'verified 14 minutes later');
  t.equal(at_(-14).ok, true, 'verified 14 minutes earlier (a client clock ahead)');
  t.match(at_(16), { ok: false, type: 'InvalidSignatureException', message: /^Signature expired: \d{8}T\d{6}Z is now earlier than / }, '16 minutes later');
  t.match(at_(-16), { ok: false, type: 'InvalidSignatureException', message: /^Signature not yet current: \d{8}T\d{6}Z is still later than / }, '16 minutes earlier');
  const oldScope = captured.headers.authorization.replace(/Credential=([^/]+)\/\d{8}\//, 'Credential=$1/20200101/');
  t.match(
    verifySigV4(request(captured, { headers: { authorization: oldScope } }), expectations(new Date(at))),
    { ok: false, type: 'InvalidSignatureException', message: /^Date in Credential scope does not match/ },
    'a credential scope of another day',
  );
});
