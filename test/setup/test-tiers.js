#!/usr/bin/env node
// @ts-check
'use strict';
/*
 * Prints the test files of a tier, for `npm run test:unit` and `npm run test:local` (see
 * docs/TESTING.md). A file's tier follows from what it imports, directly or through other files
 * under test/, so a new test lands in the right tier without a list to keep:
 *   services — reaches test/support/services.ts: needs Ceph RGW and the local KMS daemon;
 *   local    — reaches test/support/sandbox.ts, or a file that imports node:child_process: runs
 *              git, Node or other programs as child processes, no server;
 *   unit     — neither: logic in this process only.
 * Usage: node test/setup/test-tiers.js unit|local
 */
const { readdirSync, readFileSync } = require('node:fs');
const { dirname, join, relative, resolve } = require('node:path');

const TEST_DIR = resolve(__dirname, '..');
const SERVICES = join(TEST_DIR, 'support', 'services.ts');
const SANDBOX = join(TEST_DIR, 'support', 'sandbox.ts');

/** @type {Map<string, Set<string>>} */
const reachCache = new Map();

/** Every file under test/ that `file` imports, directly or not, itself included. */
function reach(/** @type {string} */ file) {
  const known = reachCache.get(file);
  if (known) return known;
  /** @type {Set<string>} */
  const seen = new Set([file]);
  reachCache.set(file, seen);
  for (const m of readFileSync(file, 'utf8').matchAll(/^(?:import|export)\b[^'"]*?from\s+['"](\.[^'"]+)['"]/gm)) {
    const target = resolve(dirname(file), m[1]);
    if (!target.startsWith(TEST_DIR + '/')) continue;
    for (const candidate of [`${target}.ts`, `${target}.js`, target]) {
      try {
        readFileSync(candidate);
      } catch {
        continue;
      }
      for (const f of reach(candidate)) seen.add(f);
      break;
    }
  }
  return seen;
}

/** Whether `file` itself imports node:child_process (or requires it). */
function startsProcesses(/** @type {string} */ file) {
  return /^(?:import\b[^'"]*?from\s+|.*\brequire\()['"](?:node:)?child_process['"]/m.test(readFileSync(file, 'utf8'));
}

/** @returns {'services' | 'local' | 'unit'} */
function tierOf(/** @type {string} */ file) {
  const files = reach(file);
  if (files.has(SERVICES)) return 'services';
  if (files.has(SANDBOX) || [...files].some(startsProcesses)) return 'local';
  return 'unit';
}

function testFiles(/** @type {string} */ dir) {
  /** @type {string[]} */
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...testFiles(path));
    else if (entry.name.endsWith('.test.ts')) out.push(path);
  }
  return out.sort();
}

const wanted = process.argv[2];
/** @type {Record<string, string[]>} */
const TIERS = { unit: ['unit'], local: ['unit', 'local'] };
const tiers = TIERS[wanted ?? ''];
if (!tiers) {
  process.stderr.write('usage: node test/setup/test-tiers.js unit|local\n');
  process.exit(2);
}
for (const file of testFiles(TEST_DIR)) {
  if (tiers.includes(tierOf(file))) process.stdout.write(`${relative(process.cwd(), file)}\n`);
}
