import t, { Test } from 'tap';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Keyring } from '../src/keys/keyring';
import { withLocalKms } from './support/local-kms-sandbox';
import { Sandbox } from './support/sandbox';
import { localStore, StoreAccess } from './support/store-access';

interface Info {
  repositoryId: string;
  key: { arn: string };
  containerKeys: Record<string, number>;
  generation: number;
}

const git = (sb: Sandbox, cwd: string, ...args: string[]) => sb.runAsync(['git', ...args], { cwd });

/** `git kmscrypt info` outside any clone: it trusts alias/kmscrypt, or the key `trusting` names. */
async function info(sb: Sandbox, url: string, trusting?: string): Promise<Info> {
  const env = trusting ? { KMSCRYPT_KEY_ID: trusting } : {};
  return JSON.parse((await sb.runAsync(['git', 'kmscrypt', 'info', url, '--json'], { env })).stdout) as Info;
}

async function snapshot(store: StoreAccess): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const key of await store.keys()) out.set(key, (await store.read(key)).toString('base64'));
  return out;
}

function disable(keyring: Keyring, keyId: string): void {
  keyring.update((file) => {
    file.keys.find((k) => k.keyId === keyId)!.state = 'Disabled';
  });
}

/**
 * A fresh clone whose own key (alias/kmscrypt) is the disabled old key cannot check the old key's
 * endorsement of the new one: it is told the one command that works, which then works.
 */
async function freshCloneNeedsTheNewKey(t: Test, sb: Sandbox, url: string, newArn: string, dir: string): Promise<void> {
  const refused = await sb.runAsync(['git', 'clone', url, dir], { expectFailure: true });
  const lines = refused.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
  t.equal(lines.length, 1, 'one line', { stderr: refused.stderr });
  t.match(lines[0], /cannot check that it endorsed .*DisabledException/, 'naming the disabled key');
  t.ok(lines[0]?.endsWith(`if you trust ${newArn}: git clone -c kmscrypt.keyId=${newArn} ${url}`), 'and the command that works', { line: lines[0] });
  await sb.runAsync(['git', 'clone', '-q', '-c', `kmscrypt.keyId=${newArn}`, url, dir]);
}

/** A repository of two pushes (two containers) and a clone made before any rotation. */
async function published(sb: Sandbox) {
  const store = localStore(sb.path('store'));
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'one\n' }, 'first');
  sb.git(src, 'remote', 'add', 'origin', store.url);
  await git(sb, src, 'push', '-q', 'origin', 'main');
  sb.commit(src, { 'b.txt': 'two\n' }, 'second');
  await git(sb, src, 'push', '-q', 'origin', 'main');
  await sb.runAsync(['git', 'clone', '-q', store.url, sb.path('before')]);
  return { store, src, before: sb.path('before') };
}

t.test('local keyring: rotate, rerun, a later push under the old key, old key disabled, old and new clones keep working', async (t) => {
  const sb = new Sandbox(t);
  const { store, src, before } = await published(sb);
  const old = await info(sb, store.url);
  const keyring = new Keyring(sb.env.KMSCRYPT_KEYRING);
  const target = keyring.createKey('rotation target');
  const newArn = `arn:aws:kms:local:000000000000:key/${target.keyId}`;
  const containersBefore = new Map([...(await snapshot(store))].filter(([k]) => k.startsWith('containers/')));

  const rotated = await sb.runAsync(['git', 'kmscrypt', 'rotate-key', 'origin', '--to', target.keyId], { cwd: src });
  t.match(rotated.stdout, `Rewrapped 2 data keys of repository ${old.repositoryId} under ${newArn}; published manifest generation 3`);
  t.match(rotated.stdout, `No longer used by the newest manifest: ${old.key.arn}`);
  const after = await info(sb, store.url);
  t.equal(after.key.arn, newArn, 'the manifest names the new key for new data');
  t.same(after.containerKeys, { [newArn]: 2 }, 'every data key rewrapped');
  const containersAfter = new Map([...(await snapshot(store))].filter(([k]) => k.startsWith('containers/')));
  t.same(containersAfter, containersBefore, 'no container was rewritten');

  const again = await sb.runAsync(['git', 'kmscrypt', 'rotate-key', store.url, '--to', newArn]);
  t.match(again.stdout, `Repository ${old.repositoryId} is already entirely under ${newArn} (2 data keys); nothing to do`);
  t.equal((await info(sb, store.url)).generation, 3, 'nothing published');

  // A clone still configured for the old key pushes after the rotation (a real race: the next test).
  await git(sb, before, 'fetch', '-q', 'origin');
  sb.commit(before, { 'c.txt': 'three\n' }, 'third, under the old key');
  await git(sb, before, '-c', `kmscrypt.keyId=${old.key.arn}`, 'push', '-q', 'origin', 'main');
  t.same((await info(sb, store.url)).containerKeys, { [newArn]: 2, [old.key.arn]: 1 });
  const resumed = await sb.runAsync(['git', 'kmscrypt', 'rotate-key', store.url, '--to', target.keyId, '--json']);
  t.match(
    JSON.parse(resumed.stdout),
    { rewrapped: 1, alreadyUnderKey: 2, generation: 5, keyArn: newArn, previousKeys: [old.key.arn] },
    'only the new container is rewrapped',
  );

  disable(keyring, old.key.arn.split('/').pop()!);
  const fourth = sb.commit(before, { 'd.txt': 'four\n' }, 'fourth, after the rotation');
  await git(sb, before, 'push', '-q', 'origin', 'main');
  // Outside any clone the old key (alias/kmscrypt) is what is trusted: disabled, the new key is named.
  t.same((await info(sb, store.url, newArn)).containerKeys, { [newArn]: 4 }, 'new pushes use the new key');
  await git(sb, src, 'pull', '-q', '--ff-only', 'origin', 'main');
  t.equal(sb.git(src, 'rev-parse', 'HEAD').trim(), fourth, 'a clone made before the rotation fetches');
  // A fresh clone trusts its alias/kmscrypt, the old key: with it disabled it cannot check the endorsement of the new one.
  await freshCloneNeedsTheNewKey(t, sb, store.url, newArn, sb.path('fresh'));
  t.equal(readFileSync(join(sb.path('fresh'), 'c.txt'), 'utf8'), 'three\n', 'a fresh clone reads everything with the old key disabled');
  sb.git(sb.path('fresh'), 'fsck', '--strict', '--no-dangling');
  // Outside any clone, with the old key disabled, the new key is trusted by naming it.
  const verified = await sb.runAsync(['git', 'kmscrypt', 'verify', store.url], { env: { KMSCRYPT_KEY_ID: newArn } });
  t.match(verified.stdout, /^verify: OK/m);
  t.match(
    verified.stdout,
    new RegExp(
      `^note: manifest 1 \\(history, not needed to read the repository\\) is sealed under ${old.key.arn} and was not authenticated: .*DisabledException`,
      'm',
    ),
    'old manifests under the retired key are information',
  );
});

t.test('AWS KMS endpoint: an interrupted rotation changes nothing; the rerun completes; the old key can be disabled', async (t) => {
  const { sb, server, keyring } = await withLocalKms(t);
  const { store, before } = await published(sb);
  const old = await info(sb, store.url);
  t.match(old.key.arn, /^arn:aws:kms:us-east-1:111122223333:key\//);
  const target = keyring.createKey('rotation target');
  const newArn = `arn:aws:kms:us-east-1:111122223333:key/${target.keyId}`;
  const untouched = await snapshot(store);

  const killed = await sb.runAsync(['git', 'kmscrypt', 'rotate-key', store.url, '--to', target.keyId], {
    expectFailure: true,
    env: { KMSCRYPT_TEST_KILL_POINT: 'rotate-rewrapped' },
  });
  t.match(killed.stderr, /kmscrypt: test kill point rotate-rewrapped\n/, 'rotate-key was killed (SIGKILL) after rewrapping both data keys, before publishing');
  t.same(await snapshot(store), untouched, 'after the kill the store is byte for byte as before');

  const unknown = await sb.runAsync(['git', 'kmscrypt', 'rotate-key', store.url, '--to', 'alias/nope'], { expectFailure: true });
  t.equal(
    unknown.stderr,
    "fatal: kmscrypt: kms:DescribeKey: key alias/nope not found in AWS KMS region us-east-1 (NotFoundException); give --to a key of this region ('aws kms list-aliases' lists them), or check the region (AWS_REGION)\n",
    'a --to key KMS does not have: name one it has, not kmscrypt.keyId',
  );
  t.equal(unknown.status, 128);

  server.deny(['kms:ReEncrypt']);
  const noRewrap = await sb.runAsync(['git', 'kmscrypt', 'rotate-key', store.url, '--to', target.keyId], { expectFailure: true });
  const noRewrapLines = noRewrap.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
  t.equal(noRewrapLines.length, 1, 'one line');
  t.match(
    noRewrapLines[0],
    /^fatal: kmscrypt: cannot rewrap the data key of container [0-9a-f]{32} under arn:\S+: kms:ReEncrypt .*denied.*; nothing was changed: run rotate-key again once this is fixed$/,
  );

  server.deny(['kms:GenerateDataKey']);
  const reEncrypts = server.calls.ReEncrypt ?? 0;
  const failed = await sb.runAsync(['git', 'kmscrypt', 'rotate-key', store.url, '--to', target.keyId], { expectFailure: true });
  const lines = failed.stderr.split('\n').filter((l) => l.trim() !== '');
  t.equal(lines.length, 1, 'exactly one line', { stderr: failed.stderr });
  t.match(
    lines[0],
    new RegExp(
      `^fatal: kmscrypt: cannot generate the new manifest's data key under ${newArn} \\(the 2 rewrapped data keys were not published\\): kms:GenerateDataKey .*denied \\(AccessDeniedException\\)`,
    ),
  );
  t.match(lines[0], /nothing was changed: run rotate-key again once this is fixed$/);
  t.equal((server.calls.ReEncrypt ?? 0) - reEncrypts, 2, 'both data keys had been rewrapped when publishing failed');
  t.same(await snapshot(store), untouched, 'the store is byte for byte as before');

  server.deny([]);
  const done = await sb.runAsync(['git', 'kmscrypt', 'rotate-key', store.url, '--to', target.keyId]);
  t.match(done.stdout, `Rewrapped 2 data keys of repository ${old.repositoryId} under ${newArn}; published manifest generation 3`);
  t.same((await info(sb, store.url)).containerKeys, { [newArn]: 2 });

  // Every clone fetches once after the rotation (it follows the old key's endorsement of the new
  // one); then the old key can be disabled.
  await git(sb, before, 'fetch', '-q', 'origin');
  disable(keyring, old.key.arn.split('/').pop()!);
  await freshCloneNeedsTheNewKey(t, sb, store.url, newArn, sb.path('fresh'));
  t.equal(readFileSync(join(sb.path('fresh'), 'b.txt'), 'utf8'), 'two\n', 'a fresh clone reads everything with the old key disabled');
  sb.commit(before, { 'c.txt': 'three\n' }, 'third');
  await git(sb, before, 'pull', '-q', '--rebase', 'origin', 'main');
  await git(sb, before, 'push', '-q', 'origin', 'main');
  t.same((await info(sb, store.url, newArn)).containerKeys, { [newArn]: 3 }, 'the old clone pushes under the new key');
  // Outside any clone, with the old key disabled, the new key is trusted by naming it.
  const verified = await sb.runAsync(['git', 'kmscrypt', 'verify', store.url], { env: { KMSCRYPT_KEY_ID: newArn } });
  t.match(verified.stdout, /^verify: OK/m);
});

t.test('a push that lands while rotate-key is about to publish: rotate-key loses the race, starts over, and rewraps that push too', async (t) => {
  const sb = new Sandbox(t);
  const { store, before } = await published(sb);
  const keyring = new Keyring(sb.env.KMSCRYPT_KEYRING);
  const target = keyring.createKey('rotation target');
  const newArn = `arn:aws:kms:local:000000000000:key/${target.keyId}`;
  const pause = sb.path('pause');
  mkdirSync(pause);
  const rotating = sb.runAsync(['git', 'kmscrypt', 'rotate-key', store.url, '--to', target.keyId, '--json'], {
    env: { KMSCRYPT_TEST_PAUSE_POINT: `rotate-before-publish:${pause}` },
  });
  while (!existsSync(join(pause, 'reached'))) await new Promise((r) => setTimeout(r, 20));
  // rotate-key has read generation 2 and rewrapped its two data keys; a push lands now.
  const raced = sb.commit(before, { 'c.txt': 'three\n' }, 'pushed while rotate-key was about to publish');
  await git(sb, before, 'push', '-q', 'origin', 'main');
  t.equal((await info(sb, store.url)).generation, 3, 'the push published generation 3 while rotate-key waited to publish it');
  writeFileSync(join(pause, 'go'), '');
  const report = JSON.parse((await rotating).stdout) as { rewrapped: number; generation: number; keyArn: string };
  t.match(
    report,
    { rewrapped: 3, generation: 4, keyArn: newArn },
    'rotate-key lost generation 3 to the push, read it, and published generation 4 with all three data keys rewrapped',
  );
  t.same((await info(sb, store.url)).containerKeys, { [newArn]: 3 }, "the push's data key is under the new key too");
  await sb.runAsync(['git', 'clone', '-q', store.url, sb.path('fresh')]);
  t.equal(sb.git(sb.path('fresh'), 'rev-parse', 'HEAD').trim(), raced, 'the push that raced the rotation is kept');
  sb.git(sb.path('fresh'), 'fsck', '--strict', '--no-dangling');
});

/** A clone made now, and the key its HEAD was read under. */
async function cloneNow(sb: Sandbox, url: string, name: string): Promise<string> {
  await sb.runAsync(['git', 'clone', '-q', url, sb.path(name)]);
  return sb.path(name);
}

async function pushOne(sb: Sandbox, cwd: string, file: string): Promise<string> {
  await git(sb, cwd, 'pull', '-q', '--rebase', 'origin', 'main');
  const commit = sb.commit(cwd, { [file]: `${file}\n` }, file);
  await git(sb, cwd, 'push', '-q', 'origin', 'main');
  return commit;
}

t.test(
  'three rotations: the rotating clone, a clone that slept through all of them and clones that missed one push and fetch with no new setting',
  async (t) => {
    const sb = new Sandbox(t);
    const { store, src, before } = await published(sb);
    const keyring = new Keyring(sb.env.KMSCRYPT_KEYRING);
    const arn = (id: string) => `arn:aws:kms:local:000000000000:key/${id}`;
    const k1 = (await info(sb, store.url)).key.arn;
    const [k2, k3, k4] = ['second', 'third', 'fourth'].map((d) => arn(keyring.createKey(`${d} key`).keyId));

    await sb.runAsync(['git', 'kmscrypt', 'rotate-key', 'origin', '--to', k2], { cwd: src });
    await pushOne(sb, src, 'after-first-rotation');
    t.equal((await info(sb, store.url)).key.arn, k2, 'the rotating clone pushes under the new key, with no setting');
    const afterOne = await cloneNow(sb, store.url, 'after-one');

    await sb.runAsync(['git', 'kmscrypt', 'rotate-key', 'origin', '--to', k3], { cwd: src });
    await pushOne(sb, src, 'after-second-rotation');
    const afterTwo = await cloneNow(sb, store.url, 'after-two');
    // Two rotations: a clone that saw K2 (missed K2 -> K3) catches up, pushes and fetches.
    const fromAfterOne = await pushOne(sb, afterOne, 'from-a-clone-that-missed-one-rotation');
    await git(sb, src, 'pull', '-q', '--ff-only', 'origin', 'main');
    t.equal(sb.git(src, 'rev-parse', 'HEAD').trim(), fromAfterOne, 'the rotating clone fetches it');

    await sb.runAsync(['git', 'kmscrypt', 'rotate-key', 'origin', '--to', k4], { cwd: src });
    t.same(Object.keys((await info(sb, store.url)).containerKeys), [k4], 'every data key is under the fourth key');
    // Three rotations: a clone made before any of them follows K1 -> K2 -> K3 -> K4.
    const fromBefore = await pushOne(sb, before, 'from-a-clone-that-slept-through-three-rotations');
    const fromAfterTwo = await pushOne(sb, afterTwo, 'from-a-clone-that-missed-one-rotation-again');
    const fromAfterOneAgain = await pushOne(sb, afterOne, 'and-again');
    await git(sb, src, 'pull', '-q', '--ff-only', 'origin', 'main');
    const history = sb.git(src, 'rev-list', 'HEAD');
    for (const c of [fromBefore, fromAfterTwo, fromAfterOneAgain]) t.match(history, c, `${c.slice(0, 8)} landed and was fetched`);
    t.same(Object.keys((await info(sb, store.url)).containerKeys).sort(), [k4], 'every push after the rotation used the newest key');

    // Every clone has accepted K4: the old keys can be disabled.
    for (const k of [k1, k2, k3]) disable(keyring, k.split('/').pop()!);
    for (const clone of [before, afterOne, afterTwo, src]) await git(sb, clone, 'pull', '-q', '--rebase', 'origin', 'main');
    await pushOne(sb, before, 'with-the-old-keys-disabled');
    t.pass('with the old keys disabled every clone still pushes and fetches');
    for (const k of [k1, k2, k3]) {
      keyring.update((file) => {
        file.keys.find((key) => key.keyId === k.split('/').pop())!.state = 'Enabled';
      });
    }

    // Someone whose own alias/kmscrypt is another key has never trusted any of these.
    const stranger = sb.path('stranger-keyring.json');
    copyFileSync(keyring.path, stranger);
    chmodSync(stranger, 0o600);
    const theirs = new Keyring(stranger);
    const own = theirs.createKey("the stranger's own key");
    theirs.update((file) => {
      file.aliases['alias/kmscrypt'] = own.keyId;
    });
    const env = { KMSCRYPT_KEYRING: stranger };
    const refused = await sb.runAsync(['git', 'clone', store.url, sb.path('stranger')], { env, expectFailure: true });
    const lines = refused.stderr.split('\n').filter((l) => l.startsWith('fatal: kmscrypt:'));
    t.equal(lines.length, 1, 'a fresh clone of the rotated repository is refused with one line');
    const fix = `git clone -c kmscrypt.keyId=${k4} ${store.url}`;
    t.ok(lines[0]?.endsWith(`if you trust it: ${fix}`), 'which is the command that works', { line: lines[0] });
    await sb.runAsync(['git', 'clone', '-q', '-c', `kmscrypt.keyId=${k4}`, store.url, sb.path('stranger')], { env });
    t.equal(sb.git(sb.path('stranger'), 'rev-parse', 'HEAD').trim(), sb.git(before, 'rev-parse', 'HEAD').trim(), 'running it clones the repository');
  },
);

t.test('rotate-key needs --to and an enabled key', async (t) => {
  const sb = new Sandbox(t);
  const { store } = await published(sb);
  const missing = sb.run('git', ['kmscrypt', 'rotate-key', store.url], { expectFailure: true });
  t.match(missing.stderr, /^fatal: kmscrypt: missing --to <key>/m);
  const keyring = new Keyring(sb.env.KMSCRYPT_KEYRING);
  const target = keyring.createKey('disabled target');
  disable(keyring, target.keyId);
  const disabled = sb.run('git', ['kmscrypt', 'rotate-key', store.url, '--to', target.keyId], { expectFailure: true });
  t.match(disabled.stderr, new RegExp(`^fatal: kmscrypt: key ${target.keyId} \\(\\S+\\) is disabled; enable it before moving the repository to it$`, 'm'));
  // A key the keyring lacks: create it or name one it holds (kmscrypt.keyId is not what rotate-key reads).
  const keyringPath = sb.env.KMSCRYPT_KEYRING!;
  const unknown = sb.run('git', ['kmscrypt', 'rotate-key', store.url, '--to', 'alias/nope'], { expectFailure: true });
  t.equal(
    unknown.stderr,
    `fatal: kmscrypt: key alias/nope not found in local keyring ${keyringPath} (NotFoundException); create it with 'git kmscrypt keys create --alias nope', or give --to a key that 'git kmscrypt keys list' shows\n`,
  );
  t.equal(unknown.status, 128);
  const unknownId = '0b5e7d2a-58c4-4a8e-9d7b-3f1c2a9e6d40';
  const byId = sb.run('git', ['kmscrypt', 'rotate-key', store.url, '--to', unknownId], { expectFailure: true });
  t.equal(
    byId.stderr,
    `fatal: kmscrypt: key ${unknownId} not found in local keyring ${keyringPath} (NotFoundException); give --to a key that 'git kmscrypt keys list' shows, or create one with 'git kmscrypt keys create'\n`,
  );
  t.equal(byId.status, 128);
  // Following the first fix works.
  sb.run('git', ['kmscrypt', 'keys', 'create', '--alias', 'nope']);
  sb.run('git', ['kmscrypt', 'rotate-key', store.url, '--to', 'alias/nope']);
});
