/**
 * Object presence read from the object directories (src/git/object-database.ts): packs (index
 * versions 1 and 2), loose objects, alternates; and in a partial clone a missing promised blob
 * is reported missing without fetching it (git cat-file would fetch it, or die with lazy fetching
 * switched off).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { ObjectDatabase } from '../src/git/object-database';
import { Sandbox } from './support/sandbox';

const openIn = (repo: string) => ObjectDatabase.at(join(repo, '.git', 'objects'), 20);

t.test('packed, loose and borrowed objects are present; others are not', async (t) => {
  const sb = new Sandbox(t);
  const borrowed = sb.repo('borrowed');
  const other = sb.commit(borrowed, { 'o.txt': 'from the alternate\n' }, 'other');
  const repo = sb.repo('repo');
  const first = sb.commit(repo, { 'a.txt': 'a\n' }, 'first');
  sb.git(repo, 'repack', '-a', '-d', '-q');
  const second = sb.commit(repo, { 'b.txt': 'b\n' }, 'second'); // loose
  writeFileSync(join(repo, '.git/objects/info/alternates'), '../../../borrowed/.git/objects\n');
  const db = await openIn(repo);
  t.ok(db.has(first), 'a packed commit');
  t.ok(db.has(sb.git(repo, 'rev-parse', 'HEAD:a.txt').trim()), 'a packed blob');
  t.ok(db.has(second), 'a loose commit');
  t.ok(db.has(other), 'an object of the alternate (a relative path in objects/info/alternates)');
  t.notOk(db.has('0'.repeat(40)));
  db.learn(['1'.repeat(40)]);
  t.ok(db.has('1'.repeat(40)), 'learnt objects count as present');
});

t.test('a version 1 pack index', async (t) => {
  const sb = new Sandbox(t);
  const repo = sb.repo('v1');
  const c = sb.commit(repo, { 'a.txt': 'a\n' }, 'first');
  sb.git(repo, '-c', 'pack.indexVersion=1', 'repack', '-a', '-d', '-q');
  const db = await openIn(repo);
  t.ok(db.has(c));
  t.ok(db.has(sb.git(repo, 'rev-parse', 'HEAD^{tree}').trim()));
  t.notOk(db.has('f'.repeat(40)));
});

t.test('in a partial clone a missing blob is missing, and nothing is fetched', async (t) => {
  const sb = new Sandbox(t);
  const src = sb.repo('src');
  sb.commit(src, { 'a.txt': 'one\n' }, 'first');
  sb.commit(src, { 'a.txt': 'two\n' }, 'second');
  const bare = sb.path('bare.git');
  sb.run('git', ['clone', '-q', '--bare', src, bare]);
  sb.git(bare, 'config', 'uploadpack.allowFilter', 'true');
  const clone = sb.path('clone');
  sb.run('git', ['clone', '-q', '--filter=blob:none', '--no-checkout', `file://${bare}`, clone]);
  const oldBlob = sb.git(src, 'rev-parse', 'HEAD~1:a.txt').trim();
  const packs = () => spawnSync('ls', [join(clone, '.git/objects/pack')], { encoding: 'utf8' }).stdout;
  const before = packs();
  const db = await openIn(clone);
  t.notOk(db.has(oldBlob), 'the promised blob is missing');
  t.ok(db.has(sb.git(src, 'rev-parse', 'HEAD~1').trim()), 'commits are there');
  t.equal(packs(), before, 'no pack arrived: nothing was fetched');
});
