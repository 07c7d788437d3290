/**
 * What a clone remembers per repository ID (src/remote/local-state.ts, docs/FORMAT.md §8): the
 * generation only increases, the manifest hash follows the generation, fetched containers only
 * accumulate and are pruned to the ones the manifest still lists.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStateFile } from '../src/remote/local-state';

const repositoryId = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
const h = (c: string) => c.repeat(64);

function stateDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kmscrypt-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'git', 'kmscrypt');
}

t.test('a clone that has seen nothing', async (t) => {
  const dir = stateDir(t);
  t.same(await LocalStateFile.at(dir, repositoryId).load(), { generation: 0, manifestHash: null, fetched: [], trustedKeys: [] });
  t.same(await LocalStateFile.at(undefined, repositoryId).load(), { generation: 0, manifestHash: null, fetched: [], trustedKeys: [] }, 'outside a repository');
  await LocalStateFile.at(undefined, repositoryId).update({ generation: 5 });
  t.same(await LocalStateFile.at(undefined, repositoryId).load(), { generation: 0, manifestHash: null, fetched: [], trustedKeys: [] }, 'nothing is kept outside a repository');
});

t.test('the file lives at <stateDir>/<repository-id>.json and holds JSON', async (t) => {
  const dir = stateDir(t);
  await LocalStateFile.at(dir, repositoryId).update({ generation: 3, manifestHash: h('a'), fetched: ['c1'] });
  t.same(readdirSync(dir), [`${repositoryId}.json`], 'no temporary file is left');
  t.same(JSON.parse(readFileSync(join(dir, `${repositoryId}.json`), 'utf8')), { generation: 3, manifestHash: h('a'), fetched: ['c1'], trustedKeys: [] });
  t.same(await LocalStateFile.at(dir, 'ffffffff-ffff-4fff-8fff-ffffffffffff').load(), { generation: 0, manifestHash: null, fetched: [], trustedKeys: [] }, 'another repository ID has its own state');
});

t.test('the generation only increases; the hash follows it', async (t) => {
  const state = LocalStateFile.at(stateDir(t), repositoryId);
  await state.update({ generation: 4, manifestHash: h('a') });
  await state.update({ generation: 2, manifestHash: h('b') });
  t.same(await state.load(), { generation: 4, manifestHash: h('a'), fetched: [], trustedKeys: [] }, 'a lower generation is ignored, and so is its hash');
  await state.update({ generation: 4, manifestHash: h('c') });
  t.equal((await state.load()).manifestHash, h('c'), 'the same generation replaces the hash');
  await state.update({ generation: 9, manifestHash: h('d') });
  t.same(await state.load(), { generation: 9, manifestHash: h('d'), fetched: [], trustedKeys: [] });
  await state.update({ fetched: ['x'] });
  t.same(await state.load(), { generation: 9, manifestHash: h('d'), fetched: ['x'], trustedKeys: [] }, 'an update without a generation keeps it');
  await state.update({ generation: 0 });
  t.equal((await state.load()).generation, 9, 'generation 0 does not reset it');
});

t.test('fetched containers accumulate and are pruned to the known ones', async (t) => {
  const state = LocalStateFile.at(stateDir(t), repositoryId);
  await state.update({ fetched: ['c1', 'c2'] });
  await state.update({ fetched: ['c2', 'c3'] });
  t.same((await state.load()).fetched, ['c1', 'c2', 'c3'], 'a union without duplicates');
  await state.update({ known: ['c2', 'c3', 'c4'] });
  t.same((await state.load()).fetched, ['c2', 'c3'], 'c1 is no longer in the manifest');
  await state.update({ fetched: ['c4', 'c5'], known: ['c3', 'c4'] });
  t.same((await state.load()).fetched, ['c3', 'c4'], 'new ones are pruned too');
  await state.update({ known: [] });
  t.same((await state.load()).fetched, [], 'an empty manifest forgets every container');
});

t.test('a corrupt file is refused (forgetting it would switch off rollback detection); bad fields are dropped', async (t) => {
  const dir = stateDir(t);
  const state = LocalStateFile.at(dir, repositoryId);
  await state.update({ generation: 1 });
  const file = join(dir, `${repositoryId}.json`);
  writeFileSync(file, '{not json');
  await t.rejects(state.load(), { code: 'CORRUPT', message: /is corrupt; delete it/ });
  writeFileSync(file, JSON.stringify({ generation: 1.5, manifestHash: 7, fetched: ['ok', 3, null] }));
  t.same(await state.load(), { generation: 0, manifestHash: null, fetched: ['ok'], trustedKeys: [] });
  writeFileSync(file, JSON.stringify({ generation: 6 }));
  t.same(await state.load(), { generation: 6, manifestHash: null, fetched: [], trustedKeys: [] });
  writeFileSync(file, JSON.stringify({ generation: 6, trustedKey: 'arn:old' }));
  t.same((await state.load()).trustedKeys, ['arn:old'], 'the one key an earlier version remembered is read');
});

t.test('trusted keys accumulate, each once', async (t) => {
  const state = LocalStateFile.at(stateDir(t), repositoryId);
  await state.update({ trustedKey: 'arn:k1' });
  await state.update({ trustedKey: 'arn:k2', generation: 2 });
  await state.update({ trustedKey: 'arn:k1' });
  t.same((await state.load()).trustedKeys, ['arn:k1', 'arn:k2']);
});

/**
 * Two git processes of one clone update the state at once (a fetch and a push, say): under the
 * lock neither undoes the other. Each child process writes generations of its own parity and
 * containers of its own name; an unlocked read-modify-write loses updates of both kinds.
 */
t.test('two processes updating at once never lower the generation nor lose a container', async (t) => {
  const dir = stateDir(t);
  const rounds = 60;
  const script = `
    const { LocalStateFile } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'remote', 'local-state.js'))});
    (async () => {
      const [dir, id, parity, rounds] = process.argv.slice(1);
      const state = LocalStateFile.at(dir, id);
      for (let i = 0; i < Number(rounds); i++) {
        await state.update({ generation: 2 * i + Number(parity), manifestHash: String(2 * i + Number(parity)).padStart(64, '0'), fetched: ['p' + parity + '-' + i] });
        const seen = (await state.load()).generation;
        if (seen < 2 * i + Number(parity)) { console.error('lowered to ' + seen + ' after writing ' + (2 * i + Number(parity))); process.exit(1); }
      }
    })().catch((err) => { console.error(err); process.exit(1); });
  `;
  const run = (parity: number) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['-e', script, dir, repositoryId, String(parity), String(rounds)], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stderr }));
    });
  const results = await Promise.all([run(0), run(1)]);
  for (const r of results) t.equal(r.code, 0, 'the updater saw its own generation or a higher one after every update', { stderr: r.stderr });
  const final = await LocalStateFile.at(dir, repositoryId).load();
  t.equal(final.generation, 2 * (rounds - 1) + 1, 'the highest generation written is the one kept');
  t.equal(final.manifestHash, String(final.generation).padStart(64, '0'), 'with its hash');
  t.equal(final.fetched.length, 2 * rounds, 'no container was lost');
  t.same(readdirSync(dir).sort(), [`${repositoryId}.json`], 'no lock or temporary file is left');
});

t.test('a lock left by a process that died is broken; a live one is waited for', async (t) => {
  const dir = stateDir(t);
  const state = LocalStateFile.at(dir, repositoryId);
  await state.update({ generation: 1 });
  const lock = join(dir, `${repositoryId}.json.lock`);
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => dead.on('close', r));
  writeFileSync(lock, String(dead.pid));
  await state.update({ generation: 2 });
  t.equal((await state.load()).generation, 2, 'the dead owner\'s lock did not block the update');
  t.same(readdirSync(dir).sort(), [`${repositoryId}.json`], 'and it is gone');

  writeFileSync(lock, String(process.pid));
  const waiting = state.update({ generation: 3 });
  await new Promise((r) => setTimeout(r, 300));
  t.equal((await state.load()).generation, 2, 'a live owner\'s lock is waited for');
  rmSync(lock);
  await waiting;
  t.equal((await state.load()).generation, 3, 'and the update happens once it is released');
});
