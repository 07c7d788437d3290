/**
 * What a clone remembers per repository ID (src/remote/local-state.ts, docs/FORMAT.md §8): the
 * generation only increases, the manifest hash follows the generation, fetched containers only
 * accumulate and are pruned to the ones the manifest still lists.
 */
import t from 'tap';
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
