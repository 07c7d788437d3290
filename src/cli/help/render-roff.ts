import type { Block, CommandDoc, ManPage } from './manual-page';

/** Characters roff would read as markup, escaped: backslash, and '-' (a real minus, so options copy and paste). */
function escape(text: string): string {
  return text.replace(/\\/g, '\\e').replace(/-/g, '\\-');
}

/** Inline text: `literal` in bold, <placeholder> in italics, the rest roman. */
function inline(text: string): string {
  return text
    .split(/(`[^`]*`)/)
    .map((part) =>
      part.startsWith('`') && part.endsWith('`') && part.length >= 2
        ? `\\fB${escape(part.slice(1, -1))}\\fR`
        : escape(part).replace(/<[^<>\s]+>/g, (p) => `\\fI${p}\\fR`),
    )
    .join('');
}

/** A term (an option, a setting, a URL form): bold, with its <placeholders> in italics. */
function term(text: string): string {
  return `\\fB${escape(text).replace(/<[^<>\s]+>/g, (p) => `\\fI${p}\\fB`)}\\fR`;
}

/** A line of text, protected from being read as a request when it starts with '.' or '\''. */
function textLine(line: string): string {
  return /^[.']/.test(line) ? `\\&${line}` : line;
}

function commands(cmds: readonly CommandDoc[]): string[] {
  const out: string[] = [];
  for (const cmd of cmds) {
    out.push(`.SS "${cmd.name}"`, `${term(`git kmscrypt ${cmd.name}`)} ${inline(cmd.synopsis)}`);
    for (const p of cmd.description) out.push('.PP', textLine(inline(p)));
    for (const o of cmd.options) out.push('.TP', term(o.flags), textLine(inline(o.description)));
  }
  return out;
}

function block(b: Block): string[] {
  switch (b.kind) {
    case 'paragraph':
      return ['.PP', textLine(inline(b.text))];
    case 'definitions':
      return b.items.flatMap((item) => ['.TP', term(item.term), textLine(inline(item.description))]);
    case 'example':
      return ['.PP', '.RS 4', '.nf', ...b.lines.map((l) => textLine(escape(l))), '.fi', '.RE'];
    case 'commands':
      return commands(b.commands);
  }
}

/** The page in man(7) format, for `man <name>`. */
export function renderRoff(page: ManPage, version: string): string {
  const lines = [
    `.\\" Generated from src/cli/help/ by 'npm run generate'; do not edit.`,
    `.TH ${page.name.toUpperCase()} 1 "" "git-remote-kmscrypt ${version}" "git-remote-kmscrypt manual"`,
    '.nh',
    '.ad l',
    '.SH NAME',
    `${escape(page.name)} \\- ${escape(page.purpose)}`,
    '.SH SYNOPSIS',
    '.nf',
    ...page.synopsis.map((s) => textLine(inline(s))),
    '.fi',
  ];
  for (const section of page.sections) {
    lines.push(`.SH ${section.title}`);
    for (const b of section.blocks) lines.push(...block(b));
  }
  return lines.join('\n') + '\n';
}
