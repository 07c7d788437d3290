/**
 * isValidRefName (src/format/ref-name.ts) must agree with `git check-ref-format` on tricky names, so
 * that a push never stores a ref name git itself would refuse, nor refuses one git accepts.
 * isValidRefName does not require a "/" (git's --allow-onelevel), so one-level names are compared
 * with that flag; every other name starts with refs/, as pushed ref names must.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { isValidRefName } from '../src/format/ref-name';

function gitAccepts(name: string, onelevel: boolean): boolean {
  const env: NodeJS.ProcessEnv = { ...process.env, GIT_CONFIG_NOSYSTEM: '1' };
  const r = spawnSync('git', ['check-ref-format', ...(onelevel ? ['--allow-onelevel'] : []), name], { env });
  if (r.status !== 0 && r.status !== 1) throw new Error(`git check-ref-format failed: ${r.stderr}`);
  return r.status === 0;
}

const refs = [
  // plain and unusual but valid
  'refs/heads/main',
  'refs/heads/feature/deep/name',
  'refs/tags/v1.0.0',
  'refs/heads/café',
  'refs/heads/日本語/ブランチ',
  'refs/heads/emoji-😀',
  'refs/heads/\u00a0nbsp',
  'refs/heads/\u0080',
  'refs/heads/a.b',
  'refs/heads/a./b',
  'refs/heads/-dash',
  'refs/heads/@',
  'refs/heads/a@b',
  'refs/heads/@@',
  'refs/heads/{x}',
  'refs/heads/a{',
  'refs/heads/x.loc',
  'refs/heads/lock',
  'refs/heads/a.lockx',
  'refs/heads/a.lockx/y',
  "refs/heads/#%,;'\"<>|=!$&",
  'refs/heads/a-.lock-b',
  // invalid: "..", leading dot, .lock
  'refs/heads/a..b',
  'refs/heads/..',
  'refs/heads/.hidden',
  'refs/heads/a/.b',
  'refs/heads/.',
  'refs/heads/x.lock',
  'refs/heads/x.lock/y',
  'refs/heads/.lock',
  'refs/heads/a.LOCK',
  // invalid: @{, trailing dot or slash, slashes
  'refs/heads/a@{b',
  'refs/heads/@{',
  'refs/heads/@{u}',
  'refs/heads/trailing.',
  'refs/heads/x..',
  'refs/heads/trailing/',
  '/refs/heads/x',
  'refs//heads/x',
  'refs/heads//x',
  // invalid: control characters, space and special characters
  'refs/heads/a b',
  'refs/heads/a\tb',
  'refs/heads/a\nb',
  'refs/heads/\x01',
  'refs/heads/\x1f',
  'refs/heads/\x7f',
  'refs/heads/a~1',
  'refs/heads/a^',
  'refs/heads/a:b',
  'refs/heads/a?',
  'refs/heads/a*',
  'refs/heads/a[b',
  'refs/heads/a]b',
  'refs/heads/a\\b',
];

const oneLevel = ['main', 'HEAD', '@', '', '.x', 'a.lock', 'x.', 'a..b', 'a@{1}', 'héllo', '/', 'a/', '/a'];

t.test('refs/ names: isValidRefName agrees with git check-ref-format', async (t) => {
  let valid = 0;
  for (const name of refs) {
    const git = gitAccepts(name, false);
    if (git) valid++;
    t.equal(isValidRefName(name), git, `${JSON.stringify(name)}: git says ${git ? 'valid' : 'invalid'}`);
  }
  t.ok(valid > 15 && valid < refs.length - 15, `the list mixes valid (${valid}) and invalid (${refs.length - valid}) names`);
});

t.test('one-level names: isValidRefName agrees with git check-ref-format --allow-onelevel', async (t) => {
  for (const name of oneLevel) {
    const git = gitAccepts(name, true);
    t.equal(isValidRefName(name), git, `${JSON.stringify(name)}: git says ${git ? 'valid' : 'invalid'}`);
  }
});
