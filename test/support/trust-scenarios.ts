import type { Test } from 'tap';
import { scenarioSandbox } from './git-scenarios';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeDescriptor } from '../../src/format/descriptor';
import { endorsementPlaintext } from '../../src/format/endorsement';
import { repositoryContext } from '../../src/keys/key-provider';
import { RemoteRepository } from '../../src/remote/remote-repository';
import { BIN, RunResult, Sandbox } from './sandbox';
import type { StoreAccess } from './store-access';
import type { TamperBackend } from './tamper-scenarios';

/** Every stored object's SHA-256, as the operator sees the store: "nothing was written" compares two of these. */
async function storeState(store: StoreAccess): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of await store.keys()) out.set(key, createHash('sha256').update(await store.read(key)).digest('hex'));
  return out;
}

function kmscryptLines(r: RunResult, kind: 'fatal' | 'warning'): string[] {
  return r.stderr.split('\n').filter((l) => l.startsWith(`${kind}: kmscrypt:`));
}

/** Refused safely: non-zero exit, exactly one fatal line that names what was found. */
function refusedWith(t: Test, r: RunResult, pattern: RegExp, label: string): void {
  t.not(r.status, 0, `${label}: non-zero exit`);
  const lines = kmscryptLines(r, 'fatal');
  t.equal(lines.length, 1, `${label}: exactly one fatal line`, { stderr: r.stderr });
  t.match(lines[0] ?? '', pattern, `${label}: the line names what was found and the fix`);
}

const storeLocation = (store: StoreAccess) => store.url.replace(/^kmscrypt::/, '');

/** KMS calls the helper of one git command made, by action (KMSCRYPT_STATS). */
function kmsCalls(sb: Sandbox, run: (env: NodeJS.ProcessEnv) => RunResult): { result: RunResult; kms: Record<string, number> } {
  const file = sb.path(`stats-${Math.random().toString(36).slice(2)}.jsonl`);
  writeFileSync(file, '');
  const result = run({ KMSCRYPT_STATS: file });
  const kms: Record<string, number> = {};
  for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    for (const [k, v] of Object.entries((JSON.parse(line) as { kms: Record<string, number> }).kms)) kms[k] = (kms[k] ?? 0) + v;
  }
  return { result, kms };
}

/**
 * The attacks of issue 12 on a repository's identity, history and key (items 1, 2, 3, 6), each
 * made against the store's own objects the way its operator could, with stock git: each must fail
 * with one fatal line, no ref moved in the clone and nothing written to the store.
 */
export function trustScenarios(t: Test, backend: TamperBackend): void {
  const published = async (tt: Test) => {
    const sb = scenarioSandbox(tt, backend);
    const store = await backend.newStore(sb, 'victim');
    const src = sb.repo('src');
    sb.git(src, 'remote', 'add', 'origin', store.url);
    sb.commit(src, { 'a.txt': 'one\n' }, 'first');
    sb.git(src, 'push', '-q', 'origin', 'main');
    const descriptor = decodeDescriptor(await store.read('kmscrypt.json'), 'test');
    return { sb, store, src, id: descriptor.repositoryId };
  };

  t.test('identity: a descriptor copied into an empty location is not adopted', async (tt) => {
    const { sb, store, id } = await published(tt);
    const copy = await backend.newStore(sb, 'copy');
    await copy.write('kmscrypt.json', await store.read('kmscrypt.json'));
    const project = sb.repo('project');
    sb.commit(project, { 'other.txt': 'another project\n' }, 'another project');
    sb.git(project, 'remote', 'add', 'origin', copy.url);
    const before = await storeState(copy);
    const pushed = sb.run('git', ['push', 'origin', 'main'], { cwd: project, expectFailure: true });
    refusedWith(tt, pushed, new RegExp(`holds repository ${id}, which was created at ${storeLocation(store)}: a copy of it, or it was moved here; .*fetch or clone it from ${storeLocation(copy)} first$`), 'push to the copy');
    tt.same(await storeState(copy), before, 'nothing was written to the store');
    tt.equal(sb.git(project, 'for-each-ref', 'refs/remotes').trim(), '', 'no remote-tracking ref was created');

    const read = sb.run('git', ['clone', copy.url, sb.path('reader')]);
    const warnings = kmscryptLines(read, 'warning');
    tt.equal(warnings.length, 1, 'reading the copy warns once');
    tt.match(warnings[0], `holds repository ${id}, which was created at ${storeLocation(store)} (moved or copied here); reading it`);
  });

  t.test('identity: a descriptor without a proof, or with a proof altered, in a location without manifests is not adopted', async (tt) => {
    const { sb, store, id } = await published(tt);
    const original = JSON.parse((await store.read('kmscrypt.json')).toString()) as Record<string, unknown>;
    const cases: Array<[string, Record<string, unknown>, RegExp]> = [
      ['an old-format descriptor (version 1, no proof)', { ...original, version: 1, location: undefined, proof: undefined }, /but no manifest, and no proof of who made it/],
      ['a proof whose location was changed to the copy', { ...original, location: 'PLACEHOLDER' }, /its proof does not verify/],
    ];
    for (const [label, fields, pattern] of cases) {
      const copy = await backend.newStore(sb, 'forged');
      if (fields.location === 'PLACEHOLDER') fields.location = storeLocation(copy);
      await copy.write('kmscrypt.json', Buffer.from(JSON.stringify(fields, null, 2) + '\n'));
      const before = await storeState(copy);
      const project = sb.repo(`project-${Math.random().toString(36).slice(2)}`);
      sb.commit(project, { 'x.txt': 'x\n' }, 'x');
      const pushed = sb.run('git', ['push', copy.url, 'main'], { cwd: project, expectFailure: true });
      refusedWith(tt, pushed, new RegExp(`holds a descriptor \\(kmscrypt\\.json\\) of repository ${id} but no manifest, and .*so it is not used; if you created it and it is empty, delete ${storeLocation(copy)}/kmscrypt\\.json and push again$`), `${label}: push`);
      tt.match(kmscryptLines(pushed, 'fatal')[0] ?? '', pattern, `${label}: says what was found`);
      const cloned = sb.run('git', ['clone', copy.url, sb.path(`clone-${Math.random().toString(36).slice(2)}`)], { expectFailure: true });
      refusedWith(tt, cloned, pattern, `${label}: clone`);
      tt.same(await storeState(copy), before, `${label}: nothing was written to the store`);
    }
  });

  t.test('identity: a moved repository is read with a warning; a push from a clone that has not used it there is refused until it fetches', async (tt) => {
    const { sb, store, src, id } = await published(tt);
    const moved = await backend.newStore(sb, 'moved');
    for (const key of await store.keys()) await moved.write(key, await store.read(key));
    const fresh = sb.run('git', ['clone', '-q', moved.url, sb.path('fresh')]);
    tt.equal(kmscryptLines(fresh, 'warning').length, 1, 'a clone of the moved repository warns once');
    tt.equal(sb.git(sb.path('fresh'), 'rev-parse', 'HEAD').trim(), sb.git(src, 'rev-parse', 'HEAD').trim(), 'and reads it');

    sb.git(src, 'remote', 'set-url', 'origin', moved.url);
    sb.commit(src, { 'b.txt': 'two\n' }, 'second');
    const before = await storeState(moved);
    const pushed = sb.run('git', ['push', 'origin', 'main'], { cwd: src, expectFailure: true });
    refusedWith(tt, pushed, new RegExp(`holds repository ${id}, which was created at ${storeLocation(store)}`), 'push to the new location');
    tt.same(await storeState(moved), before, 'nothing was written');
    const fetched = sb.run('git', ['fetch', 'origin'], { cwd: src });
    tt.equal(kmscryptLines(fetched, 'warning').length, 1, 'a fetch accepts the move with one warning');
    sb.git(src, 'push', '-q', 'origin', 'main');
    const again = sb.run('git', ['fetch', 'origin'], { cwd: src });
    tt.equal(kmscryptLines(again, 'warning').length, 0, 'once accepted, no more warnings');
  });

  /**
   * A published repository, a clone (`other`) made before the next push, and an `observer` clone
   * that saw that push: `seen` is its origin/main, `manifests` the store's manifests then.
   */
  const observed = async (tt: Test) => {
    const { sb, store, src } = await published(tt);
    const other = sb.path('other');
    sb.run('git', ['clone', '-q', store.url, other]);
    sb.commit(src, { 'seen.txt': 'the observer sees this\n' }, 'seen by the observer');
    sb.git(src, 'push', '-q', 'origin', 'main');
    const observer = sb.path('observer');
    sb.run('git', ['clone', '-q', store.url, observer]);
    const seen = sb.git(observer, 'rev-parse', 'origin/main').trim();
    const manifests = (await store.keys()).filter((k) => k.startsWith('manifests/'));
    return { sb, store, src, other, observer, seen, manifests };
  };

  t.test('continuity: a clone that skipped generations refuses a forked history', async (tt) => {
    const { sb, store, other, observer, seen, manifests } = await observed(tt);
    // The operator withholds the newest manifest; another clone, which never saw it, pushes three times.
    await store.remove(manifests[manifests.length - 1]);
    for (let i = 0; i < 3; i++) {
      sb.commit(other, { 'fork.txt': `fork ${i}\n` }, `fork ${i}`);
      sb.git(other, 'push', '-q', 'origin', 'main');
    }
    const before = await storeState(store);
    const fetched = sb.run('git', ['fetch', 'origin'], { cwd: observer, expectFailure: true });
    refusedWith(tt, fetched, /: manifest 4 does not descend from the manifest 2 this clone saw: the history was forked \(at manifest 2\); no ref was changed$/, 'fetch of the fork');
    tt.equal(sb.git(observer, 'rev-parse', 'origin/main').trim(), seen, 'no ref moved');
    tt.same(await storeState(store), before, 'nothing was written to the store');
    const pulled = sb.run('git', ['pull', '--ff-only', 'origin', 'main'], { cwd: observer, expectFailure: true });
    refusedWith(tt, pulled, /the history was forked/, 'pull of the fork');
  });

  t.test('continuity: a clone one generation behind refuses a manifest that replaced the one it saw, or that does not follow it', async (tt) => {
    const { sb, store, other, observer, seen, manifests } = await observed(tt);
    tt.equal(manifests.length, 2, 'the observer saw manifest 2, the newest');
    // The operator withholds manifest 2; the other clone, which never saw it, publishes its own manifest 2, then 3.
    await store.remove(manifests[1]);
    const cases: Array<[string, RegExp]> = [
      ['the same generation, other bytes', /: manifest 2 is not the one this clone saw before: it was replaced; no ref was changed$/],
      ['the next generation, on another manifest 2', /: manifest 3 does not follow the manifest 2 this clone saw: the history was rewritten; no ref was changed$/],
    ];
    for (const [i, [label, pattern]] of cases.entries()) {
      sb.commit(other, { 'fork.txt': `fork ${i}\n` }, `fork ${i}`);
      sb.git(other, 'push', '-q', 'origin', 'main');
      const before = await storeState(store);
      const fetched = sb.run('git', ['fetch', 'origin'], { cwd: observer, expectFailure: true });
      refusedWith(tt, fetched, pattern, `${label}: fetch`);
      tt.equal(sb.git(observer, 'rev-parse', 'origin/main').trim(), seen, `${label}: no ref moved`);
      tt.same(await storeState(store), before, `${label}: nothing was written to the store`);
    }
  });

  t.test('continuity: a clone that skipped generations, and slept through a gc, fetches a history that descends from what it saw', async (tt) => {
    const { sb, store, src } = await published(tt);
    const observer = sb.path('observer');
    sb.run('git', ['clone', '-q', store.url, observer]);
    for (let i = 0; i < 4; i++) {
      sb.commit(src, { 'n.txt': `${i}\n` }, `push ${i}`);
      sb.git(src, 'push', '-q', 'origin', 'main');
    }
    sb.run('git', ['kmscrypt', 'gc', store.url, '--grace', '0']);
    tt.equal((await store.keys()).filter((k) => k.startsWith('manifests/')).length, 1, 'gc deleted every manifest the observer did not see but the newest');
    sb.commit(src, { 'n.txt': 'after gc\n' }, 'after gc');
    sb.git(src, 'push', '-q', 'origin', 'main');
    sb.git(observer, 'fetch', '-q', 'origin');
    tt.equal(sb.git(observer, 'rev-parse', 'origin/main').trim(), sb.git(src, 'rev-parse', 'HEAD').trim(), 'the history the gc attested is proved and fetched');
  });

  t.test('keys: after rotate-key every clone follows the endorsement to the new key, with no setting', async (tt) => {
    const { sb, store, src } = await published(tt);
    const observer = sb.path('observer');
    sb.run('git', ['clone', '-q', store.url, observer]);
    const next = await backend.createKey(sb, 'the key the repository moves to');
    sb.run('git', ['kmscrypt', 'rotate-key', 'origin', '--to', next], { cwd: src });
    sb.commit(src, { 'rotated.txt': 'pushed by the clone that rotated\n' }, 'after the rotation');
    sb.git(src, 'push', '-q', 'origin', 'main');
    sb.git(observer, 'pull', '-q', '--ff-only', 'origin', 'main');
    tt.equal(sb.git(observer, 'rev-parse', 'HEAD').trim(), sb.git(src, 'rev-parse', 'HEAD').trim(), 'a clone made before the rotation fetches');
    const pushed = sb.commit(observer, { 'observer.txt': 'pushed by the other clone\n' }, 'from the other clone');
    sb.git(observer, 'push', '-q', 'origin', 'main');
    sb.git(src, 'pull', '-q', '--ff-only', 'origin', 'main');
    tt.equal(sb.git(src, 'rev-parse', 'HEAD').trim(), pushed, 'and pushes, under the new key');
    const repo = (await RemoteRepository.open({ ...backend.remoteConfig(sb, store), keyId: next }))!;
    tt.equal((await repo.latest('read')).sealedBy, next, 'the newest manifest is sealed under the new key');
  });

  t.test('keys: a repository moved to a key this clone never trusted, without an endorsement, is refused before that key is asked anything', async (tt) => {
    const { sb, store, src } = await published(tt);
    const observer = sb.path('observer');
    sb.run('git', ['clone', '-q', store.url, observer]);
    const seen = sb.git(observer, 'rev-parse', 'origin/main').trim();
    const foreign = await backend.createKey(sb, 'a key the observer never trusted');
    sb.commit(src, { 'c.txt': 'three\n' }, 'under another key');
    sb.git(src, '-c', `kmscrypt.keyId=${foreign}`, 'push', '-q', 'origin', 'main');
    const before = await storeState(store);
    const { result, kms } = kmsCalls(sb, (env) => sb.run('git', ['fetch', 'origin'], { cwd: observer, env, expectFailure: true }));
    refusedWith(tt, result, new RegExp(`is protected by KMS key ${foreign}, which this clone does not trust: .*nothing was asked of it; if you trust it: git config kmscrypt\\.keyId ${foreign}$`), 'fetch');
    tt.equal(kms.decrypt ?? 0, 0, 'no Decrypt was sent');
    tt.equal(sb.git(observer, 'rev-parse', 'origin/main').trim(), seen, 'no ref moved');
    tt.same(await storeState(store), before, 'nothing was written');

    // The same, with an endorsement the store forged: a valid blob of the observer's key, made for another repository.
    const forger = (await RemoteRepository.open({ ...backend.remoteConfig(sb, store), keyId: foreign }))!;
    const snapshot = await forger.latest('read');
    const trusted = forger.descriptor.keyId;
    const otherRepository = '00000000-0000-4000-8000-000000000000';
    const blob = await forger.config.keys.encrypt(trusted, endorsementPlaintext(otherRepository, foreign), repositoryContext(otherRepository));
    const dataKey = await forger.generateDataKey(snapshot.manifest);
    const next = forger.successor(snapshot, { keyId: foreign, head: snapshot.manifest!.head, refs: snapshot.manifest!.refs, containers: snapshot.manifest!.containers });
    await forger.publish(next, dataKey, { history: snapshot.chain.history, endorsements: [{ from: trusted, to: foreign, ciphertext: blob.ciphertext }] });
    const forged = sb.run('git', ['fetch', 'origin'], { cwd: observer, expectFailure: true });
    refusedWith(tt, forged, /but the endorsement does not verify under .*: it was forged; nothing was asked of .*; no ref was changed$/, 'fetch of a forged endorsement');
    tt.equal(sb.git(observer, 'rev-parse', 'origin/main').trim(), seen, 'no ref moved');
  });

  t.test('bounded memory: an oversized newest manifest is refused before it is read', async (tt) => {
    const { sb, store } = await published(tt);
    const observer = sb.path('observer');
    sb.run('git', ['clone', '-q', store.url, observer]);
    const seen = sb.git(observer, 'rev-parse', 'origin/main').trim();
    // A sparse file: the local store sees 1.5 GB; over S3 the object is 320 MiB (more than the limit the helper's memory must stay under).
    const size = backend.env.AWS_ENDPOINT_URL_S3 ? 320 << 20 : 1_500_000_000;
    const key = 'manifests/00000000000000000002';
    await store.writeZeros(key, size);
    // The helper itself runs under /usr/bin/time, through a shim first on PATH.
    const shims = sb.path('measured-bin');
    const report = sb.path('helper-rusage.txt');
    mkdirSync(shims, { recursive: true });
    const quote = (x: string) => `'${x.replace(/'/g, `'\\''`)}'`;
    writeFileSync(join(shims, 'git-remote-kmscrypt'), `#!/bin/sh\nexec /usr/bin/time -v -o ${quote(report)} ${quote(process.execPath)} ${quote(join(BIN, 'git-remote-kmscrypt'))} "$@"\n`, { mode: 0o755 });
    const fetched = sb.run('git', ['fetch', 'origin'], { cwd: observer, expectFailure: true, env: { PATH: `${shims}:${sb.env.PATH}` } });
    refusedWith(tt, fetched, new RegExp(`${storeLocation(store)}/${key} is ${size} bytes, over the 67108864-byte limit for a manifest; it was not written by kmscrypt$`), 'fetch');
    const rusage = readFileSync(report, 'utf8');
    tt.match(rusage, /Command being timed: ".*git-remote-kmscrypt/, 'the helper was measured');
    const peakKiB = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(rusage)?.[1]);
    tt.ok(peakKiB > 20 * 1024 && peakKiB < 200 * 1024, `the helper peaked at ${Math.round(peakKiB / 1024)} MiB, under 200 MiB (the object is ${Math.round(size / 2 ** 20)} MiB)`);
    tt.equal(sb.git(observer, 'rev-parse', 'origin/main').trim(), seen, 'no ref moved');
  });
}
