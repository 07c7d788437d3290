import { closeSync, openSync, writeSync } from 'node:fs';
import { isAbsolute } from 'node:path';

/**
 * Tracing of what the helper asks of storage and KMS, and of a fetch's phases (docs/debugging.md),
 * with git's GIT_TRACE conventions: KMSCRYPT_TRACE (or, when that is unset, GIT_TRACE itself) set
 * to 1, 2 or true traces to stderr, to a number 3-9 to that file descriptor, to an absolute path
 * appends to that file; unset, empty, 0 or false is off. git's `-vv` (`option verbosity 3`) turns
 * it on too.
 *
 * A trace line names the request, its key or action, sizes, the outcome and the time taken:
 * never key material, plaintext or credentials (test/trace.test.ts looks for a data key in it).
 */
type Sink = { fd: number; close: boolean };

let sink: Sink | null | undefined;

function sinkFromEnvironment(): Sink | null {
  const [name, value] = process.env.KMSCRYPT_TRACE !== undefined ? ['KMSCRYPT_TRACE', process.env.KMSCRYPT_TRACE] : ['GIT_TRACE', process.env.GIT_TRACE];
  if (value === undefined || value === '' || value === '0' || /^false$/i.test(value)) return null;
  if (value === '1' || value === '2' || /^true$/i.test(value)) return { fd: 2, close: false };
  if (/^[3-9]$/.test(value)) return { fd: Number(value), close: false };
  if (isAbsolute(value)) {
    try {
      return { fd: openSync(value, 'a'), close: true };
    } catch (err) {
      warn(`could not open ${value} for tracing (${name}): ${(err as NodeJS.ErrnoException).code ?? String(err)}; tracing is off`);
      return null;
    }
  }
  warn(`${name}=${value} is not 1, true, a file descriptor 2-9 or an absolute path; tracing is off`);
  return null;
}

function warn(text: string): void {
  process.stderr.write(`warning: kmscrypt: ${text}\n`);
}

/** True when trace lines are written; callers skip building a line otherwise. */
export function tracing(): boolean {
  if (sink === undefined) sink = sinkFromEnvironment();
  return sink !== null;
}

/** Writes one line, prefixed with the time and this process's ID as git's trace lines are with the time. */
export function trace(line: string): void {
  if (!tracing()) return;
  const micros = Math.floor((performance.timeOrigin + performance.now()) * 1000);
  const now = new Date(Math.floor(micros / 1000));
  const time = `${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}.${String(micros % 1_000_000).padStart(6, '0')}`;
  try {
    writeSync(sink!.fd, `${time} kmscrypt[${process.pid}]: ${line}\n`);
  } catch {
    // A trace that cannot be written never makes a git operation fail.
    stopTracing();
  }
}

/** git asked for more detail (`-vv`): trace to stderr, unless the environment already chose where. */
export function traceToStderr(): void {
  if (!tracing()) sink = { fd: 2, close: false };
}

function stopTracing(): void {
  if (sink?.close) closeSync(sink.fd);
  sink = null;
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** Milliseconds since `started` (process.hrtime.bigint()), with one decimal. */
export function elapsed(started: bigint): string {
  return `${(Number(process.hrtime.bigint() - started) / 1e6).toFixed(1)} ms`;
}

/** Runs `call`, then traces `describe(result)` or the failure, with the time taken. */
export async function traced<T>(what: string, call: () => Promise<T>, describe: (result: T) => string): Promise<T> {
  if (!tracing()) return call();
  const started = process.hrtime.bigint();
  try {
    const result = await call();
    trace(`${what}: ${describe(result)}, ${elapsed(started)}`);
    return result;
  } catch (err) {
    trace(`${what}: failed after ${elapsed(started)}: ${(err instanceof Error ? err.message : String(err)).split('\n')[0]}`);
    throw err;
  }
}
