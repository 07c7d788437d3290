import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';

/** A relative link in a markdown file: where it points, and the line it is on. */
export interface MarkdownLink {
  file: string;
  line: number;
  target: string;
}

/** Markdown text with fenced code blocks and code spans blanked out, so that `[x](y)` in code is not a link. */
function withoutCode(text: string): string {
  const lines = text.split('\n');
  let fence: string | undefined;
  return lines
    .map((line) => {
      const opener = /^\s*(```|~~~)/.exec(line);
      if (fence !== undefined) {
        if (opener && opener[1] === fence) fence = undefined;
        return '';
      }
      if (opener) {
        fence = opener[1];
        return '';
      }
      return line.replace(/(`+)[^`]*?\1/g, (m) => ' '.repeat(m.length));
    })
    .join('\n');
}

/** Every link in `file` that is not absolute (http:, https:, mailto:): inline `[text](target)` and reference definitions. */
export function relativeLinks(file: string): MarkdownLink[] {
  const links: MarkdownLink[] = [];
  withoutCode(readFileSync(file, 'utf8'))
    .split('\n')
    .forEach((text, i) => {
      const targets = [...text.matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]);
      const definition = /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/.exec(text);
      if (definition) targets.push(definition[1]);
      for (const target of targets) {
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue;
        links.push({ file, line: i + 1, target });
      }
    });
  return links;
}

/** The anchors GitHub gives a markdown file's headings: lower case, punctuation dropped, spaces as hyphens, repeats numbered. */
export function headingAnchors(file: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const text = readFileSync(file, 'utf8');
  let fence: string | undefined;
  for (const line of text.split('\n')) {
    const opener = /^\s*(```|~~~)/.exec(line);
    if (fence !== undefined) {
      if (opener && opener[1] === fence) fence = undefined;
      continue;
    }
    if (opener) {
      fence = opener[1];
      continue;
    }
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const slug = heading[1]
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

/**
 * Why a link does not resolve, or undefined when it does: the file (or directory) must exist inside
 * `root`, and a `#anchor` must name a heading of the markdown file it points to.
 */
export function brokenLink(link: MarkdownLink, root: string): string | undefined {
  const [pathPart, anchor] = link.target.split('#', 2) as [string, string | undefined];
  const path = pathPart === '' ? link.file : join(dirname(link.file), decodeURIComponent(pathPart));
  const rel = relative(root, path);
  if (rel.startsWith('..')) return `${link.target} points outside ${root}`;
  if (!existsSync(path)) return `${link.target}: no such file`;
  if (anchor === undefined) return undefined;
  if (statSync(path).isDirectory() || !path.endsWith('.md')) return `${link.target}: an anchor into something that is not a markdown file`;
  return headingAnchors(path).has(anchor) ? undefined : `${link.target}: no heading with that anchor`;
}
