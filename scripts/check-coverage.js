#!/usr/bin/env node
'use strict';
// npm test, after tap: the coverage of src/ (bench/ and test/ excluded) must not fall below the
// thresholds in package.json ("coverageThresholds"), which are the level the suite reached when
// they were last raised. tap itself knows only "100% or allow-incomplete-coverage", so its report
// is written as JSON (package.json tap "coverage-report") and counted here.
//
// Usage: node scripts/check-coverage.js [coverage-final.json]   (default .tap/report/coverage-final.json)
const { readFileSync } = require('node:fs');
const { join, relative, sep } = require('node:path');

const ROOT = join(__dirname, '..');
const reportFile = process.argv[2] ?? join(ROOT, '.tap', 'report', 'coverage-final.json');
const thresholds = require(join(ROOT, 'package.json')).coverageThresholds;

/** @type {Record<string, {s: Record<string, number>, b: Record<string, number[]>, f: Record<string, number>, statementMap: Record<string, {start: {line: number}}>}>} */
let files;
try {
  files = JSON.parse(readFileSync(reportFile, 'utf8'));
} catch (err) {
  console.error(`error: no coverage report at ${reportFile} (${err instanceof Error ? err.message : err}); run the suite with coverage (npm test) first`);
  process.exit(1);
}

/** @type {Record<'statements' | 'branches' | 'functions' | 'lines', [number, number]>} */
const totals = { statements: [0, 0], branches: [0, 0], functions: [0, 0], lines: [0, 0] };
let counted = 0;
for (const [path, file] of Object.entries(files)) {
  const rel = relative(ROOT, path);
  if (!rel.startsWith(`src${sep}`)) continue;
  counted++;
  /** @param {keyof typeof totals} kind @param {number[]} hits */
  const add = (kind, hits) => {
    totals[kind][0] += hits.filter((n) => n > 0).length;
    totals[kind][1] += hits.length;
  };
  add('statements', Object.values(file.s));
  add('functions', Object.values(file.f));
  add('branches', Object.values(file.b).flat());
  const lines = new Map();
  for (const [id, hits] of Object.entries(file.s)) {
    const line = file.statementMap[id].start.line;
    lines.set(line, (lines.get(line) ?? 0) + hits);
  }
  add('lines', [...lines.values()]);
}
if (counted === 0) {
  console.error(`error: the coverage report ${reportFile} holds no file of src/; the helpers' coverage was not collected`);
  process.exit(1);
}

const failures = [];
const parts = [];
for (const [kind, [hit, total]] of Object.entries(totals)) {
  const pct = total === 0 ? 100 : (hit / total) * 100;
  const min = thresholds?.[kind];
  parts.push(`${kind} ${pct.toFixed(2)}% (min ${min ?? 'none'})`);
  if (typeof min === 'number' && pct < min) failures.push(`${kind} ${pct.toFixed(2)}% < ${min}%`);
}
console.log(`coverage of src/ (${counted} files): ${parts.join(', ')}`);
if (failures.length) {
  console.error(
    `error: coverage of src/ fell below package.json coverageThresholds: ${failures.join(', ')}; add tests for the new code (see the uncovered lines in tap's report above)`,
  );
  process.exit(1);
}
