import type { CommandDoc, OptionDoc } from './manual-page';

/** An option's spellings and, when it takes one, its value: `<placeholder>` or a list such as `sha1|sha256`. */
function parseFlags(option: OptionDoc): { names: string[]; value?: string } {
  // `-b, --initial-branch <name>`: spellings separated by commas, the value after the last one.
  const names = option.flags.split(', ');
  const last = names.pop()!;
  const space = last.indexOf(' ');
  return space < 0 ? { names: [...names, last] } : { names: [...names, last.slice(0, space)], value: last.slice(space + 1) };
}

const takesTarget = (cmd: CommandDoc): boolean => cmd.synopsis.startsWith('<remote-or-url>');

/**
 * `_git_kmscrypt` for git's bash completion, which calls `_git_<command>` for `git <command> ...`:
 * subcommands, each one's options, option values that are a fixed list, and remote names where
 * a command takes <remote-or-url>.
 */
export function renderBashCompletion(commands: readonly CommandDoc[], version: string): string {
  const names = commands.map((c) => c.name).join(' ');
  const valueCases: string[] = [];
  const optionCases: string[] = [];
  for (const cmd of commands) {
    const options = cmd.options.map(parseFlags);
    const long = options.flatMap((o) => o.names.filter((n) => n.startsWith('--')));
    optionCases.push(`\t${cmd.name},-*)\n\t\t__gitcomp "${[...long, '--help'].join(' ')}"\n\t\t;;`);
    for (const o of options) {
      if (o.value === undefined) continue;
      const completion = o.value.startsWith('<') ? 'COMPREPLY=()' : `__gitcomp "${o.value.split('|').join(' ')}"`;
      valueCases.push(`\t${o.names.map((n) => `${cmd.name},${n}`).join('|')})\n\t\t${completion}\n\t\treturn\n\t\t;;`);
    }
  }
  const withTarget = commands.filter(takesTarget).map((c) => `${c.name},*`);
  return `# bash completion for git kmscrypt (git-remote-kmscrypt ${version}).
# Generated from src/cli/help/ by 'npm run generate'; do not edit.
#
# git's own bash completion calls _git_kmscrypt to complete 'git kmscrypt ...'. Either source
# this file from ~/.bashrc:
#   source "$(npm root -g)/git-remote-kmscrypt/completion/git-kmscrypt.bash"
# or, where the bash-completion package loads completions on demand, link it as
#   ~/.local/share/bash-completion/completions/git-kmscrypt

_git_kmscrypt ()
{
\tlocal subcommands="${names}"
\tlocal subcommand="$(__git_find_on_cmdline "$subcommands help")"
\tif [ -z "$subcommand" ]; then
\t\tcase "$cur" in
\t\t-*)
\t\t\t__gitcomp "--help --version"
\t\t\t;;
\t\t*)
\t\t\t__gitcomp "$subcommands help version"
\t\t\t;;
\t\tesac
\t\treturn
\tfi

\tcase "$subcommand,$prev" in
${valueCases.join('\n')}
\tesac

\tcase "$subcommand,$cur" in
\thelp,*)
\t\t__gitcomp "$subcommands"
\t\t;;
${optionCases.join('\n')}
\t${withTarget.join('|')})
\t\t__gitcomp_nl "$(__git_remotes)"
\t\t;;
\tesac
}
`;
}
