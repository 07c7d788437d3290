/**
 * Bash completion (completion/git-kmscrypt.bash, generated from the manual): git's own completion
 * finds `_git_kmscrypt` and completes subcommands, options, option values and remote names, whether
 * the file is sourced or loaded on demand by the bash-completion package.
 */
import t from 'tap';
import { existsSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { COMMAND_DOCS } from '../src/cli/help/git-kmscrypt-manual';
import { PROJECT_ROOT, Sandbox } from './support/sandbox';
import { ensureDebianPackage } from './support/system-packages';

const OURS = join(PROJECT_ROOT, 'completion', 'git-kmscrypt.bash');
const BASH_COMPLETION = '/usr/share/bash-completion/bash_completion';

/** git's bash completion, where git's packages put it. */
function gitCompletionScript(): string {
  const candidates = [
    '/usr/share/bash-completion/completions/git',
    '/usr/share/git/completion/git-completion.bash',
    '/usr/local/share/git-core/contrib/completion/git-completion.bash',
  ];
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new Error(`git's bash completion is not installed (looked in ${candidates.join(', ')})`);
  return found;
}

/**
 * Completes each line as bash would on TAB after it (git's `__git_main` reads COMP_WORDS and
 * COMP_CWORD) and returns the candidates for each, after `setup` (bash lines) has loaded the completions.
 */
function complete(sb: Sandbox, cwd: string, setup: string, lines: string[]): Map<string, string[]> {
  const script = [
    setup,
    'comp() {',
    '  COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}',
    '  read -ra COMP_WORDS <<<"$1"; [[ "$1" == *" " ]] && COMP_WORDS+=("")',
    '  COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()',
    '  __git_wrap__git_main',
    '  printf "%s\\t" "$1"; printf "%s " "${COMPREPLY[@]}"; printf "\\n"',
    '}',
    ...lines.map((l) => `comp ${JSON.stringify(l)}`),
  ].join('\n');
  const out = sb.run('bash', ['--norc', '--noprofile', '-c', script], { cwd }).stdout;
  return new Map(
    out
      .split('\n')
      .filter((row) => row !== '')
      .map((row) => {
        const [line, candidates] = row.split('\t');
        return [line, candidates.split(' ').filter((c) => c !== '')];
      }),
  );
}

t.test("sourced after git's completion, it completes subcommands, options, values and remotes", async (t) => {
  const sb = new Sandbox(t).withoutCoverage();
  const repo = sb.repo('work');
  sb.git(repo, 'remote', 'add', 'origin', 'kmscrypt::/srv/a');
  sb.git(repo, 'remote', 'add', 'backup', 'kmscrypt::/srv/b');
  const got = complete(sb, repo, `source ${gitCompletionScript()}\nsource ${OURS}`, [
    'git kmsc',
    'git kmscrypt ',
    'git kmscrypt r',
    'git kmscrypt help ',
    'git kmscrypt gc --',
    'git kmscrypt gc --g',
    'git kmscrypt rotate-key origin --',
    'git kmscrypt init --object-format ',
    'git kmscrypt init --i',
    'git kmscrypt set-head ',
    'git kmscrypt info ',
    'git kmscrypt verify b',
    'git kmscrypt rotate-key origin --to ',
  ]);
  const commands = COMMAND_DOCS.map((c) => c.name);
  t.ok(commands.includes('rotate-key') && commands.includes('local-kms'));
  t.same(got.get('git kmsc'), ['kmscrypt'], 'git finds git-kmscrypt on PATH');
  t.same(got.get('git kmscrypt '), [...commands, 'help', 'version']);
  t.same(got.get('git kmscrypt r'), ['rotate-key']);
  t.same(got.get('git kmscrypt help '), commands);
  t.same(got.get('git kmscrypt gc --'), ['--grace', '--progress', '--quiet', '--json', '--help']);
  t.same(got.get('git kmscrypt gc --g'), ['--grace']);
  t.same(got.get('git kmscrypt rotate-key origin --'), ['--to', '--json', '--help']);
  t.same(got.get('git kmscrypt init --object-format '), ['sha1', 'sha256']);
  t.same(got.get('git kmscrypt init --i'), ['--initial-branch'], 'the long spelling of -b, --initial-branch <name>');
  t.same(got.get('git kmscrypt set-head '), ['backup', 'origin']);
  t.same(got.get('git kmscrypt info '), ['backup', 'origin'], "the repository's remotes");
  t.same(got.get('git kmscrypt verify b'), ['backup']);
  t.same(got.get('git kmscrypt rotate-key origin --to '), [], 'a key is not guessed');
});

t.test('linked into ~/.local/share/bash-completion/completions, the bash-completion package loads it on demand', async (t) => {
  ensureDebianPackage('bash-completion', () => existsSync(BASH_COMPLETION));
  const sb = new Sandbox(t).withoutCoverage();
  sb.env.XDG_DATA_HOME = join(sb.env.HOME!, '.local', 'share');
  delete sb.env.BASH_COMPLETION_USER_DIR;
  const dir = join(sb.env.XDG_DATA_HOME, 'bash-completion', 'completions');
  mkdirSync(dir, { recursive: true });
  symlinkSync(OURS, join(dir, 'git-kmscrypt'));
  const repo = sb.repo('work');
  // bash-completion loads git's completion when `git` is first completed, and ours when git asks for git-kmscrypt.
  const got = complete(sb, repo, `source ${BASH_COMPLETION}\n_completion_loader git`, ['git kmscrypt ', 'git kmscrypt local-kms --d']);
  t.same(got.get('git kmscrypt '), [...COMMAND_DOCS.map((c) => c.name), 'help', 'version']);
  t.same(got.get('git kmscrypt local-kms --d'), ['--deny', '--deny-file']);
});
