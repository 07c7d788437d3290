/**
 * Facts read from git objects (src/git/git-object.ts), checked against what git itself says of
 * real objects: IDs, a merge commit's parents, tree and committer time, tree entries (a
 * submodule entry left out), an annotated tag's target.
 */
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { objectId, parseCommit, parseTag, parseTree } from '../src/git/git-object';
import { OBJ_BLOB, OBJ_COMMIT, OBJ_TAG, OBJ_TREE } from '../src/git/pack-format';
import { scratchGit } from './support/scratch-git';

t.test('commits, trees and tags of a real repository, SHA-1 and SHA-256', async (t) => {
  for (const format of ['sha1', 'sha256'] as const) {
    const scratch = scratchGit(t, 'git-object', { GIT_COMMITTER_DATE: '1700000000 +0200' });
    const dir = scratch.dir;
    const git = (...args: string[]) => scratch.run(args);
    const text = (...args: string[]) => scratch.text(args);
    git('init', '-q', '-b', 'main', `--object-format=${format}`);
    writeFileSync(join(dir, 'a.txt'), 'a\n');
    git('add', '.');
    git('commit', '-q', '-m', 'one');
    git('checkout', '-q', '-b', 'side');
    writeFileSync(join(dir, 'b.txt'), 'b\n');
    git('add', '.');
    git('commit', '-q', '-m', 'two');
    git('checkout', '-q', 'main');
    git('merge', '-q', '--no-ff', '-m', 'merge', 'side');
    // a submodule entry: a gitlink in the index
    git('update-index', '--add', '--cacheinfo', `160000,${text('rev-parse', 'HEAD~1')},sub`);
    git('commit', '-q', '-m', 'with a gitlink');
    git('tag', '-a', 'v1', '-m', 'tag one', 'HEAD');
    const hashLength = format === 'sha1' ? 20 : 32;

    const merge = text('rev-parse', 'HEAD~1');
    const facts = parseCommit(git('cat-file', 'commit', merge));
    t.same(
      facts,
      { tree: text('rev-parse', `${merge}^{tree}`), parents: [text('rev-parse', `${merge}^1`), text('rev-parse', `${merge}^2`)], committerTime: 1700000000 },
      `${format}: merge commit`,
    );
    t.equal(objectId(OBJ_COMMIT, git('cat-file', 'commit', merge), format), merge, `${format}: commit ID`);

    const tree = text('rev-parse', 'HEAD^{tree}');
    const entries = parseTree(git('cat-file', 'tree', tree), hashLength);
    t.same(
      entries,
      [
        { type: OBJ_BLOB, oid: text('rev-parse', 'HEAD:a.txt') },
        { type: OBJ_BLOB, oid: text('rev-parse', 'HEAD:b.txt') },
      ],
      `${format}: tree entries, the gitlink left out`,
    );
    t.equal(objectId(OBJ_TREE, git('cat-file', 'tree', tree), format), tree);

    const tag = text('rev-parse', 'v1');
    t.same(parseTag(git('cat-file', 'tag', tag)), { object: text('rev-parse', 'HEAD'), type: OBJ_COMMIT }, `${format}: tag target`);
    t.equal(objectId(OBJ_TAG, git('cat-file', 'tag', tag), format), tag);
  }
});
