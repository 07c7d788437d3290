/**
 * The remote-helper conversation (src/protocol/helper-protocol.ts, gitremote-helpers(7)) driven
 * through streams with a fake backend: what git sends in, exactly what comes out, and which
 * backend calls are made.
 */
import t from 'tap';
import { PassThrough } from 'node:stream';
import { isKmscryptError } from '../src/errors';
import { FetchRequest, HelperBackend, OptionAnswer, PushRequest, runHelperProtocol } from '../src/protocol/helper-protocol';

const A = 'a'.repeat(40);
const B = 'b'.repeat(40);
const C = 'c'.repeat(64);

class FakeBackend implements HelperBackend {
  readonly calls: string[] = [];
  readonly fetches: FetchRequest[][] = [];
  readonly pushes: PushRequest[][] = [];
  readonly options: Array<[string, string]> = [];

  capabilities(): string[] {
    this.calls.push('capabilities');
    return ['fetch', 'push', 'option', 'object-format'];
  }

  async option(name: string, value: string): Promise<OptionAnswer> {
    this.calls.push('option');
    this.options.push([name, value]);
    if (name === 'progress' || name === 'cas') return 'ok';
    if (name === 'depth') return { error: 'shallow clones are not supported' };
    return 'unsupported';
  }

  async list(forPush: boolean): Promise<string[]> {
    this.calls.push(forPush ? 'list for-push' : 'list');
    return ['@refs/heads/main HEAD', `${A} refs/heads/main`, `${B} refs/tags/v1`];
  }

  async fetch(batch: FetchRequest[]): Promise<string[]> {
    this.calls.push('fetch');
    this.fetches.push(batch);
    return ['lock /tmp/pack-1.keep'];
  }

  async push(batch: PushRequest[]): Promise<string[]> {
    this.calls.push('push');
    this.pushes.push(batch);
    return batch.map((p) => (p.dst === 'refs/heads/rejected' ? `error ${p.dst} non-fast-forward` : `ok ${p.dst}`));
  }
}

/** Runs a whole conversation; `chunk` splits the input into pieces of that many bytes. */
async function converse(input: string, chunk = input.length || 1): Promise<{ output: string; backend: FakeBackend; error?: unknown }> {
  const backend = new FakeBackend();
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  let output = '';
  stdout.on('data', (b: Buffer) => (output += b.toString('utf8')));
  const done = runHelperProtocol(stdin, stdout, backend).then(
    () => undefined,
    (err: unknown) => err,
  );
  for (let p = 0; p < input.length; p += chunk) stdin.write(input.slice(p, p + chunk));
  stdin.end();
  const error = await done;
  return { output, backend, error };
}

t.test('capabilities are answered one per line, then a blank line', async (t) => {
  const { output, backend, error } = await converse('capabilities\n\n');
  t.equal(error, undefined);
  t.equal(output, 'fetch\npush\noption\nobject-format\n\n');
  t.same(backend.calls, ['capabilities']);
});

t.test('option answers: ok, unsupported, error', async (t) => {
  const { output, backend } = await converse(
    'option progress true\noption verbosity 2\noption depth 1\noption cas refs/heads/main:' + A + '\noption followtags\n\n',
  );
  t.equal(output, 'ok\nunsupported\nerror shallow clones are not supported\nok\nunsupported\n');
  t.same(backend.options, [
    ['progress', 'true'],
    ['verbosity', '2'],
    ['depth', '1'],
    ['cas', `refs/heads/main:${A}`],
    ['followtags', ''],
  ]);
});

t.test('an option value keeps its spaces', async (t) => {
  const { backend } = await converse('option pushcert some value with spaces\n\n');
  t.same(backend.options, [['pushcert', 'some value with spaces']]);
});

t.test('list and list for-push answer the ref lines and a blank line', async (t) => {
  const refs = `@refs/heads/main HEAD\n${A} refs/heads/main\n${B} refs/tags/v1\n\n`;
  const { output, backend } = await converse('list\nlist for-push\n\n');
  t.equal(output, refs + refs);
  t.same(backend.calls, ['list', 'list for-push']);
});

t.test('a fetch batch is handled once, with every line of the batch', async (t) => {
  const { output, backend, error } = await converse(`list\nfetch ${A} refs/heads/main\nfetch ${B} refs/tags/v1\nfetch ${A} refs/heads/other\n\n\n`);
  t.equal(error, undefined);
  t.same(backend.calls, ['list', 'fetch']);
  t.same(backend.fetches, [
    [
      { oid: A, name: 'refs/heads/main' },
      { oid: B, name: 'refs/tags/v1' },
      { oid: A, name: 'refs/heads/other' },
    ],
  ]);
  t.match(output, /\n\nlock \/tmp\/pack-1\.keep\n\n$/, 'the batch is answered, then a blank line');
});

t.test('fetch lines of a SHA-256 repository', async (t) => {
  const { backend } = await converse(`fetch ${C} refs/heads/main\n\n`);
  t.same(backend.fetches, [[{ oid: C, name: 'refs/heads/main' }]]);
});

t.test('two fetch batches are two calls', async (t) => {
  const { backend } = await converse(`fetch ${A} refs/heads/a\n\nfetch ${B} refs/heads/b\n\n\n`);
  t.same(backend.fetches, [[{ oid: A, name: 'refs/heads/a' }], [{ oid: B, name: 'refs/heads/b' }]]);
});

t.test('a push batch is handled once: force, deletion and plain updates', async (t) => {
  const input =
    'list for-push\npush refs/heads/main:refs/heads/main\npush +refs/heads/x:refs/heads/rejected\npush :refs/heads/gone\npush +:refs/heads/gone2\n\n\n';
  const { output, backend, error } = await converse(input);
  t.equal(error, undefined);
  t.same(backend.calls, ['list for-push', 'push']);
  t.same(backend.pushes, [
    [
      { src: 'refs/heads/main', dst: 'refs/heads/main', force: false },
      { src: 'refs/heads/x', dst: 'refs/heads/rejected', force: true },
      { src: '', dst: 'refs/heads/gone', force: false },
      { src: '', dst: 'refs/heads/gone2', force: true },
    ],
  ]);
  t.match(output, /\n\nok refs\/heads\/main\nerror refs\/heads\/rejected non-fast-forward\nok refs\/heads\/gone\nok refs\/heads\/gone2\n\n$/);
});

t.test('a blank line ends the session: nothing after it is read', async (t) => {
  const { output, backend, error } = await converse('capabilities\n\ncapabilities\nbogus\n');
  t.equal(error, undefined, 'not even an unknown command after it');
  t.same(backend.calls, ['capabilities']);
  t.equal(output, 'fetch\npush\noption\nobject-format\n\n');
});

t.test('the backend hears when the session ends, by a blank line or end of input, and not after an error', async (t) => {
  class EndingBackend extends FakeBackend {
    async end(): Promise<void> {
      this.calls.push('end');
    }
  }
  for (const [input, calls] of [
    ['capabilities\n\n', ['capabilities', 'end']],
    ['capabilities\n', ['capabilities', 'end']],
    ['bogus\n', []],
  ] as const) {
    const backend = new EndingBackend();
    const stdin = new PassThrough();
    const done = runHelperProtocol(stdin, new PassThrough(), backend).catch(() => undefined);
    stdin.end(input);
    await done;
    t.same(backend.calls, calls, JSON.stringify(input));
  }
});

t.test('end of input ends the session', async (t) => {
  const r1 = await converse('');
  t.equal(r1.error, undefined);
  t.equal(r1.output, '');
  const r2 = await converse('capabilities\n');
  t.equal(r2.error, undefined);
  t.same(r2.backend.calls, ['capabilities']);
  const r3 = await converse('capabilities', 3);
  t.same(r3.backend.calls, ['capabilities'], 'a last line without a newline still counts');
  const r4 = await converse(`push refs/heads/a:refs/heads/a\npush refs/heads/b:refs/heads/b`);
  t.same(
    r4.backend.pushes,
    [
      [
        { src: 'refs/heads/a', dst: 'refs/heads/a', force: false },
        { src: 'refs/heads/b', dst: 'refs/heads/b', force: false },
      ],
    ],
    'a batch cut by end of input is handled once',
  );
});

t.test('lines split across chunks are reassembled', async (t) => {
  const input = `capabilities\noption progress true\nfetch ${A} refs/heads/main\nfetch ${B} refs/heads/other\n\nlist\n\n`;
  const whole = await converse(input);
  for (const chunk of [1, 2, 7, 50]) {
    const r = await converse(input, chunk);
    t.equal(r.output, whole.output, `chunks of ${chunk}`);
    t.same(r.backend.fetches, whole.backend.fetches);
  }
});

const protocolErrors: Array<[string, string, RegExp]> = [
  ['an unknown command', 'capabilities\nconnect git-upload-pack\n', /unknown command "connect git-upload-pack" from git/],
  ['a list variant it does not know', 'list for-fetch\n', /unknown command "list for-fetch"/],
  ['a fetch line without a name', `fetch ${A}\n`, /malformed fetch line/],
  ['a fetch line with a short ID', `fetch ${A.slice(1)} refs/heads/main\n`, /malformed fetch line/],
  ['a fetch line with an uppercase ID', `fetch ${A.toUpperCase()} refs/heads/main\n`, /malformed fetch line/],
  ['a malformed line inside a fetch batch', `fetch ${A} refs/heads/main\nfetch nope refs/heads/x\n`, /malformed fetch line "nope refs\/heads\/x"/],
  ['another command inside a fetch batch', `fetch ${A} refs/heads/main\nlist\n`, /unexpected "list" inside a fetch batch/],
  ['a push line without a colon', 'push refs/heads/main\n', /malformed push line "refs\/heads\/main"/],
  [
    'another command inside a push batch',
    'push a:refs/heads/a\nfetch ' + A + ' refs/heads/a\n',
    /unexpected "fetch [0-9a-f]+ refs\/heads\/a" inside a push batch/,
  ],
];

for (const [name, input, why] of protocolErrors) {
  t.test(`BAD_PROTOCOL: ${name}`, async (t) => {
    const { error, output, backend } = await converse(input);
    t.ok(isKmscryptError(error, 'BAD_PROTOCOL'), 'a KmscryptError with code BAD_PROTOCOL');
    t.match((error as Error).message, why);
    t.notOk(backend.calls.includes('fetch') || backend.calls.includes('push'), 'no batch was handed to the backend');
    t.notMatch(output, /error|unknown|malformed/, 'nothing about it was written to stdout');
  });
}

t.test('stdout carries exactly the answers of a whole session, in order', async (t) => {
  const input = `capabilities\noption progress false\noption dry-run true\nlist for-push\npush refs/heads/main:refs/heads/main\n\nfetch ${A} refs/heads/main\n\n\n`;
  const { output } = await converse(input);
  const refs = `@refs/heads/main HEAD\n${A} refs/heads/main\n${B} refs/tags/v1\n\n`;
  t.equal(output, 'fetch\npush\noption\nobject-format\n\n' + 'ok\n' + 'unsupported\n' + refs + 'ok refs/heads/main\n\n' + 'lock /tmp/pack-1.keep\n\n');
});
