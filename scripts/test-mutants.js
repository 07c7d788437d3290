#!/usr/bin/env node
// @ts-check
'use strict';
/*
 * npm run test:mutants [-- [--report FILE] [--list] [NAME ...]]
 *
 * The mutation check: each mutant below is a small deliberate bug, written as exact text
 * replacements in the built helper (dist/). For each one, the project is copied (node_modules
 * linked), the mutant applied to the copy's dist/, and the tests that should notice it run there
 * with tap (its before-script starts Ceph RGW and the local KMS, as in npm test). A mutant is
 * killed when tap fails; the report names the assertions that failed. Every README guarantee
 * has at least one mutant (docs/guarantees.md).
 *
 * Names select mutants (all by default); --list prints them; --check only checks that every
 * mutant still applies to dist/ (no test is run). The report (default
 * docs/mutants.md, or --report FILE) is rewritten with the mutants of this run. Exit status 1
 * when a mutant survived or no longer applies (its text is gone from dist/: update the list).
 */
const { spawnSync } = require('node:child_process');
const { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join, resolve } = require('node:path');

const ROOT = resolve(__dirname, '..');

/**
 * @typedef {{ file: string, find: string, replace: string }} Edit
 * @typedef {{ name: string, guarantee: string, edits: Edit[], tests: string[], grep?: string[], note?: string }} Mutant
 * @typedef {{ mutant: Mutant, verdict: string, detail: string, seconds: number }} Result
 */

/** @type {Mutant[]} */
const MUTANTS = [
  {
    name: 'skip the CAS retry re-check',
    guarantee: 'no lost pushes, one branch',
    edits: [{ file: 'remote/push.js', find: 'const verdicts = attempt === 1 ? first : await evaluate(updates, snapshot.manifest, options, local);', replace: 'const verdicts = first;' }],
    tests: ['test/concurrency-local.test.ts'],
    grep: ['one branch'],
  },
  {
    name: 'publish without create-only (local store)',
    guarantee: 'no lost pushes (both runs)',
    edits: [{ file: 'storage/local-storage.js', find: 'await node_fs_1.promises.link(tmp, this.path(key));', replace: 'await node_fs_1.promises.copyFile(tmp, this.path(key));' }],
    tests: ['test/concurrency-local.test.ts'],
    grep: ['distinct branches'],
  },
  {
    name: 'publish without If-None-Match (S3)',
    guarantee: 'no lost pushes over S3',
    edits: [{ file: 'storage/s3-storage.js', find: "return this.conditionalPut(key, await this.bodyBytes(key, body), { IfNoneMatch: '*' });", replace: 'return this.conditionalPut(key, await this.bodyBytes(key, body), {});' }],
    tests: ['test/concurrency-s3.test.ts'],
  },
  {
    name: 'accept a non-fast-forward',
    guarantee: 'no lost pushes; a stale push is rejected as git rejects it',
    edits: [{ file: 'remote/push.js', find: 'if (await (0, repository_1.isAncestor)(current, u.oid)) {', replace: 'if (true) {' }],
    tests: ['test/e2e-local.test.ts'],
    grep: ['non-fast-forward'],
  },
  {
    name: 'atomic push not atomic',
    guarantee: 'atomic pushes',
    edits: [{ file: 'remote/push.js', find: "if (options.atomic && accepted.length < updates.length)\n            return failAll(commands, outcomes, 'atomic push failed');", replace: '' }],
    tests: ['test/concurrency-local.test.ts'],
    grep: ['atomic'],
  },
  {
    name: 'ignore dry-run',
    guarantee: '--dry-run writes nothing',
    edits: [{ file: 'remote/push.js', find: 'if (options.dryRun)\n            return report(commands, outcomes);', replace: '' }],
    tests: ['test/git-semantics-local.test.ts'],
    grep: ['dry-run'],
  },
  {
    name: 'lease ignored',
    guarantee: '--force-with-lease refuses a stale lease',
    edits: [{ file: 'remote/push.js', find: "if (lease !== undefined && (current ?? '') !== lease) {", replace: 'if (false) {' }],
    tests: ['test/git-semantics-local.test.ts'],
    grep: ['lease'],
  },
  {
    name: 'HEAD in the list for a push',
    guarantee: 'git push --mirror succeeds on every run',
    edits: [{ file: 'remote/helper-session.js', find: 'if (!forPush && m.head && m.refs[m.head])', replace: 'if (m.head && m.refs[m.head])' }],
    tests: ['test/git-semantics-local.test.ts'],
    grep: ['mirror succeeds'],
  },
  {
    name: 'the current branch may be deleted',
    guarantee: "the branch the remote's HEAD names is not deleted",
    edits: [{ file: 'remote/push.js', find: 'u.dst === manifest?.head && current !== undefined ? exports.DELETE_CURRENT_BRANCH : undefined', replace: 'undefined' }],
    tests: ['test/git-semantics-local.test.ts'],
    grep: ['deleting the branch HEAD points at'],
  },
  {
    name: 'follow every tag a container brought',
    guarantee: 'a fetch follows only the tags whose targets it fetched',
    edits: [{ file: 'remote/fetch.js', find: 'const stored = options.followTags', replace: 'const stored = false' }],
    tests: ['test/git-semantics-local.test.ts'],
    grep: ['follows only the tags'],
  },
  {
    name: 'do not wait for the container upload',
    guarantee: 'crashes: a published manifest names only stored containers',
    edits: [{ file: 'remote/container-writer.js', find: '    await uploading;\n    shown.done();', replace: '    uploading.catch(() => undefined);\n    shown.done();' }],
    tests: ['test/crash-local.test.ts'],
    grep: ['a first push and a push killed at each'],
  },
  {
    name: 'buffer the whole large object (push)',
    guarantee: 'memory bounded',
    edits: [{ file: 'remote/container-writer.js', find: 'const chunk = sealer.update(await reader.read(pos, Math.min(CHUNK, end - pos)));', replace: 'const chunk = sealer.update(Buffer.from(await reader.read(pos, end - pos)));' }],
    tests: ['test/large-objects-local.test.ts'],
    grep: ['peak memory'],
  },
  {
    name: 'buffer the whole large object (fetch)',
    guarantee: 'memory bounded',
    edits: [
      { file: 'remote/large-record.js', find: 'const buf = Buffer.allocUnsafe(CHUNK);', replace: 'const buf = Buffer.allocUnsafe(length);' },
      { file: 'remote/large-record.js', find: 'Math.min(CHUNK, length - record_1.CBC_MAC - pos)', replace: 'length - record_1.CBC_MAC - pos' },
    ],
    tests: ['test/large-objects-local.test.ts'],
    grep: ['peak memory'],
  },
  {
    name: 'skip MAC verification (streamed CBC record)',
    guarantee: 'tampering: nothing unauthenticated reaches git',
    edits: [{ file: 'remote/large-record.js', find: 'if (received !== length || !verifier.verified())', replace: 'if (received !== length)' }],
    tests: ['test/large-objects-local.test.ts'],
    grep: ['flipped byte'],
  },
  {
    name: 'skip GCM tag verification',
    guarantee: 'tampering',
    edits: [{ file: 'format/record.js', find: 'decipher.final(); // throws unless the tag verifies', replace: '// tag not verified' }],
    tests: ['test/tamper-local.test.ts'],
    grep: ['flipped byte'],
  },
  {
    name: 'skip the container preamble check',
    guarantee: 'tampering',
    edits: [{ file: 'remote/container-reader.js', find: 'if (c.ref.preambleLength !== index.recordsStart || (0, container_1.sha256Hex)(frame) !== c.ref.preambleHash) {', replace: 'if (false) {' }],
    tests: ['test/tamper-local.test.ts'],
    grep: ['flipped byte'],
  },
  {
    name: 'skip descriptor hash check',
    guarantee: 'tampering',
    edits: [{ file: 'remote/remote-repository.js', find: 'if (manifest.descriptorHash !== this.descriptorHash) {', replace: 'if (false) {' }],
    tests: ['test/tamper-local.test.ts'],
    grep: ['flipped byte'],
  },
  {
    name: 'drop the encryption context',
    guarantee: 'keys: a data key is bound to its repository',
    edits: [{ file: 'keys/key-provider.js', find: 'return Object.freeze({ [exports.REPOSITORY_CONTEXT_KEY]: repositoryId });', replace: 'return Object.freeze({});' }],
    tests: ['test/tamper-local.test.ts'],
    grep: ['flipped byte'],
  },
  {
    name: 'accept any manifest generation (no rollback check)',
    guarantee: 'rollback',
    edits: [{ file: 'remote/remote-repository.js', find: 'if (newest.generation < seen.generation)\n            throw this.rollback(newest.generation, seen.generation);', replace: '' }],
    tests: ['test/tamper-local.test.ts'],
    grep: ['newest manifest was deleted'],
  },
  {
    name: 'forget which repository a URL held',
    guarantee: 'rollback: a replaced or removed repository is refused',
    edits: [{ file: 'remote/remote-repository.js', find: 'if (expected && expected !== descriptor.repositoryId) {', replace: 'if (false) {' }],
    tests: ['test/tamper-local.test.ts'],
    grep: ['replaced by another one'],
  },
  {
    name: 'skip key trust check',
    guarantee: 'keys: a repository under a key the user did not choose is refused',
    edits: [{ file: 'remote/remote-repository.js', find: 'const state = await this.state.load();\n        if (state.trustedKey === keyArn)\n            return;', replace: 'return;' }],
    tests: ['test/key-trust.test.ts'],
  },
  {
    name: 'store records unencrypted',
    guarantee: 'no plaintext',
    edits: [{ file: 'remote/container-writer.js', find: 'await this.out.write(cipher.update(this.buffer.subarray(0, this.used)));', replace: 'cipher.update(this.buffer.subarray(0, this.used));\n        await this.out.write(this.buffer.subarray(0, this.used));' }],
    tests: ['test/tamper-local.test.ts'],
    grep: ['no ref name'],
  },
  {
    name: 'no request timeout (a stalled request is never abandoned)',
    guarantee: 'faults: a stalled request is abandoned and retried',
    edits: [{ file: 'storage/s3-client.js', find: 'socketTimeout: settings.idleTimeoutMs ?? exports.DEFAULT_IDLE_TIMEOUT_MS', replace: 'socketTimeout: 0' }],
    tests: ['test/faults-s3.test.ts'],
    grep: ['stalled longer'],
  },
  {
    name: 'an ambiguous conditional PUT is not read back',
    guarantee: 'faults: a manifest PUT answered 500 after RGW stored it is settled by reading back',
    edits: [{ file: 'storage/s3-storage.js', find: 'if (!refused && !(0, s3_errors_1.isOutcomeUnknown)(err))', replace: 'if (!refused)' }],
    tests: ['test/faults-s3.test.ts'],
    grep: ['answered 500 after RGW stored it'],
  },
];

/** @param {string[]} argv */
function parseArgs(argv) {
  const out = { report: join(ROOT, 'docs', 'mutants.md'), list: false, check: false, names: /** @type {string[]} */ ([]) };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--report') out.report = resolve(argv[++i]);
    else if (argv[i] === '--list') out.list = true;
    else if (argv[i] === '--check') out.check = true;
    else out.names.push(argv[i]);
  }
  return out;
}

/**
 * A copy of the project with its own dist/ and test/, node_modules linked. src/ is copied first:
 * the tests' setup rebuilds dist/ when a source is newer than its build, which would undo the mutant.
 */
function copyProject() {
  const dir = mkdtempSync(join(tmpdir(), 'kmscrypt-mutant-'));
  for (const entry of ['src', 'bin', 'dist', 'test', 'scripts', 'docs', 'package.json', 'tsconfig.json']) cpSync(join(ROOT, entry), join(dir, entry), { recursive: true });
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'));
  return dir;
}

/** Applies a mutant's edits to dir/dist; each `find` must occur exactly once. */
/**
 * @param {string} dir
 * @param {Mutant} mutant
 * @returns {string | undefined}
 */
function apply(dir, mutant) {
  for (const e of mutant.edits) {
    const path = join(dir, 'dist', e.file);
    const text = readFileSync(path, 'utf8');
    const count = text.split(e.find).length - 1;
    if (count !== 1) return `dist/${e.file} holds the text to replace ${count} times (must be once): the mutant no longer applies`;
    writeFileSync(path, text.replace(e.find, () => e.replace));
  }
  return undefined;
}

/**
 * The names of the failed assertions in tap's TAP output, innermost first.
 * @param {string} tapOutput
 * @returns {string[]}
 */
function failures(tapOutput) {
  return [...new Set(tapOutput.split('\n').filter((l) => /^\s+not ok \d+ - /.test(l)).map((l) => l.replace(/^\s+not ok \d+ - /, '').replace(/ # time=.*$/, '').trim()))];
}

/**
 * @param {Mutant} mutant
 * @returns {Result}
 */
function runMutant(mutant) {
  const started = Date.now();
  const dir = copyProject();
  try {
    const problem = apply(dir, mutant);
    if (problem) return { mutant, verdict: 'stale', detail: problem, seconds: 0 };
    if (mutant.tests.length === 0) return { mutant, verdict: 'no test yet', detail: mutant.note ?? '', seconds: 0 };
    const args = ['tap', '--disable-coverage', '--reporter=tap', ...(mutant.grep ?? []).map((g) => `--grep=${g}`), ...mutant.tests];
    const r = spawnSync('npx', args, { cwd: dir, encoding: 'utf8', maxBuffer: 1 << 30, env: { ...process.env, KMSCRYPT_RELIABILITY_REPORT: '' } });
    const output = `${r.stdout}\n${r.stderr}`;
    const failed = failures(output);
    const killed = r.status !== 0 && failed.length > 0;
    const detail = killed ? failed.slice(0, 3).join('; ') : `tap exited ${r.status}: ${output.split('\n').filter((l) => /error|fail/i.test(l)).slice(0, 2).join(' ')}`;
    return { mutant, verdict: killed ? 'killed' : 'SURVIVED', detail, seconds: Math.round((Date.now() - started) / 1000) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** @param {Result[]} results */
function report(results) {
  const rows = results.map((r) => `| ${r.mutant.name} | ${r.mutant.guarantee} | ${r.mutant.tests.map((t) => `\`${t}\``).join(', ') || '—'}${r.mutant.grep ? ` (${r.mutant.grep.map((g) => `"${g}"`).join(', ')})` : ''} | **${r.verdict}** | ${r.detail.replace(/\|/g, '\\|').replace(/\n/g, ' ')} | ${r.seconds} |`);
  return [
    '# Mutation check',
    '',
    'Written by `npm run test:mutants` (scripts/test-mutants.js): each mutant is a deliberate bug',
    'applied to a copy of `dist/`; the tests listed (only the subtests matching the quoted',
    'patterns, tap `--grep`) are run against it. Killed: those tests failed, first failed',
    'assertions shown.',
    '',
    `Run: ${new Date().toISOString()}, ${results.length} mutants.`,
    '',
    '| mutant | guarantee | tests run | verdict | killed by | s |',
    '|---|---|---|---|---|---:|',
    ...rows,
    '',
  ].join('\n');
}

function main() {
  const args = parseArgs(process.argv.slice(2));
  if (args.list) {
    for (const m of MUTANTS) process.stdout.write(`${m.name}\n`);
    return 0;
  }
  const unknown = args.names.filter((n) => !MUTANTS.some((m) => m.name === n));
  if (unknown.length) {
    process.stderr.write(`test:mutants: unknown mutant(s): ${unknown.join(', ')} (see --list)\n`);
    return 2;
  }
  const build = spawnSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) return 1;
  const chosen = args.names.length ? MUTANTS.filter((m) => args.names.includes(m.name)) : MUTANTS;
  if (args.check) {
    let stale = 0;
    for (const m of chosen) {
      const dir = copyProject();
      const problem = apply(dir, m);
      rmSync(dir, { recursive: true, force: true });
      if (problem) stale++;
      process.stdout.write(`${problem ? 'STALE' : 'applies'}: ${m.name}${problem ? ` (${problem})` : ''}\n`);
    }
    return stale ? 1 : 0;
  }
  /** @type {Result[]} */
  const results = [];
  for (const m of chosen) {
    process.stderr.write(`test:mutants: ${m.name} ...\n`);
    const r = runMutant(m);
    process.stderr.write(`test:mutants: ${m.name}: ${r.verdict} (${r.seconds} s) ${r.detail}\n`);
    results.push(r);
  }
  writeFileSync(args.report, report(results));
  process.stderr.write(`test:mutants: report written to ${args.report}\n`);
  return results.every((r) => r.verdict === 'killed') ? 0 : 1;
}

process.exitCode = main();
