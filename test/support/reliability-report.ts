import { appendFileSync, readFileSync } from 'node:fs';
import { basename } from 'node:path';

/**
 * Figures from the reliability tests (concurrency, crash, fault and tamper scenarios), for
 * `npm run test:reliability` to add up and print. With KMSCRYPT_RELIABILITY_REPORT=<file>, each
 * call appends one JSON line to that file; without it nothing is written. Test processes are
 * separate, so an append of one short line (O_APPEND) is the only coordination needed.
 *
 * Well-known figure names, which the summary adds up across lines:
 *   pushes: attempted, landed, rejected, lost, failed
 *   kills: killed, survived, missed, killedPushLanded, killedPushNotLanded
 *   faults: faultsInjected, opsSucceeded, opsFailedCleanly, opsFailedUnclearly, partialStates,
 *           and one `fault:<kind>` per kind of injected fault
 *   tamper: tamperTried, tamperDetected
 * Any other numeric figure is printed as it is.
 */
export type Figures = Record<string, number>;

export interface FigureLine {
  /** Test file that recorded the line, e.g. crash-local.test.ts. */
  file: string;
  name: string;
  figures: Figures;
  at: string;
}

export function recordFigures(name: string, figures: Figures): void {
  const file = process.env.KMSCRYPT_RELIABILITY_REPORT;
  if (!file) return;
  const line: FigureLine = { file: testFileName(), name, figures, at: new Date().toISOString() };
  appendFileSync(file, JSON.stringify(line) + '\n');
}

/** The reliability report's lines; unparsable lines (a test killed mid-write) are skipped. */
export function readFigures(file: string): FigureLine[] {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const out: FigureLine[] = [];
  for (const l of text.split('\n')) {
    if (!l.trim()) continue;
    try {
      const parsed = JSON.parse(l) as FigureLine;
      if (parsed && typeof parsed.name === 'string' && parsed.figures && typeof parsed.figures === 'object') out.push(parsed);
    } catch {
      // ignored
    }
  }
  return out;
}

function testFileName(): string {
  // tap runs each test file as its own process: argv[1] is the file.
  const main = process.argv.find((a) => /\.test\.[cm]?[jt]s$/.test(a));
  return main ? basename(main) : basename(process.argv[1] ?? 'unknown');
}

const sum = (lines: FigureLine[], key: string) => lines.reduce((n, l) => n + (Number.isFinite(l.figures[key]) ? l.figures[key] : 0), 0);

/** The summary table printed by scripts/test-reliability.sh; also usable from a test. */
export function summarize(lines: FigureLine[]): string {
  const out: string[] = [];
  const row = (label: string, value: string | number) => out.push(`  ${label.padEnd(58, '.')} ${value}`);

  out.push('Reliability figures');
  out.push('');
  out.push('Per scenario:');
  for (const l of lines) {
    const figs = Object.entries(l.figures)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    out.push(`  ${l.file} / ${l.name}: ${figs}`);
  }
  out.push('');

  const pushLines = lines.filter((l) => 'attempted' in l.figures);
  out.push('Pushes (concurrency scenarios):');
  row('attempted', sum(pushLines, 'attempted'));
  row('landed', sum(pushLines, 'landed'));
  row('rejected (stale, as git rejects)', sum(pushLines, 'rejected'));
  row('failed otherwise: fetch or push errors (must be 0)', sum(pushLines, 'failed'));
  row('lost (must be 0)', sum(pushLines, 'lost'));
  out.push('');

  const killLines = lines.filter((l) => 'killed' in l.figures);
  out.push('Crashes (helper killed with SIGKILL):');
  row('kills landed', sum(killLines, 'killed'));
  row('kills survived (remote readable, next op ok, fsck ok)', sum(killLines, 'survived'));
  row('killed pushes that had already published', sum(killLines, 'killedPushLanded'));
  row('killed pushes that had not published', sum(killLines, 'killedPushNotLanded'));
  row('kill timers that fired after the helper ended', sum(killLines, 'missed'));
  out.push('');

  const faultLines = lines.filter((l) => 'faultsInjected' in l.figures);
  out.push('Faults (S3 fault-injecting proxy):');
  row('faults injected', sum(faultLines, 'faultsInjected'));
  const kinds = [...new Set(faultLines.flatMap((l) => Object.keys(l.figures).filter((k) => k.startsWith('fault:'))))].sort();
  for (const k of kinds) row(`  ${k.slice('fault:'.length)}`, sum(faultLines, k));
  row('operations that succeeded (verified by clean clone)', sum(faultLines, 'opsSucceeded'));
  row('operations that failed with one clear fatal line', sum(faultLines, 'opsFailedCleanly'));
  row('operations that failed unclearly (must be 0)', sum(faultLines, 'opsFailedUnclearly'));
  row('partial states left behind (must be 0)', sum(faultLines, 'partialStates'));
  row('failed pushes that had published anyway (outcome unknown)', sum(faultLines, 'failedButLanded'));
  const stalls = faultLines.filter((l) => 'stalledRequestAbandoned' in l.figures);
  if (stalls.length) row('long stalls abandoned by the client timeout', `${sum(stalls, 'stalledRequestAbandoned')}/${stalls.length}`);
  out.push('');

  const tamperLines = lines.filter((l) => 'tamperTried' in l.figures);
  out.push('Tampering:');
  row('tamper cases tried', sum(tamperLines, 'tamperTried'));
  row('tamper cases detected', sum(tamperLines, 'tamperDetected'));
  if (tamperLines.length === 0) out.push('  (no tamper figures were recorded: see the note in scripts/test-reliability.sh)');
  return out.join('\n');
}

/** Problems the summary must not hide: anything lost, unclear or undetected makes the run fail. */
export function summaryProblems(lines: FigureLine[]): string[] {
  const problems: string[] = [];
  if (sum(lines, 'lost') > 0) problems.push(`${sum(lines, 'lost')} landed pushes were lost`);
  if (sum(lines, 'failed') > 0) problems.push(`${sum(lines, 'failed')} push attempts failed other than by a stale rejection`);
  if (sum(lines, 'opsFailedUnclearly') > 0) problems.push(`${sum(lines, 'opsFailedUnclearly')} operations failed without one clear fatal line`);
  if (sum(lines, 'partialStates') > 0) problems.push(`${sum(lines, 'partialStates')} partial states were left behind`);
  if (sum(lines, 'killed') !== sum(lines, 'survived')) problems.push(`${sum(lines, 'killed') - sum(lines, 'survived')} kills were not survived`);
  if (sum(lines, 'tamperTried') !== sum(lines, 'tamperDetected')) problems.push(`${sum(lines, 'tamperTried') - sum(lines, 'tamperDetected')} tamper cases went undetected`);
  return problems;
}
