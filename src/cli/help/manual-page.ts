/**
 * The shape of the manual: one description of each page and command, rendered to roff for
 * `man` (render-roff.ts) and to plain text for `--help` (render-text.ts), so the two cannot
 * disagree. Text uses two inline marks: `literal` (bold in roff, plain in text) and <placeholder>
 * (italic in roff, kept as <placeholder> in text).
 */

/** One option of a command, e.g. `--grace <duration>`. */
export interface OptionDoc {
  flags: string;
  description: string;
}

/** A `git kmscrypt` subcommand: what `git kmscrypt <name> --help` prints and its part of git-kmscrypt(1). */
export interface CommandDoc {
  name: string;
  /** The arguments after `git kmscrypt <name>`, e.g. `<remote-or-url> [--json]`. */
  synopsis: string;
  /** One line, for the list of commands. */
  summary: string;
  /** Paragraphs. */
  description: string[];
  options: OptionDoc[];
}

/** A block of a manual section. */
export type Block =
  | { kind: 'paragraph'; text: string }
  /** Terms, each followed by an indented description (roff .TP). */
  | { kind: 'definitions'; items: { term: string; description: string }[] }
  /** Lines shown as they are, e.g. commands to type. */
  | { kind: 'example'; lines: string[] }
  /** Each command with its synopsis, description and options. */
  | { kind: 'commands'; commands: readonly CommandDoc[] };

export interface ManSection {
  title: string;
  blocks: Block[];
}

export interface ManPage {
  /** The page's name, e.g. git-kmscrypt; it lives in section 1. */
  name: string;
  /** What follows the name in NAME, e.g. "manage encrypted repositories ...". */
  purpose: string;
  /** Lines of SYNOPSIS. */
  synopsis: string[];
  sections: ManSection[];
}

export const paragraph = (text: string): Block => ({ kind: 'paragraph', text });
