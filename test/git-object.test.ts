/**
 * Facts read from git objects (src/git/git-object.ts): known answers (IDs as `git hash-object`
 * gives them) and malformed objects refused. What git itself says of the objects of a real
 * repository is compared in git-object-vs-git.test.ts.
 */
import t from 'tap';
import { objectId, parseCommit, parseTag, parseTree } from '../src/git/git-object';
import { OBJ_BLOB, OBJ_COMMIT } from '../src/git/pack-format';

t.test('known answers: object IDs and a commit', async (t) => {
  t.equal(objectId(OBJ_BLOB, Buffer.from('hello\n'), 'sha1'), 'ce013625030ba8dba906f756967f9e9ca394464a', 'sha1 of a blob');
  t.equal(objectId(OBJ_BLOB, Buffer.from('hello\n'), 'sha256'), '2cf8d83d9ee29543b34a87727421fdecb7e3f3a183d337639025de576db9ebb4', 'sha256 of a blob');
  const commit = Buffer.from(
    'tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nparent ce013625030ba8dba906f756967f9e9ca394464a\nauthor A <a@e> 1700000000 +0200\ncommitter C <c@e> 1700000001 +0200\n\nmsg\n',
  );
  t.equal(objectId(OBJ_COMMIT, commit, 'sha1'), '72f309511b36334ab587d343c9f975c0f0bc2f89', 'sha1 of a commit');
  t.same(parseCommit(commit), { tree: '4b825dc642cb6eb9a060e54bf8d69288fbee4904', parents: ['ce013625030ba8dba906f756967f9e9ca394464a'], committerTime: 1700000001 });
});

t.test('malformed objects are refused', async (t) => {
  t.throws(() => parseCommit(Buffer.from('parent 00\n\nmsg')), RangeError);
  t.throws(() => parseCommit(Buffer.from(`tree ${'a'.repeat(40)}\nparent xyz\n`)), RangeError);
  t.throws(() => parseTree(Buffer.from('100644 name\0short'), 20), RangeError);
  t.throws(() => parseTree(Buffer.from('100644 no-nul'), 20), RangeError);
  t.throws(() => parseTag(Buffer.from('type commit\n')), RangeError);
  t.throws(() => objectId(7, Buffer.alloc(0), 'sha1'), RangeError);
  t.same(parseCommit(Buffer.from(`tree ${'a'.repeat(40)}\n\nno committer line`)), { tree: 'a'.repeat(40), parents: [], committerTime: 0 });
});
