/**
 * The answers test/support/ref-name-cases.ts records (and ref-name.test.ts holds isValidRefName to)
 * are git's own: `git check-ref-format`, with --allow-onelevel for one-level names.
 */
import t from 'tap';
import { scratchGit } from './support/scratch-git';
import { ONE_LEVEL_NAMES, REF_NAMES } from './support/ref-name-cases';

t.test('git check-ref-format gives the recorded answers', async (t) => {
  const git = scratchGit(t, 'ref-name');
  const accepts = (name: string, onelevel: boolean): boolean => git.status(['check-ref-format', ...(onelevel ? ['--allow-onelevel'] : []), name]) === 0;
  for (const [name, expected] of REF_NAMES) t.equal(accepts(name, false), expected, `${JSON.stringify(name)}: ${expected ? 'valid' : 'invalid'}`);
  for (const [name, expected] of ONE_LEVEL_NAMES)
    t.equal(accepts(name, true), expected, `${JSON.stringify(name)} (one level): ${expected ? 'valid' : 'invalid'}`);
});
