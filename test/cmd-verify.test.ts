import t, { Test } from 'tap';
import { randomBytes } from 'node:crypto';
import { OBJ_BLOB } from '../src/git/pack-format';
import { Keyring } from '../src/keys/keyring';
import { LocalKeyProvider } from '../src/keys/local-key-provider';
import { openContainer } from '../src/remote/container-reader';
import { LARGE_RECORD } from '../src/remote/container-reader';
import { RemoteRepository } from '../src/remote/remote-repository';
import type { VerifyReport } from '../src/remote/verify-report';
import { LocalStorage } from '../src/storage/local-storage';
import { Sandbox } from './support/sandbox';
import { localStore, StoreAccess } from './support/store-access';

/** What `git kmscrypt verify --json` prints. */
interface Report extends VerifyReport {
  ok: boolean;
}

/** A repository pushed in three steps (three containers), one with a 17 MiB file (a streamed CBC record). */
async function published(t: Test) {
  const sb = new Sandbox(t);
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.commit(src, { 'README.md': '# project\n', 'src/main.c': 'int main(void) { return 0; }\n' }, 'first');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  sb.git(src, 'push', '-q', 'origin', 'main');
  sb.commit(src, { 'src/main.c': 'int main(void) { return 1; }\n', 'big.bin': randomBytes(LARGE_RECORD + (1 << 20)) }, 'second');
  sb.git(src, 'push', '-q', 'origin', 'main');
  sb.git(src, 'tag', '-a', 'v1', '-m', 'release');
  sb.git(src, 'branch', 'topic');
  sb.commit(src, { NEWS: 'news\n' }, 'third');
  sb.git(src, 'push', '-q', 'origin', 'main', 'topic', 'v1');
  const repo = (await RemoteRepository.open({
    url: store.url.replace(/^kmscrypt::/, ''),
    storage: new LocalStorage(sb.path('store')),
    keys: new LocalKeyProvider(new Keyring(sb.env.KMSCRYPT_KEYRING)),
    keyProvider: 'local',
  }))!;
  const manifest = (await repo.latest()).manifest!;
  return { sb, store, src, repo, manifest };
}

function verify(sb: Sandbox, target: string, expectFailure = false, cwd?: string): Report {
  const r = sb.run('git', ['kmscrypt', 'verify', target, '--json'], { expectFailure, cwd });
  return JSON.parse(r.stdout) as Report;
}

async function flip(store: StoreAccess, key: string, position: number): Promise<() => Promise<void>> {
  const original = await store.read(key);
  const bad = Buffer.from(original);
  bad[position] ^= 0x01;
  await store.write(key, bad);
  return () => store.write(key, original);
}

t.test('a sound repository: exit 0 with the counts; an orphan container is information only', async (t) => {
  const { sb, store, src, manifest } = await published(t);
  const report = verify(sb, 'origin', false, src);
  t.same(report.problems, [], 'no problem');
  t.equal(report.ok, true);
  t.equal(report.manifests, 3);
  t.equal(report.generation, 3);
  t.equal(report.containers, 3);
  t.equal(report.records, sb.objects(src).length, 'one record per pushed object');
  t.equal(report.refs, 3, 'main, topic, v1');
  const sizes = await Promise.all((await store.keys()).map(async (k) => (await store.read(k)).length));
  t.equal(
    report.bytes,
    sizes.reduce((a, b) => a + b, 0),
    'every stored byte counted',
  );

  const text = sb.run('git', ['kmscrypt', 'verify', store.url]).stdout;
  t.match(text, /^ {2}manifests: +3 stored, newest readable generation 3$/m);
  t.match(text, /^ {2}containers: 3 \(0 more not in the manifest\)$/m);
  t.match(text, /^verify: OK/m);

  const orphan = 'f'.repeat(32);
  await store.write(`containers/${orphan}`, await store.read(`containers/${manifest.containers[0].id}`));
  const withOrphan = verify(sb, store.url);
  t.equal(withOrphan.ok, true, 'an orphan is not a problem');
  t.same(
    withOrphan.orphans.map((o) => o.id),
    [orphan],
  );
  t.match(withOrphan.notes.join('\n'), new RegExp(`container ${orphan} \\(\\d+ bytes\\) is not in manifest 3`));
});

t.test('a flipped byte in any record, the preamble or a large record is named precisely', async (t) => {
  const { sb, store, repo, manifest } = await published(t);
  // A blob of the first push that a later commit replaced: an older container's record.
  const first = manifest.containers[0];
  const { index } = await openContainer(repo, first);
  const k = [...Array(index.count).keys()].find((i) => index.types[i] === OBJ_BLOB)!;
  let restore = await flip(store, `containers/${first.id}`, index.offsets[k] + Math.floor(index.lengths[k] / 2));
  const r = sb.run('git', ['kmscrypt', 'verify', store.url], { expectFailure: true });
  t.equal(r.status, 1);
  // Small objects are sealed in segments (docs/FORMAT.md §5.6): the failure names the segment's objects.
  const [u0, u1] = [index.unitFirst[k], index.unitLast(k)];
  const named = u0 === u1 ? `object ${index.oidHex(k)}` : `segment of ${u1 - u0 + 1} objects, ${index.oidHex(u0)} to ${index.oidHex(u1)},`;
  t.ok(u0 <= k && k <= u1);
  t.match(r.stdout, new RegExp(`^problem: ${named} in container ${first.id} failed authentication`, 'm'), 'names the container and the objects');
  t.notMatch(r.stdout, /could not be checked after that failure/, 'the rest of the container was still checked');
  t.match(r.stdout, /^verify: \d+ problems? found$/m);
  const json = verify(sb, store.url, true);
  t.equal(json.records, sb.objects(sb.path('src')).length, 'the other records were still read');
  await restore();

  const second = manifest.containers[1];
  const opened = await openContainer(repo, second);
  const large = [...Array(opened.index.count).keys()].find((i) => opened.index.lengths[i] > LARGE_RECORD)!;
  t.ok(large !== undefined, 'the 17 MiB file is a streamed record');
  restore = await flip(store, `containers/${second.id}`, opened.index.offsets[large] + 12345);
  const big = verify(sb, store.url, true);
  t.match(big.problems.join('\n'), new RegExp(`object ${opened.index.oidHex(large)} in container ${second.id} failed authentication`));
  await restore();

  restore = await flip(store, `containers/${second.id}`, 30);
  const preamble = verify(sb, store.url, true);
  t.same(preamble.problems, [`container ${second.id}: its plaintext preamble does not match the manifest: it was altered`], 'only the preamble is reported');
  await restore();
  t.equal(verify(sb, store.url).ok, true, 'restored store verifies again');
});

t.test('a missing container and an altered older manifest are problems', async (t) => {
  const { sb, store, manifest } = await published(t);
  const gone = manifest.containers[1];
  const bytes = await store.read(`containers/${gone.id}`);
  await store.remove(`containers/${gone.id}`);
  const missing = verify(sb, store.url, true);
  t.match(missing.problems[0], `container ${gone.id}, listed in manifest 3, is missing from the store`);
  t.match(missing.problems.join('\n'), /git fsck --strict: missing|history is incomplete|no container holds/, 'and the refs that needed it');
  await store.write(`containers/${gone.id}`, bytes);

  const key = 'manifests/00000000000000000001';
  const restore = await flip(store, key, (await store.read(key)).length - 5);
  const old = verify(sb, store.url, true);
  t.match(old.problems.join('\n'), /manifest 1 failed authentication/);
  await restore();
  t.equal(verify(sb, store.url).ok, true);
});
