#!/usr/bin/env node
// @ts-check
'use strict';
/*
 * Generates the benchmark's synthetic repositories, deterministically, with `git fast-import`
 * fed by a stream this script writes (seeded PRNG; no network, no randomness from the OS).
 *
 *   node bench/generate-large-repo.js --kind large   --size full|small --out DIR
 *   node bench/generate-large-repo.js --kind bigfile --size full|small --out DIR
 *   node bench/generate-large-repo.js --kind large   --size tiny --out DIR   (npm test's fixed repository)
 *
 * kind=large, size=full: ~26,000 commits (a long linear `main` with ~500 feature branches forked
 * from it and merged back by merge commits), ~10,000 source-like text files under
 * packages/<pkg>/src/<module>/ edited a few lines at a time (so they delta well), 1,000 refs
 * (branches, annotated and lightweight tags), and multi-MB random binaries under assets/
 * (fresh random versions that neither compress nor delta, plus a few patched versions that do)
 * so that the pack is >= 300 MiB with >= 300,000 objects. size=small is ~10x smaller throughout.
 *
 * kind=bigfile: one commit holding one random file of 1.5 GiB (size=small: 150 MiB) and a README.
 *
 * The repository is built in DIR.tmp-<pid> and renamed to DIR when complete, so a cache
 * directory never holds a half-made repository. DIR/kmscrypt-bench.json records the generator
 * version and parameters; the benchmark regenerates when they differ.
 */
const { spawn, spawnSync } = require('node:child_process');
const { createCipheriv, createHash } = require('node:crypto');
const { existsSync, renameSync, rmSync, writeFileSync, mkdirSync } = require('node:fs');
const { dirname, resolve } = require('node:path');

/** Bumped when a kind's output changes, so that cached repositories are regenerated. */
const GENERATOR_VERSION = { large: 1, bigfile: 3 };
const MiB = 1024 * 1024;

/**
 * @typedef {{ kind: 'large' | 'bigfile', size: 'full' | 'small' | 'tiny' }} Spec
 * @typedef {{ kind: 'bigfile', size: 'full' | 'small', seed: string, fileBytes: number }} BigfileParameters
 * @typedef {{ kind: 'large', size: 'full' | 'small' | 'tiny', seed: string, packages: number, modulesPerPackage: number,
 *   filesPerModule: number, mainCommits: number, featureEvery: number, openFeatureSlots: number, refs: number,
 *   freshBinaryBytes: number, binaryMinBytes: number, binaryMaxBytes: number }} LargeParameters
 */

/** Parameters per kind and size: what the repository will hold. */
function parameters(/** @type {Spec} */ spec) {
  return spec.kind === 'bigfile' ? bigfileParameters(spec.size === 'full' ? 'full' : 'small') : largeParameters(spec.size);
}

/** @returns {BigfileParameters} */
function bigfileParameters(/** @type {'full' | 'small'} */ size) {
  return { kind: 'bigfile', size, seed: 'kmscrypt-bench-bigfile-1', fileBytes: size === 'small' ? 150 * MiB : 1536 * MiB };
}

/** @returns {LargeParameters} */
function largeParameters(/** @type {'full' | 'small' | 'tiny'} */ size) {
  // tiny: the fixed repository `npm test` measures bytes stored on (test/bytes-stored.test.ts).
  if (size === 'tiny') {
    return { kind: 'large', size, seed: 'kmscrypt-bench-large-1', packages: 2, modulesPerPackage: 4, filesPerModule: 16, mainCommits: 300, featureEvery: 48, openFeatureSlots: 4, refs: 40, freshBinaryBytes: 3 * MiB, binaryMinBytes: 1 * MiB, binaryMaxBytes: 2 * MiB };
  }
  const small = size === 'small';
  return {
    kind: 'large',
    size,
    seed: 'kmscrypt-bench-large-1',
    packages: small ? 8 : 40,
    modulesPerPackage: small ? 8 : 16,
    filesPerModule: 16,
    mainCommits: small ? 2_400 : 24_000,
    // a feature branch starts every `featureEvery` main commits on average and lives 3-12 commits
    featureEvery: 48,
    openFeatureSlots: 4,
    refs: small ? 100 : 1_000,
    freshBinaryBytes: small ? 28 * MiB : 290 * MiB,
    binaryMinBytes: 1 * MiB,
    binaryMaxBytes: small ? 4 * MiB : 8 * MiB,
  };
}

// ---- deterministic randomness -------------------------------------------------------------

/** sfc32, seeded from SHA-256 of a string: small, fast, good enough for shaping data. */
class Rng {
  constructor(/** @type {string} */ seed) {
    const h = createHash('sha256').update(seed).digest();
    this.a = h.readUInt32LE(0);
    this.b = h.readUInt32LE(4);
    this.c = h.readUInt32LE(8);
    this.d = h.readUInt32LE(12);
    for (let i = 0; i < 16; i++) this.next();
  }
  next() {
    this.a >>>= 0; this.b >>>= 0; this.c >>>= 0; this.d >>>= 0;
    const t = (this.a + this.b) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.d = (this.d + 1) | 0;
    const r = (t + this.d) | 0;
    this.c = (this.c + r) | 0;
    return r >>> 0;
  }
  /** integer in [0, n) */
  int(/** @type {number} */ n) { return Math.floor((this.next() / 4294967296) * n); }
  /** integer in [lo, hi] */
  range(/** @type {number} */ lo, /** @type {number} */ hi) { return lo + this.int(hi - lo + 1); }
  chance(/** @type {number} */ p) { return this.next() / 4294967296 < p; }
  /** @template T @param {readonly T[]} list @returns {T} */
  pick(list) { return list[this.int(list.length)]; }
}

/** Incompressible bytes, deterministic per label: AES-256-CTR keystream under a key derived from the label. */
function keystream(/** @type {string} */ label) {
  const key = createHash('sha256').update(`key:${label}`).digest();
  const iv = createHash('sha256').update(`iv:${label}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-256-ctr', key, iv);
  const zeros = Buffer.alloc(MiB);
  return (/** @type {number} */ n) => {
    if (n <= zeros.length) return cipher.update(zeros.subarray(0, n));
    const out = Buffer.allocUnsafe(n);
    for (let at = 0; at < n; at += zeros.length) cipher.update(zeros.subarray(0, Math.min(zeros.length, n - at))).copy(out, at);
    return out;
  };
}

// ---- source-like text ------------------------------------------------------------------------

const WORDS = (
  'account active adapter address agent alias array asset async batch binding block bucket buffer builder cache ' +
  'channel chunk client codec column commit config context counter cursor delta digest document domain driver entry ' +
  'event factory field filter format frame handle header index input item journal key label layer ledger limit list ' +
  'loader lock manifest mapper marker matrix member message metric mode module monitor node offset option order output ' +
  'packet page parser path payload peer pipeline policy pool port prefix process profile proxy queue range reader ' +
  'record region registry remote request resolver resource response result route rule scheduler schema scope segment ' +
  'session shard signal snapshot socket source span stage state status store stream suffix table target task tenant ' +
  'token trace tracker transport tree trigger update upload value vector version view window worker writer zone'
).split(' ');
const VERBS = 'apply build check collect compute create decode encode ensure fetch find flush format handle load merge parse read refresh register release remove render reset resolve scan select send sort split store sync track update validate write'.split(' ');
const TYPES = 'string number boolean Buffer Uint8Array Date Map<string, number> Set<string> Record<string, unknown> Promise<void>'.split(' ');
const OPS = ['===', '!==', '<', '>', '<=', '>='];
const SENTENCE = 'the this that when while each every before after until unless because so only also then again first last next previous value entry request result cache index stream record is are was be has have may must should can not never always returns keeps drops retries holds reads writes'.split(' ');

function camel(/** @type {Rng} */ r, /** @type {number} */ parts) {
  let s = r.pick(VERBS);
  for (let i = 1; i < parts; i++) {
    const w = r.pick(WORDS);
    s += w[0].toUpperCase() + w.slice(1);
  }
  return s;
}
function pascal(/** @type {Rng} */ r) {
  const a = r.pick(WORDS);
  const b = r.pick(WORDS);
  return a[0].toUpperCase() + a.slice(1) + b[0].toUpperCase() + b.slice(1);
}
function ident(/** @type {Rng} */ r) {
  const w = r.pick(WORDS);
  return r.chance(0.5) ? w : w + pascal(r).slice(0, 6);
}
function comment(/** @type {Rng} */ r, /** @type {string} */ indent) {
  const n = r.range(4, 12);
  const words = [];
  for (let i = 0; i < n; i++) words.push(r.pick(SENTENCE));
  return `${indent}// ${words.join(' ')}.`;
}

function statement(/** @type {Rng} */ r, /** @type {string} */ indent) {
  switch (r.int(8)) {
    case 0: return `${indent}const ${ident(r)} = ${camel(r, 2)}(${ident(r)}, ${r.int(1000)});`;
    case 1: return `${indent}let ${ident(r)}: ${r.pick(TYPES)} = ${ident(r)}.${camel(r, 2)}();`;
    case 2: return `${indent}${ident(r)}.${camel(r, 3)}(${ident(r)}, '${r.pick(WORDS)}-${r.pick(WORDS)}');`;
    case 3: return `${indent}if (${ident(r)}.${r.pick(WORDS)} ${r.pick(OPS)} ${r.int(4096)}) return ${ident(r)};`;
    case 4: return `${indent}for (const ${r.pick(WORDS)} of ${ident(r)}.${r.pick(WORDS)}s) ${camel(r, 2)}(${r.pick(WORDS)});`;
    case 5: return comment(r, indent);
    case 6: return `${indent}await this.${camel(r, 2)}({ ${r.pick(WORDS)}: ${ident(r)}, ${r.pick(WORDS)}: ${r.int(100)} });`;
    default: return `${indent}${ident(r)} = ${ident(r)} ${r.pick(['+', '-', '*', '??', '||'])} ${ident(r)};`;
  }
}

/** A function or class block: 4 to 18 lines. */
function block(/** @type {Rng} */ r) {
  const lines = [];
  if (r.chance(0.4)) lines.push(`/** ${camel(r, 3)}: ${r.pick(SENTENCE)} ${r.pick(WORDS)} ${r.pick(SENTENCE)} ${r.pick(WORDS)}. */`);
  const name = camel(r, r.range(2, 3));
  const params = [];
  for (let i = r.int(4); i > 0; i--) params.push(`${r.pick(WORDS)}: ${r.pick(TYPES)}`);
  lines.push(`export ${r.chance(0.3) ? 'async ' : ''}function ${name}(${params.join(', ')}): ${r.pick(TYPES)} {`);
  for (let i = r.range(2, 14); i > 0; i--) lines.push(statement(r, '  '));
  lines.push('}', '');
  return lines;
}

function initialFile(/** @type {Rng} */ r, /** @type {string} */ path) {
  const lines = [`// ${path}`, `// Copyright the bench authors. Generated by bench/generate-large-repo.js.`, ''];
  for (let i = r.range(1, 5); i > 0; i--) lines.push(`import { ${pascal(r)} } from '../${r.pick(WORDS)}/${r.pick(WORDS)}';`);
  lines.push('');
  for (let i = r.range(3, 12); i > 0; i--) lines.push(...block(r));
  return lines;
}

/** Edits a file the way people do: a few lines changed, a function added, a few lines removed. */
function editFile(/** @type {Rng} */ r, /** @type {string[]} */ lines) {
  const out = lines.slice();
  const at = () => r.range(3, Math.max(3, out.length - 1));
  const kind = out.length > 420 ? 3 : r.int(10);
  if (kind < 5) {
    const pos = at();
    const n = r.range(1, 3);
    const repl = [];
    for (let i = 0; i < n; i++) repl.push(statement(r, '  '));
    out.splice(pos, Math.min(n, out.length - pos), ...repl);
  } else if (kind < 8) {
    out.splice(at(), 0, ...block(r));
  } else if (out.length > 40) {
    out.splice(at(), r.range(kind === 3 ? 20 : 1, kind === 3 ? 60 : 8));
  } else {
    out.push(...block(r));
  }
  return out;
}

// ---- fast-import stream -----------------------------------------------------------------------

class Stream {
  constructor(/** @type {import('node:stream').Writable} */ sink) {
    this.sink = sink;
    this.str = '';
    this.nextMark = 1;
    this.full = false;
  }
  text(/** @type {string} */ s) { this.str += s; }
  /** Large buffers go straight to the sink, after the text before them. */
  bytes(/** @type {Buffer} */ b) {
    this.writeText();
    if (!this.sink.write(b)) this.full = true;
  }
  writeText() {
    if (this.str.length === 0) return;
    if (!this.sink.write(this.str, 'utf8')) this.full = true;
    this.str = '';
  }
  async flushIfFull() { if (this.str.length >= MiB || this.full) await this.flush(); }
  async flush() {
    this.writeText();
    if (this.full) {
      this.full = false;
      await new Promise((done) => this.sink.once('drain', done));
    }
  }
  /** `blob` with a mark; returns the mark. */
  blob(/** @type {Buffer | string} */ data) {
    const mark = this.nextMark++;
    if (typeof data === 'string') {
      this.text(`blob\nmark :${mark}\ndata ${Buffer.byteLength(data)}\n${data}\n`);
    } else {
      this.text(`blob\nmark :${mark}\ndata ${data.length}\n`);
      this.bytes(data);
      this.text('\n');
    }
    return mark;
  }
  data(/** @type {string} */ s) {
    this.text(`data ${Buffer.byteLength(s)}\n${s}\n`);
  }
}

/** @param {string[]} args @param {string} [cwd] */
function runGit(args, cwd) {
  const res = spawnSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (res.status !== 0) throw new Error(`git ${args.join(' ')} failed (${res.status}): ${res.stderr || res.stdout}`);
  return res.stdout;
}

const AUTHORS = [
  'Ada Lovelace', 'Alan Turing', 'Grace Hopper', 'Edsger Dijkstra', 'Barbara Liskov', 'Donald Knuth', 'Frances Allen',
  'Ken Thompson', 'Margaret Hamilton', 'Dennis Ritchie', 'Leslie Lamport', 'Radia Perlman', 'John Backus', 'Niklaus Wirth',
  'Adele Goldberg', 'Tony Hoare', 'Karen Sparck Jones', 'Butler Lampson', 'Shafi Goldwasser', 'Jim Gray',
];

class Clock {
  constructor() { this.t = 1_420_070_400; } // 2015-01-01T00:00:00Z
  tick(/** @type {Rng} */ r) { this.t += r.range(60, 7_200); return this.t; }
}

function person(/** @type {Rng} */ r, /** @type {number} */ t) {
  const name = r.pick(AUTHORS);
  return `${name} <${name.toLowerCase().replace(/[^a-z]+/g, '.')}@example.com> ${t} +0000`;
}

function message(/** @type {Rng} */ r, /** @type {string} */ subject) {
  let m = subject + '\n';
  if (r.chance(0.6)) {
    m += '\n';
    for (let i = r.range(1, 4); i > 0; i--) {
      const words = [];
      for (let j = r.range(6, 14); j > 0; j--) words.push(r.pick(SENTENCE), r.pick(WORDS));
      m += words.join(' ') + '.\n';
    }
  }
  return m;
}

/** @param {import('node:stream').Writable} sink @param {LargeParameters} p */
async function writeLargeStream(sink, p) {
  const r = new Rng(p.seed);
  const s = new Stream(sink);
  const clock = new Clock();

  // files: path -> lines (main's current version)
  /** @type {string[]} */
  const paths = [];
  for (let pk = 0; pk < p.packages; pk++) {
    const pkg = `${WORDS[(pk * 7) % WORDS.length]}-${pk}`;
    for (let m = 0; m < p.modulesPerPackage; m++) {
      const mod = `${WORDS[(pk * 13 + m * 5) % WORDS.length]}${m}`;
      for (let f = 0; f < p.filesPerModule; f++) {
        const ext = f % 8 === 7 ? 'md' : f % 8 === 6 ? 'json' : 'ts';
        paths.push(`packages/${pkg}/src/${mod}/${WORDS[(pk + m * 3 + f * 11) % WORDS.length]}-${f}.${ext}`);
      }
    }
  }
  /** @type {Map<string, string[]>} */
  const main = new Map();
  const serial = (/** @type {string[]} */ lines) => lines.join('\n') + '\n';

  // commit 1: everything
  const t0 = clock.tick(r);
  const fileMarks = [];
  for (const path of paths) {
    const lines = initialFile(r, path);
    main.set(path, lines);
    fileMarks.push([path, s.blob(serial(lines))]);
    await s.flushIfFull();
  }
  let mainMark = s.nextMark++;
  s.text(`commit refs/heads/main\nmark :${mainMark}\nauthor ${person(r, t0)}\ncommitter ${person(r, t0)}\n`);
  s.data('Initial import\n');
  for (const [path, mark] of fileMarks) s.text(`M 100644 :${mark} ${path}\n`);
  s.text('M 100644 inline README.md\n');
  s.data('# bench/large\n\nSynthetic repository generated by git-remote-kmscrypt\'s benchmark.\n');
  s.text('\n');

  // binaries: schedule fresh random versions summing to freshBinaryBytes, plus patched variants
  const binaries = [];
  {
    const br = new Rng(`${p.seed}/binaries`);
    let total = 0;
    let i = 0;
    while (total < p.freshBinaryBytes) {
      const size = Math.min(br.range(p.binaryMinBytes, p.binaryMaxBytes), p.freshBinaryBytes - total + p.binaryMinBytes);
      const asset = `assets/${br.pick(['images', 'fonts', 'models', 'fixtures'])}/${br.pick(WORDS)}-${i % 23}.bin`;
      binaries.push({ asset, size, label: `${p.seed}/bin/${i}`, patched: false });
      total += size;
      if (br.chance(0.25)) binaries.push({ asset, size, label: `${p.seed}/bin/${i}`, patched: true, patchLabel: `${p.seed}/patch/${i}` });
      i++;
    }
  }
  const binaryEvery = Math.floor(p.mainCommits / (binaries.length + 1));
  let nextBinary = 0;

  // features
  const featureCount = Math.floor(p.mainCommits / p.featureEvery);
  const keptFeatures = Math.floor(featureCount * 0.45);
  const extraBranches = 1 + p.openFeatureSlots + 10; // main, tmp slots, release branches
  // planned tags leave room: the total is topped up to exactly p.refs at the end (see below)
  const tagCount = Math.floor((p.refs - keptFeatures - extraBranches) * 0.9);
  if (tagCount < 10) throw new Error('parameters leave too few tags');
  const tagEvery = Math.floor(p.mainCommits / tagCount);
  let tagsMade = 0;
  let releasesMade = 0;
  /** @type {Set<string>} */
  const refs = new Set(['refs/heads/main']);
  /** @type {number[]} */
  const history = [];
  /** @type {{ ref: string, mark: number, files: Map<string, string[]>, marks: Map<string, number>, left: number }[]} */
  const open = [];
  let featuresStarted = 0;
  const freeSlots = Array.from({ length: p.openFeatureSlots }, (_, i) => i);

  const commitFeature = async (/** @type {typeof open[number]} */ f) => {
    const t = clock.tick(r);
    const changed = [];
    for (let k = r.range(1, 3); k > 0; k--) {
      const path = r.chance(0.5) && f.files.size > 0 ? r.pick([...f.files.keys()]) : r.pick(paths);
      const base = f.files.get(path) ?? main.get(path) ?? [];
      const next = editFile(r, base);
      f.files.set(path, next);
      const mark = s.blob(serial(next));
      f.marks.set(path, mark);
      changed.push([path, mark]);
    }
    const mark = s.nextMark++;
    s.text(`commit ${f.ref}\nmark :${mark}\nauthor ${person(r, t)}\ncommitter ${person(r, t)}\n`);
    s.data(message(r, `${camel(r, 2)}: ${r.pick(SENTENCE)} ${r.pick(WORDS)} ${r.pick(WORDS)}`));
    s.text(`from :${f.mark}\n`);
    for (const [path, m] of changed) s.text(`M 100644 :${m} ${path}\n`);
    s.text('\n');
    f.mark = mark;
    f.left--;
    await s.flushIfFull();
  };

  for (let c = 1; c < p.mainCommits; c++) {
    // start a feature branch off main now and then
    if (r.int(p.featureEvery) === 0 && featuresStarted < featureCount && (open.length < p.openFeatureSlots)) {
      const index = featuresStarted++;
      const keep = index < keptFeatures * 2 && index % 2 === 0;
      let ref;
      if (keep) {
        ref = `refs/heads/feature/${index}-${r.pick(WORDS)}-${r.pick(WORDS)}`;
      } else {
        const slot = freeSlots.shift() ?? 0;
        ref = `refs/heads/wip/slot-${slot}`;
      }
      refs.add(ref);
      s.text(`reset ${ref}\nfrom :${mainMark}\n\n`);
      open.push({ ref, mark: mainMark, files: new Map(), marks: new Map(), left: r.range(3, 12) });
    }
    // advance an open feature, or merge it when done
    if (open.length > 0 && r.chance(0.35)) {
      const i = r.int(open.length);
      const f = open[i];
      if (f.left > 0) {
        await commitFeature(f);
      } else {
        open.splice(i, 1);
        const slotMatch = /wip\/slot-(\d+)$/.exec(f.ref);
        if (slotMatch) freeSlots.push(Number(slotMatch[1]));
        if (r.chance(0.9)) {
          const t = clock.tick(r);
          const mark = s.nextMark++;
          s.text(`commit refs/heads/main\nmark :${mark}\nauthor ${person(r, t)}\ncommitter ${person(r, t)}\n`);
          s.data(`Merge branch '${f.ref.replace('refs/heads/', '')}'\n`);
          s.text(`from :${mainMark}\nmerge :${f.mark}\n`);
          for (const [path, m] of f.marks) {
            s.text(`M 100644 :${m} ${path}\n`);
            main.set(path, /** @type {string[]} */ (f.files.get(path)));
          }
          s.text('\n');
          mainMark = mark;
          continue;
        }
      }
    }
    // an ordinary commit on main
    const t = clock.tick(r);
    const changed = [];
    for (let k = r.range(1, 4); k > 0; k--) {
      const path = r.pick(paths);
      const next = editFile(r, /** @type {string[]} */ (main.get(path)));
      main.set(path, next);
      changed.push([path, s.blob(serial(next))]);
    }
    if (nextBinary < binaries.length && c >= (nextBinary + 1) * binaryEvery) {
      const b = binaries[nextBinary++];
      let bytes = keystream(b.label)(b.size);
      if (b.patched && b.patchLabel) {
        const pr = new Rng(b.patchLabel);
        const ks = keystream(b.patchLabel);
        for (let j = pr.range(2, 8); j > 0; j--) {
          const at = pr.int(Math.max(1, b.size - 65536));
          ks(pr.range(512, 65536)).copy(bytes, at);
        }
      }
      changed.push([b.asset, s.blob(bytes)]);
      bytes = Buffer.alloc(0);
    }
    const mark = s.nextMark++;
    s.text(`commit refs/heads/main\nmark :${mark}\nauthor ${person(r, t)}\ncommitter ${person(r, t)}\n`);
    s.data(message(r, `${camel(r, 2)}: ${r.pick(SENTENCE)} ${r.pick(WORDS)} ${r.pick(WORDS)}`));
    s.text(`from :${mainMark}\n`);
    for (const [path, m] of changed) s.text(`M 100644 :${m} ${path}\n`);
    s.text('\n');
    mainMark = mark;
    if (c % 97 === 0) history.push(mainMark);
    // tags and release branches along main
    if (c % tagEvery === 0 && tagsMade < tagCount) {
      const n = tagsMade++;
      const name = `v${1 + Math.floor(n / 100)}.${Math.floor(n / 10) % 10}.${n % 10}`;
      refs.add(`refs/tags/${name}`);
      if (n % 3 === 2) {
        s.text(`reset refs/tags/${name}\nfrom :${mainMark}\n\n`);
      } else {
        s.text(`tag ${name}\nfrom :${mainMark}\ntagger ${person(r, t)}\n`);
        s.data(`Release ${name}\n`);
      }
      if (n % Math.max(1, Math.floor(tagCount / 10)) === 0 && releasesMade < 10) {
        refs.add(`refs/heads/release/${releasesMade}.x`);
        s.text(`reset refs/heads/release/${releasesMade++}.x\nfrom :${mainMark}\n\n`);
      }
    }
    await s.flushIfFull();
  }
  // keep the remaining open feature branches unmerged; pad refs up to the target with tags on main
  while (releasesMade < 10) {
    refs.add(`refs/heads/release/${releasesMade}.x`);
    s.text(`reset refs/heads/release/${releasesMade++}.x\nfrom :${mainMark}\n\n`);
  }
  for (let n = 0; refs.size < p.refs; n++) {
    const ref = `refs/tags/snapshot/${n}`;
    refs.add(ref);
    s.text(`reset ${ref}\nfrom :${history[n % history.length]}\n\n`);
  }
  s.text('done\n');
  await s.flush();
}

/** @param {import('node:stream').Writable} sink @param {BigfileParameters} p */
async function writeBigfileStream(sink, p) {
  const s = new Stream(sink);
  const ks = keystream(p.seed);
  s.text(`blob\nmark :1\ndata ${p.fileBytes}\n`);
  await s.flush();
  for (let left = p.fileBytes; left > 0;) {
    const n = Math.min(left, 8 * MiB);
    s.bytes(ks(n));
    await s.flush();
    left -= n;
  }
  s.text('\n');
  const who = 'Bench <bench@example.com> 1420070400 +0000';
  s.text(`commit refs/heads/main\nmark :2\nauthor ${who}\ncommitter ${who}\n`);
  s.data(`Add a ${p.fileBytes} byte random file\n`);
  s.text('M 100644 :1 random.bin\nM 100644 inline README.md\n');
  s.data('# bench/bigfile\n\nOne large random file, for large-object throughput.\n');
  s.text('\ndone\n');
  await s.flush();
}

/** Generates the repository for `spec` at `out` (a bare repository). */
async function generate(/** @type {Spec} */ spec, /** @type {string} */ out) {
  const p = parameters(spec);
  const tmp = `${out}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(dirname(out), { recursive: true });
  const started = process.hrtime.bigint();
  runGit(['init', '--quiet', '--bare', tmp]);
  runGit(['symbolic-ref', 'HEAD', 'refs/heads/main'], tmp);
  runGit(['config', 'gc.auto', '0'], tmp);
  // unpackLimit=0: keep even a 4-object import packed (fast-import unpacks fewer than 100 objects to loose files)
  // Random data does not compress: level 0 (stored deflate blocks) gives the same size, without the CPU.
  const level = p.kind === 'bigfile' ? '0' : '1';
  const child = spawn('git', ['-c', `pack.compression=${level}`, '-c', `core.compression=${level}`, '-c', 'fastimport.unpackLimit=0', 'fast-import', '--quiet', '--done', '--depth=0'], {
    cwd: tmp,
    stdio: ['pipe', 'inherit', 'inherit'],
  });
  /** @type {Promise<number | null>} */
  const exited = new Promise((done) => child.once('close', (code) => done(code)));
  /** @type {Error | undefined} */
  let streamError;
  child.stdin.on('error', (err) => { streamError = err; });
  try {
    if (p.kind === 'large') await writeLargeStream(child.stdin, p);
    else await writeBigfileStream(child.stdin, p);
  } finally {
    child.stdin.end();
  }
  const code = await exited;
  if (code !== 0 || streamError) throw new Error(`git fast-import failed (exit ${code})${streamError ? `: ${streamError.message}` : ''}`);
  const imported = process.hrtime.bigint();
  if (p.kind === 'large') {
    // fast-import deltas each blob only against the blob written just before it; a repack
    // (reusing fast-import's deltas, searching deltas for the rest) gives the pack a push would.
    runGit(['-c', 'pack.threads=0', 'repack', '-a', '-d', '-f', '-q', '--window=10', '--depth=50'], tmp);
  }
  const done = process.hrtime.bigint();
  const info = {
    generator: GENERATOR_VERSION[p.kind],
    parameters: p,
    fastImportSeconds: Number(imported - started) / 1e9,
    repackSeconds: Number(done - imported) / 1e9,
  };
  writeFileSync(`${tmp}/kmscrypt-bench.json`, JSON.stringify(info, null, 2) + '\n');
  rmSync(out, { recursive: true, force: true });
  renameSync(tmp, out);
  return info;
}

/** What kmscrypt-bench.json must say for a cached repository to be reused. */
function expectedInfo(/** @type {Spec} */ spec) {
  return { generator: GENERATOR_VERSION[spec.kind], parameters: parameters(spec) };
}

module.exports = { generate, expectedInfo, parameters, largeParameters, bigfileParameters, GENERATOR_VERSION };

if (require.main === module) {
  const args = process.argv.slice(2);
  const get = (/** @type {string} */ name, /** @type {string} */ dflt) => {
    const i = args.indexOf(name);
    return i >= 0 && args[i + 1] !== undefined ? args[i + 1] : dflt;
  };
  const kind = get('--kind', 'large');
  const size = get('--size', 'full');
  const out = get('--out', '');
  if ((kind !== 'large' && kind !== 'bigfile') || (size !== 'full' && size !== 'small' && !(size === 'tiny' && kind === 'large')) || out === '') {
    process.stderr.write('usage: node bench/generate-large-repo.js --kind large|bigfile --size full|small --out DIR (--kind large --size tiny: the test repository)\n');
    process.exit(2);
  }
  if (existsSync(out)) {
    process.stderr.write(`generate-large-repo: ${out} exists; remove it first\n`);
    process.exit(2);
  }
  generate({ kind, size }, resolve(out)).then(
    (info) => process.stdout.write(JSON.stringify(info) + '\n'),
    (err) => {
      process.stderr.write(`generate-large-repo: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
