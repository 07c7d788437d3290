/**
 * isValidRefName (src/format/ref-name.ts) gives git's answers on tricky names (test/support/ref-name-cases.ts,
 * checked against `git check-ref-format` by ref-name-vs-git.test.ts), so that a push never stores a
 * ref name git itself would refuse, nor refuses one git accepts. isValidRefName does not require a
 * "/" (git's --allow-onelevel); every other name starts with refs/, as pushed ref names must.
 */
import t from 'tap';
import { isValidRefName } from '../src/format/ref-name';
import { ONE_LEVEL_NAMES, REF_NAMES } from './support/ref-name-cases';

t.test('refs/ names: isValidRefName gives git check-ref-format’s answers', async (t) => {
  const valid = REF_NAMES.filter(([, ok]) => ok).length;
  t.ok(valid > 15 && valid < REF_NAMES.length - 15, `the list mixes valid (${valid}) and invalid (${REF_NAMES.length - valid}) names`);
  for (const [name, git] of REF_NAMES) t.equal(isValidRefName(name), git, `${JSON.stringify(name)}: git says ${git ? 'valid' : 'invalid'}`);
});

t.test('one-level names: isValidRefName gives git check-ref-format --allow-onelevel’s answers', async (t) => {
  for (const [name, git] of ONE_LEVEL_NAMES) t.equal(isValidRefName(name), git, `${JSON.stringify(name)}: git says ${git ? 'valid' : 'invalid'}`);
});
