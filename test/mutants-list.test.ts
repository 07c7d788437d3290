/**
 * The mutation check's list (scripts/test-mutants.js) and docs/guarantees.md name the same mutants,
 * and every mutant names a test file that exists and a guarantee: a mutant renamed in one place
 * only, or a guarantee citing a mutant that is gone, fails here rather than in a reader's hands.
 */
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const ROOT = join(__dirname, '..');
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { MUTANTS } = require('../scripts/test-mutants.js') as { MUTANTS: Array<{ name: string; guarantee: string; tests: string[]; note?: string }> };

/**
 * The names in the last column of guarantees.md's table, separated by ";": "—" (none) is left out,
 * and a remark in parentheses after a name (a name may end in parentheses of its own).
 */
function citedInGuarantees(known: readonly string[]): Set<string> {
  const names = new Set<string>();
  for (const line of readFileSync(join(ROOT, 'docs', 'guarantees.md'), 'utf8').split('\n')) {
    if (!line.startsWith('| ') || line.startsWith('| property') || line.startsWith('|---')) continue;
    const cells = line.slice(2, -2).split(' | ');
    for (const item of cells[cells.length - 1].split(';').map((n) => n.trim())) {
      if (!item || item.startsWith('—')) continue;
      names.add(known.includes(item) ? item : item.replace(/ \([^()]*\)$/, ''));
    }
  }
  return names;
}

t.test('docs/guarantees.md cites exactly the mutants of scripts/test-mutants.js', async (t) => {
  const listed = MUTANTS.map((m) => m.name);
  t.equal(new Set(listed).size, listed.length, 'mutant names are unique');
  t.ok(listed.length >= 30, `the list holds ${listed.length} mutants`);
  const cited = citedInGuarantees(listed);
  t.same(listed.filter((n) => !cited.has(n)), [], 'every mutant is cited by a guarantee');
  t.same([...cited].filter((n) => !listed.includes(n)), [], 'every mutant cited exists');
});

t.test('every mutant has a guarantee and runs tests that exist, or says why it has none', async (t) => {
  for (const m of MUTANTS) {
    t.ok(m.guarantee.length > 0, `${m.name}: a guarantee`);
    if (m.tests.length === 0) t.ok(m.note, `${m.name}: no test yet, and a note that says why`);
    for (const file of m.tests) t.ok(existsSync(join(ROOT, file)), `${m.name}: ${file} exists`);
  }
});
