#!/usr/bin/env node
// @ts-check
'use strict';
/*
 * npm run test:mutants [-- [--report FILE] [--list] [--check] [--merge OTHER.md] [NAME ...]]
 *
 * The mutation check: each mutant below is a small deliberate bug, written as exact text
 * replacements in the built helper (dist/, a `file` ending in .js) or in the sources (src/, a
 * `file` ending in .ts: for the tests that import src/ rather than run the helper; the copy's
 * dist/ is then rebuilt from the mutated sources, so both see the bug). For each one, the project
 * is copied (node_modules linked), the mutant applied to the copy, and the tests that should
 * notice it run there with tap (services start when a test asks for them, as in npm test). A
 * mutant is killed when tap fails; the report names the assertions that failed. Every README
 * guarantee has at least one mutant (docs/guarantees.md).
 *
 * Names select mutants (all by default); --list prints them; --check only checks that every
 * mutant still applies (no test is run). The report (default docs/mutants.md, or --report FILE)
 * is updated after each mutant: its row is replaced, the rows of mutants not run this time are
 * kept as they were (with the commit and time of their own run), unless the mutant's definition
 * changed since (then it reads "not run"). --merge takes into the report the rows of another
 * report (another worktree's) that are of the current definitions and newer. Exit status 1 when
 * a mutant survived or no longer applies (its text is gone: update the list).
 */
const { spawnSync } = require('node:child_process');
const { createHash } = require('node:crypto');
const { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join, resolve } = require('node:path');

const ROOT = resolve(__dirname, '..');

/**
 * @typedef {{ file: string, find: string, replace: string }} Edit
 * @typedef {{ name: string, guarantee: string, edits: Edit[], tests: string[], grep?: string[], note?: string }} Mutant
 * @typedef {{ mutant: Mutant, verdict: string, detail: string, seconds: number }} Result
 * @typedef {{ verdict: string, detail: string, seconds: string, run: string, fingerprint: string }} Row
 */

/** @type {Mutant[]} */
const MUTANTS = [
  {
    name: 'skip the CAS retry re-check',
    guarantee: 'no lost pushes, one branch',
    edits: [{ file: 'remote/push.js', find: 'const verdicts = attempt === 1 ? first : await (0, push_plan_1.evaluateUpdates)(updates, snapshot.manifest, options.leases, history);', replace: 'const verdicts = first;' }],
    tests: ['test/concurrency-local.test.ts'],
    grep: ['one branch'],
  },
  {
    name: 'publish without create-only (local store)',
    guarantee: 'no lost pushes (both runs)',
    edits: [{ file: 'storage/local-storage.js', find: 'await node_fs_1.promises.link(tmp.path, this.path(key));', replace: 'await node_fs_1.promises.copyFile(tmp.path, this.path(key));' }],
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
    edits: [{ file: 'remote/push-plan.js', find: 'if (await local.isAncestor(current, u.oid)) {', replace: 'if (true) {' }],
    tests: ['test/e2e-local.test.ts'],
    grep: ['non-fast-forward'],
  },
  {
    name: 'atomic push not atomic',
    guarantee: 'atomic pushes',
    edits: [{ file: 'remote/helper-session.js', find: 'this.options.atomic = bool;', replace: 'this.options.atomic = false;' }],
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
    edits: [{ file: 'remote/push-plan.js', find: "if (lease !== undefined && (current ?? '') !== lease) {", replace: 'if (false) {' }],
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
    edits: [{ file: 'remote/push-plan.js', find: 'u.dst === manifest?.head && current !== undefined ? exports.DELETE_CURRENT_BRANCH : undefined', replace: 'undefined' }],
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
    name: 'a clone gets an object twice',
    guarantee: 'a fresh clone can read the remote: an object two pushes both stored is sent once',
    edits: [{ file: 'remote/fetch-selection.js', find: 'const taken = opened.length > 1 ? new Set() : undefined;', replace: 'const taken = undefined;' }],
    tests: ['test/git-semantics-local.test.ts'],
    grep: ['reaches a clone once'],
  },
  {
    name: 'a branch takes any object',
    guarantee: 'a branch names a commit, as in a bare repository',
    edits: [{ file: 'remote/push.js', find: "c.dst.startsWith('refs/heads/') && objects.get(c.src)?.type !== 'commit'", replace: 'false' }],
    tests: ['test/git-semantics-local.test.ts'],
    grep: ['reaches a clone once'],
  },
  {
    name: 'do not wait for the container upload',
    guarantee: 'crashes: a published manifest names only stored containers',
    edits: [{ file: 'remote/container-writer.ts', find: '  await uploading;\n  shown.done();', replace: '  uploading.catch(() => undefined);\n  shown.done();' }],
    tests: ['test/container-upload-order.test.ts'],
    note: 'in src/: on a real store the upload has always finished when the crash tests kill the helper after publication; the test holds it open',
  },
  {
    name: 'buffer the whole large object (push)',
    guarantee: 'memory bounded',
    edits: [{ file: 'remote/container-writer.js', find: 'const chunk = sealer.update(await read(pos, Math.min(CHUNK, length - pos)));', replace: 'const chunk = sealer.update(Buffer.from(await read(pos, length - pos)));' }],
    tests: ['test/large-objects-local.test.ts'],
    grep: ['peak memory'],
  },
  {
    name: 'a tail merge copies only its first container',
    guarantee: 'tail merge: every object of the merged containers stays readable',
    edits: [{ file: 'remote/tail-merge.ts', find: 'for (const [k, c] of opened.entries()) {', replace: 'for (const [k, c] of opened.slice(0, 1).entries()) {' }],
    tests: ['test/tail-merge.test.ts'],
  },
  {
    name: 'a gc consolidation taken for a tail merge',
    guarantee: 'no lost objects: a push re-packs when a gc dropped what its deltas refer to',
    edits: [{ file: 'remote/tail-merge.ts', find: 'if (c.pushes !== undefined) for (const id of c.consolidates ?? []) ids.add(id);', replace: 'for (const id of c.consolidates ?? []) ids.add(id);' }],
    tests: ['test/tail-merge.test.ts'],
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
    name: 'trust the object IDs a container index claims',
    guarantee: 'tampering',
    edits: [{ file: 'remote/claimed-ids.ts', find: 'if (!idx.hasAt(ids, at)) {', replace: 'if (false) {' }],
    tests: ['test/claimed-ids.test.ts'],
    note: 'in src/: only a writer holding the data key can seal a record whose content has another ID, so the check is tested on packs and indexes built by hand',
  },
  {
    name: 'drop the encryption context',
    guarantee: 'keys: a data key is bound to its repository',
    edits: [{ file: 'keys/key-provider.js', find: 'return Object.freeze({ [exports.REPOSITORY_CONTEXT_KEY]: repositoryId });', replace: 'return Object.freeze({});' }],
    // Not the tamper tests: every flipped byte is caught by the records' and manifests' own
    // authentication as well, so they cannot see the context go (they passed with this mutant once
    // the unit tests ran the same dist/ as the helpers).
    tests: ['test/kms-encryption-context.test.ts'],
    grep: ['names the repository in its encryption context'],
  },
  {
    name: 'accept any manifest generation (no rollback check)',
    guarantee: 'rollback',
    edits: [
      { file: 'remote/remote-repository.js', find: 'if (seen.generation > 0)\n                throw this.rollback(undefined, seen.generation);', replace: '' },
      { file: 'remote/remote-repository.js', find: 'if (newest.generation < seen.generation)\n            throw this.rollback(newest.generation, seen.generation);', replace: '' },
    ],
    tests: ['test/tamper-local.test.ts'],
    grep: ['newest manifest was deleted'],
  },
  {
    name: 'accept a manifest stored under another generation',
    guarantee: 'rollback: an older manifest put back under the newest name is refused',
    edits: [{ file: 'remote/remote-repository.js', find: 'if (env.generation !== generation) {', replace: 'if (false) {' }],
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
    edits: [{ file: 'remote/key-trust.js', find: 'if (!(await this.isTrusted(arn))) {', replace: 'if (false) {' }],
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
  {
    name: 'skip the key commitment check',
    guarantee: 'key commitment: a wrapped key swapped for another data key is refused',
    edits: [{ file: 'format/key-commitment.ts', find: 'if (expected.length !== COMMITMENT_LENGTH || !timingSafeEqual(actual, expected)) {', replace: 'if (expected.length !== COMMITMENT_LENGTH) {' }],
    tests: ['test/format-key-commitment.test.ts'],
    note: 'in src/: the test opens containers and manifests with the format code in-process',
  },
  {
    name: 'adopt a descriptor without proof',
    guarantee: 'identity: a location whose descriptor has no proof is never adopted',
    edits: [{ file: 'remote/repository-identity.js', find: 'if (!snapshot.manifest)\n        await checkProof(repo);', replace: '' }],
    tests: ['test/trust-local.test.ts'],
    grep: ['a descriptor without a proof'],
  },
  {
    name: 'adopt a copied descriptor (no location check)',
    guarantee: 'identity: a descriptor copied into an empty location is not adopted',
    edits: [{ file: 'remote/repository-identity.js', find: 'if (d.location !== undefined && d.location !== config.url) {', replace: 'if (false) {' }],
    tests: ['test/trust-local.test.ts'],
    grep: ['copied into an empty location'],
  },
  {
    name: 'accept any previous hash (no continuity check)',
    guarantee: 'continuity: a clone that skipped generations refuses a forked history',
    edits: [{ file: 'remote/remote-repository.js', find: 'if (newest.generation > seen.generation + 1 && seen.manifestHash) {', replace: 'if (false) {' }],
    tests: ['test/trust-local.test.ts'],
    grep: ['refuses a forked history'],
  },
  {
    name: 'the chain walk accepts any manifest at the generation seen',
    guarantee: 'continuity: the hash chain must lead to the manifest the clone saw',
    edits: [{ file: 'remote/manifest-chain.js', find: "return expected === seen.hash ? { proved: true } : { proved: false, reason: 'fork', at: g };", replace: 'return { proved: true };' }],
    tests: ['test/trust-local.test.ts'],
    grep: ['refuses a forked history'],
  },
  {
    name: 'history objects attest any hash',
    guarantee: 'continuity across gc: a manifest gc removed counts only if a history object attests its hash',
    edits: [{ file: 'remote/manifest-chain.ts', find: "if (attestedHash(history, generation) !== hash) return { proved: false, reason: 'fork', at: generation };", replace: '' }],
    tests: ['test/manifest-chain.test.ts'],
    note: 'in src/: the test runs the chain walk in-process over a table of manifests',
  },
  {
    name: 'a gap of one: accept a manifest that does not follow the one seen',
    guarantee: 'continuity: the next generation must name the manifest the clone saw as its previous',
    edits: [{ file: 'remote/remote-repository.js', find: 'if (newest.generation === seen.generation + 1 && seen.manifestHash && snapshot.manifest.previous !== seen.manifestHash) {', replace: 'if (false) {' }],
    tests: ['test/trust-local.test.ts'],
    grep: ['one generation behind'],
  },
  {
    name: 'accept a replaced manifest at the generation seen',
    guarantee: 'continuity: the manifest the clone saw cannot be swapped for another',
    edits: [{ file: 'remote/remote-repository.js', find: 'if (newest.generation === seen.generation && seen.manifestHash && seen.manifestHash !== snapshot.hash) {', replace: 'if (false) {' }],
    tests: ['test/trust-local.test.ts'],
    grep: ['one generation behind'],
  },
  {
    name: 'gc writes no history object',
    guarantee: 'continuity across gc: the manifests gc deletes are attested by a history object',
    edits: [{ file: 'remote/gc.js', find: 'const chain = { history: await (0, manifest_history_1.storeHistory)(repo, current), endorsements: current.chain.endorsements };', replace: 'const chain = { history: current.chain.history, endorsements: current.chain.endorsements };' }],
    tests: ['test/trust-local.test.ts'],
    grep: ['slept through a gc'],
  },
  {
    name: 'accept an unendorsed key',
    guarantee: 'keys: a repository moved to a key the clone never trusted, without an endorsement, is refused',
    edits: [{ file: 'remote/key-trust.js', find: 'const path = await this.pathTo(arn, endorsements);', replace: 'const path = (await this.pathTo(arn, endorsements)) ?? [];' }],
    tests: ['test/trust-local.test.ts'],
    grep: ['never trusted'],
  },
  {
    name: 'accept a forged endorsement',
    guarantee: 'keys: an endorsement that does not verify under the endorsing key is refused',
    edits: [{ file: 'remote/key-trust.js', find: 'if (!valid) {', replace: 'if (false) {' }],
    tests: ['test/trust-local.test.ts'],
    grep: ['never trusted'],
  },
  {
    name: 'rotate-key writes no endorsement',
    guarantee: 'keys: after rotate-key every clone follows the rotation with no new setting',
    edits: [{ file: 'remote/rotate-key.js', find: 'return [...chain, endorsement];', replace: 'return [...chain];' }],
    tests: ['test/cmd-rotate-key.test.ts'],
    grep: ['three rotations'],
  },
  {
    name: 'read a manifest of any size (no read limit)',
    guarantee: 'memory before authentication: an oversized manifest is refused before it is read',
    edits: [{ file: 'remote/remote-repository.js', find: 'await this.storage.get(newest.key, constants_1.MANIFEST_READ);', replace: 'await this.storage.get(newest.key);' }],
    tests: ['test/trust-local.test.ts'],
    grep: ['oversized newest manifest'],
  },
  {
    name: 'update the local state without its lock',
    guarantee: 'two git processes of one clone never lower the generation it saw',
    edits: [{ file: 'remote/state-file.js', find: 'await acquire(lock);\n    try {\n        const next = change(', replace: 'try {\n        const next = change(' }],
    tests: ['test/local-state-processes.test.ts'],
    grep: ['two processes updating at once'],
  },
  {
    name: 'local-kms answers unsigned requests',
    guarantee: 'the local KMS serves only its owner',
    edits: [{ file: 'keys/local-kms-server.ts', find: 'if (!verified.ok) {', replace: 'if (false) {' }],
    tests: ['test/local-kms-processes.test.ts'],
    grep: ['another user of this machine'],
    note: 'in src/: the test starts the server in-process and as git kmscrypt local-kms',
  },
  {
    name: 'the KMS endpoint is not checked for plain HTTP when configured',
    guarantee: 'endpoints: plain HTTP to a KMS endpoint across the network is refused with one line naming the setting',
    edits: [{ file: 'cli/open-remote.js', find: "(0, endpoint_security_1.checkEndpointSecurity)(endpoint.url, settings.allowHttp, undefined, { service: 'KMS', source: endpoint.source });", replace: '' }],
    tests: ['test/kms-endpoint.test.ts'],
    grep: ['plain-HTTP KMS endpoint across the network'],
  },
  {
    name: 'ignore the depth of a shallow fetch',
    guarantee: 'shallow clones: --depth fetches that many commits and marks the boundary shallow',
    edits: [{ file: 'remote/history-walk.js', find: 'if (deepen?.depth !== undefined && deepen.depth > 0) {', replace: 'if (false) {' }],
    tests: ['test/shallow-clone-local.test.ts'],
    grep: ['clone --depth 1'],
  },
  {
    name: 'a blob filter keeps every blob',
    guarantee: 'partial clones: --filter=blob:none fetches commits and trees only',
    edits: [
      { file: 'remote/object-filter.js', find: "if (part === 'blob:none') {\n            filter.blobLimit = 0;", replace: "if (part === 'blob:none') {\n            filter.blobLimit = undefined;" },
      { file: 'remote/object-filter.js', find: '(filter.blobLimit === undefined || size < filter.blobLimit) &&', replace: 'true &&' },
    ],
    tests: ['test/partial-clone-local.test.ts'],
    grep: ['blob:none: commits and trees only|blob:limit'],
  },
  {
    name: 'run cached code of a changed module',
    guarantee: 'code cache: only code compiled from the current source of a module is run',
    edits: [{ file: 'code-cache.ts', find: 'entry && entry.sourceCrc === sourceCrc && entry.sourceLength === content.length ? entry.data : undefined', replace: 'entry ? entry.data : undefined' }],
    tests: ['test/code-cache.test.ts'],
    grep: ['same length'],
  },
  {
    name: 'read a code cache others may write',
    guarantee: 'code cache: a cache file or directory another user could have written is not used',
    edits: [{ file: 'code-cache.ts', find: "if (!stat.isFile() || stat.uid !== uid || (stat.mode & 0o022) !== 0 || stat.size > 256 * 2 ** 20) return entries;", replace: 'if (!stat.isFile()) return entries;' }],
    tests: ['test/code-cache.test.ts'],
    grep: ['someone else'],
  },
];

/** @param {string[]} argv */
function parseArgs(argv) {
  const out = { report: join(ROOT, 'docs', 'mutants.md'), list: false, check: false, merge: /** @type {string[]} */ ([]), names: /** @type {string[]} */ ([]) };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--report') out.report = resolve(argv[++i]);
    else if (argv[i] === '--merge') out.merge.push(resolve(argv[++i]));
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

/** Where an edit applies: a .ts file under src/, anything else under dist/. */
function editedPath(/** @type {Edit} */ e) {
  return join(e.file.endsWith('.ts') ? 'src' : 'dist', e.file);
}

/**
 * Applies a mutant's edits to the copy in `dir`; each `find` must occur exactly once. After an
 * edit of src/, dist/ is rebuilt from it.
 * @param {string} dir
 * @param {Mutant} mutant
 * @returns {string | undefined}
 */
function apply(dir, mutant) {
  for (const e of mutant.edits) {
    const path = join(dir, editedPath(e));
    const text = readFileSync(path, 'utf8');
    const count = text.split(e.find).length - 1;
    if (count !== 1) return `${editedPath(e)} holds the text to replace ${count} times (must be once): the mutant no longer applies`;
    writeFileSync(path, text.replace(e.find, () => e.replace));
  }
  if (mutant.edits.some((e) => e.file.endsWith('.ts'))) {
    // tsc emits despite type errors (a mutant may leave a variable unused, or narrow a type): only
    // a failure to emit counts, as in the tests' own build (test/setup/before-run.ts).
    const build = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8' });
    if (build.status !== 0 && build.status !== 2) return `the mutated sources do not build: ${build.stdout.trim().split('\n').slice(0, 2).join(' ')}`;
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

/** What a result is valid for: the mutant's edits and the tests run (its name and wording aside). */
function fingerprint(/** @type {Mutant} */ m) {
  return createHash('sha256')
    .update(JSON.stringify([m.edits, m.tests, m.grep ?? []]))
    .digest('hex')
    .slice(0, 12);
}

/**
 * What the results were obtained on: the git trees of src/ and test/ at HEAD (unchanged by a
 * rebase that leaves them alone; `git rev-parse <commit>:src` finds them), "+changes" when the
 * working tree differed from HEAD there or in this script.
 */
function revision() {
  const tree = (/** @type {string} */ dir) => spawnSync('git', ['rev-parse', '--short', `HEAD:${dir}`], { cwd: ROOT, encoding: 'utf8' }).stdout.trim() || 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--', 'src', 'test', 'scripts/test-mutants.js'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  return `src ${tree('src')} test ${tree('test')}${dirty ? ' +changes' : ''}`;
}

/** A table cell's text. */
const escape = (/** @type {string} */ text) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

const HEADER = '| mutant | guarantee | tests run | verdict | killed by (first failed assertions) | s | run at | definition |';

/**
 * The rows of an earlier report, by mutant name.
 * @param {string} file
 * @returns {Map<string, Row>}
 */
function earlierRows(file) {
  /** @type {Map<string, Row>} */
  const rows = new Map();
  if (!existsSync(file)) return rows;
  const lines = readFileSync(file, 'utf8').split('\n');
  const start = lines.indexOf(HEADER);
  if (start < 0) return rows;
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith('| ')) break;
    const cells = line.slice(2, -2).split(' | ');
    const cell = (/** @type {number} */ i) => (cells[i] ?? '').trim();
    rows.set(cell(0), { verdict: cell(3).replace(/\*\*/g, ''), detail: cell(4), seconds: cell(5), run: cell(6), fingerprint: cell(7).replace(/`/g, '') });
  }
  return rows;
}

/**
 * The report: every mutant of the list, in its order, with the result of its latest run.
 * @param {Map<string, Row>} rows
 */
function report(rows) {
  const lines = MUTANTS.map((m) => {
    const row = rows.get(m.name);
    const current = row && row.fingerprint === fingerprint(m);
    const r = current
      ? row
      : { verdict: 'not run', detail: row ? 'the mutant or its tests changed since its last run' : '', seconds: '', run: '', fingerprint: fingerprint(m) };
    const tests = `${m.tests.map((t) => `\`${t}\``).join(', ') || '—'}${m.grep ? ` (${m.grep.map((g) => `"${g}"`).join(', ')})` : ''}`;
    return {
      verdict: r.verdict,
      line: `| ${m.name} | ${escape(m.guarantee)} | ${tests} | **${r.verdict}** | ${r.detail} | ${r.seconds} | ${r.run} | \`${r.fingerprint}\` |`,
    };
  });
  const count = (/** @type {string} */ v) => lines.filter((l) => l.verdict === v).length;
  return [
    '# Mutation check',
    '',
    'Written by `npm run test:mutants` (scripts/test-mutants.js); do not edit by hand. Each mutant is',
    'a deliberate bug applied to a copy of `dist/` (or of `src/`, for tests that import the sources);',
    'the tests listed (only the subtests matching the quoted patterns, tap `--grep`) are run against',
    'it. Killed: those tests failed; the first failed assertions are shown. Each row is the latest',
    'run of that mutant: the git trees of src/ and test/ it ran on (`git rev-parse <commit>:src`;',
    '"+changes": with uncommitted changes there or in the script) and when, and a fingerprint of',
    'its definition (edits, tests, patterns).',
    '',
    `${MUTANTS.length} mutants: ${count('killed')} killed, ${count('SURVIVED')} survived, ${count('stale')} stale, ${count('not run') + count('no test yet')} not run or without a test.`,
    '',
    HEADER,
    '|---|---|---|---|---|---:|---|---|',
    ...lines.map((l) => l.line),
    '',
  ].join('\n');
}

/** When a row's run ended (its "run at" cell ends with the time), for comparing two reports' rows. */
function runTime(/** @type {Row} */ row) {
  return /(\d{4}-\d\d-\d\dT\d\d:\d\dZ)$/.exec(row.run)?.[1] ?? '';
}

/**
 * Takes into the report the rows of other reports that are of a mutant's current definition and
 * newer than the report's own.
 * @param {string} file
 * @param {string[]} others
 */
function merge(file, others) {
  const rows = earlierRows(file);
  for (const other of others) {
    for (const [name, row] of earlierRows(other)) {
      const m = MUTANTS.find((x) => x.name === name);
      if (!m || row.fingerprint !== fingerprint(m)) continue;
      const mine = rows.get(name);
      if (!mine || mine.fingerprint !== row.fingerprint || runTime(row) > runTime(mine)) rows.set(name, row);
    }
  }
  writeFileSync(file, report(rows));
}

/**
 * Records a result in the report file.
 * @param {string} file
 * @param {Result} r
 */
function record(file, r) {
  const rows = earlierRows(file);
  rows.set(r.mutant.name, {
    verdict: r.verdict,
    detail: escape(r.detail),
    seconds: String(r.seconds),
    run: `${revision()}, ${new Date().toISOString().slice(0, 16)}Z`,
    fingerprint: fingerprint(r.mutant),
  });
  writeFileSync(file, report(rows));
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
  if (args.merge.length) {
    merge(args.report, args.merge);
    process.stderr.write(`test:mutants: ${args.report} updated from ${args.merge.join(', ')}\n`);
    if (!args.names.length) return 0;
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
  let allKilled = true;
  for (const m of chosen) {
    process.stderr.write(`test:mutants: ${m.name} ...\n`);
    const r = runMutant(m);
    process.stderr.write(`test:mutants: ${m.name}: ${r.verdict} (${r.seconds} s) ${r.detail}\n`);
    record(args.report, r);
    allKilled &&= r.verdict === 'killed';
  }
  process.stderr.write(`test:mutants: ${args.report} updated\n`);
  return allKilled ? 0 : 1;
}

if (require.main === module) process.exitCode = main();

module.exports = { MUTANTS };
