/**
 * `npm run generate`: writes the files made from the manual source, for the package: the manual
 * pages (man/<page>.1, package.json's `man`) and the bash completion
 * (completion/git-kmscrypt.bash). They are committed; test/manual.test.ts fails when they differ
 * from what this writes.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { packageVersion } from '../version';
import { COMMAND_DOCS } from './git-kmscrypt-manual';
import { MANUAL_PAGES } from './manual-pages';
import { renderBashCompletion } from './render-bash-completion';
import { renderRoff } from './render-roff';

/** Each generated file: its path from the package root and its text. */
export function generatedFiles(): { path: string; text: string }[] {
  const version = packageVersion();
  return [
    ...MANUAL_PAGES.map((page) => ({ path: `man/${page.name}.1`, text: renderRoff(page, version) })),
    { path: 'completion/git-kmscrypt.bash', text: renderBashCompletion(COMMAND_DOCS, version) },
  ];
}

if (require.main === module) {
  const root = join(__dirname, '..', '..', '..');
  for (const { path, text } of generatedFiles()) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
    process.stdout.write(`wrote ${path}\n`);
  }
}
