/**
 * The decoded manifest a clone keeps (src/remote/manifest-cache.ts): given back only for the
 * exact stored bytes (hash), generation and descriptor it was checked with; anything else, or a
 * file that does not parse, is no entry at all.
 */
import t from 'tap';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManifestCache } from '../src/remote/manifest-cache';
import type { ManifestSnapshot } from '../src/remote/remote-repository';

const repositoryId = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';
const h = (c: string) => c.repeat(64);

function stateDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kmscrypt-manifest-cache-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const snapshot: ManifestSnapshot = {
  manifest: {
    repositoryId,
    objectFormat: 'sha1',
    generation: 7,
    previous: h('9'),
    createdAt: '2026-12-02T04:00:00.000Z',
    descriptorHash: h('d'),
    keyId: 'arn:aws:kms:local:000000000000:key/11111111-2222-4333-8444-555555555555',
    head: 'refs/heads/main',
    refs: { 'refs/heads/main': 'a'.repeat(40) },
    containers: [],
  },
  hash: h('a'),
  sealedBy: 'arn:aws:kms:local:000000000000:key/11111111-2222-4333-8444-555555555555',
  chain: { history: { generation: 3, hash: h('b') }, endorsements: [{ from: 'arn:old', to: 'arn:new', ciphertext: Buffer.from([1, 2, 3]) }] },
};
const expected = { generation: 7, hash: h('a'), descriptorHash: h('d') };

t.test('given back for the same bytes, generation and descriptor', async (t) => {
  const dir = stateDir(t);
  const cache = ManifestCache.at(dir, repositoryId);
  t.equal(await cache.read(expected), undefined, 'nothing before the first write');
  await cache.write(snapshot, h('d'));
  t.same(readdirSync(dir), [`${repositoryId}.manifest.json`], 'one file, no temporary file left');
  t.equal(statSync(join(dir, `${repositoryId}.manifest.json`)).mode & 0o777, 0o600, 'private to the user');
  t.same(await cache.read(expected), snapshot, 'the same snapshot, endorsement ciphertexts as bytes');
});

t.test('anything else is no entry', async (t) => {
  const dir = stateDir(t);
  const cache = ManifestCache.at(dir, repositoryId);
  await cache.write(snapshot, h('d'));
  t.equal(await cache.read({ ...expected, hash: h('c') }), undefined, 'other stored bytes');
  t.equal(await cache.read({ ...expected, generation: 8 }), undefined, 'another generation');
  t.equal(await cache.read({ ...expected, descriptorHash: h('e') }), undefined, 'another descriptor');
  t.equal(await ManifestCache.at(dir, 'ffffffff-ffff-4fff-8fff-ffffffffffff').read(expected), undefined, 'another repository');
  const file = join(dir, `${repositoryId}.manifest.json`);
  const entry = JSON.parse(readFileSync(file, 'utf8')) as { manifest: { repositoryId: string } };
  entry.manifest.repositoryId = 'ffffffff-ffff-4fff-8fff-ffffffffffff';
  writeFileSync(file, JSON.stringify(entry));
  t.equal(await cache.read(expected), undefined, 'a manifest of another repository inside');
  writeFileSync(file, '{"format":1,');
  t.equal(await cache.read(expected), undefined, 'a file that does not parse');
});

t.test('outside a repository nothing is kept', async (t) => {
  const cache = ManifestCache.at(undefined, repositoryId);
  await cache.write(snapshot, h('d'));
  t.equal(await cache.read(expected), undefined);
});
