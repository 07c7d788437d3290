import type { CommandDoc, ManPage } from './manual-page';

const WIDTH = 80;

/** Text as a terminal shows it: `literal` marks dropped, <placeholders> kept. */
function plain(text: string): string {
  return text.replace(/`([^`]*)`/g, '$1');
}

/** Words of `text` filled into lines of at most WIDTH columns, each starting with `indent`. */
function fill(text: string, indent: string, firstIndent = indent): string[] {
  const lines: string[] = [];
  let line = firstIndent;
  let empty = true;
  for (const word of plain(text)
    .split(/\s+/)
    .filter((w) => w !== '')) {
    if (!empty && line.length + 1 + word.length > WIDTH) {
      lines.push(line);
      line = indent + word;
    } else {
      line += (empty ? '' : ' ') + word;
    }
    empty = false;
  }
  lines.push(line);
  return lines;
}

export function commandUsageLine(cmd: CommandDoc): string {
  return `usage: git kmscrypt ${cmd.name} ${plain(cmd.synopsis)}`;
}

/** What `git kmscrypt <command> --help` and `git kmscrypt help <command>` print. */
export function commandHelp(cmd: CommandDoc): string {
  const lines = [commandUsageLine(cmd), ''];
  for (const p of cmd.description) lines.push(...fill(p, ''), '');
  lines.push('options:');
  const options = [...cmd.options, { flags: '-h, --help', description: 'print this help' }];
  const column = Math.min(24, Math.max(...options.map((o) => o.flags.length)) + 4);
  for (const o of options) {
    const head = `  ${o.flags}`;
    const indent = ' '.repeat(column);
    if (head.length + 2 <= column) lines.push(...fill(o.description, indent, head.padEnd(column)));
    else lines.push(head, ...fill(o.description, indent));
  }
  return lines.join('\n') + '\n';
}

/** What `git kmscrypt help` (and `git kmscrypt -h`) print: every command with its summary. */
export function commandList(commands: readonly CommandDoc[]): string {
  const lines = ['usage: git kmscrypt <command> [<options>]', '       git kmscrypt help [<command>]', '       git kmscrypt --version', '', 'commands:'];
  const column = Math.max(...commands.map((c) => c.name.length)) + 4;
  for (const c of commands) lines.push(...fill(c.summary, ' '.repeat(column), `  ${c.name}`.padEnd(column)));
  lines.push('', "Run 'git kmscrypt help <command>' for a command's options,", "'git kmscrypt --help' or 'man git-kmscrypt' for the manual.");
  return lines.join('\n') + '\n';
}

/** What `git-remote-kmscrypt --help` prints, and prints on stderr when run with the wrong arguments. */
export function helperUsage(page: ManPage): string {
  const usage = page.synopsis.filter((line) => line.startsWith(page.name));
  const lines = usage.map((line, i) => `${i === 0 ? 'usage: ' : '       '}${plain(line)}`);
  lines.push('', ...fill(`${page.name}: ${page.purpose}. git runs it for URLs of the form kmscrypt::<url>:`, ''));
  lines.push(...page.synopsis.filter((line) => !line.startsWith(page.name)).map((line) => `  ${plain(line)}`));
  lines.push('', ...fill("See 'man git-remote-kmscrypt', and 'git kmscrypt help' for the commands that look after a repository.", ''));
  return lines.join('\n') + '\n';
}
