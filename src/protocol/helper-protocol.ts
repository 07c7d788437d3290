import type { Readable, Writable } from 'node:stream';
import { KmscryptError } from '../errors';
import { LineReader } from './line-reader';

export type OptionAnswer = 'ok' | 'unsupported' | { error: string };

export interface FetchRequest {
  oid: string;
  name: string;
}

export interface PushRequest {
  /** Empty for a deletion. */
  src: string;
  dst: string;
  force: boolean;
}

/** What the protocol needs from the rest of the program; it knows nothing of crypto or storage. */
export interface HelperBackend {
  capabilities(): string[];
  option(name: string, value: string): Promise<OptionAnswer>;
  /** Lines of the ref list, without the terminating blank line. */
  list(forPush: boolean): Promise<string[]>;
  /** Lines to answer a fetch batch with (e.g. `lock <file>`), without the blank line. */
  fetch(batch: FetchRequest[]): Promise<string[]>;
  /** Lines `ok <dst>` / `error <dst> <why>`, without the blank line. */
  push(batch: PushRequest[]): Promise<string[]>;
  /** The session ended normally (git sent the blank line, or closed its end). */
  end?(): Promise<void>;
}

/**
 * The remote-helper conversation (gitremote-helpers(7)): read a command, dispatch on it, answer,
 * flush; `fetch` and `push` lines come in batches ended by a blank line and are handled once per
 * batch; a blank line or end of input ends the session. stdout carries nothing but answers.
 */
export async function runHelperProtocol(input: Readable, output: Writable, backend: HelperBackend): Promise<void> {
  const lines = new LineReader(input);
  const send = (text: string) => new Promise<void>((resolve, reject) => output.write(text, (err) => (err ? reject(err) : resolve())));
  for (;;) {
    const line = await lines.next();
    if (line === null || line === '') {
      await backend.end?.();
      return;
    }
    if (line === 'capabilities') {
      await send(backend.capabilities().join('\n') + '\n\n');
    } else if (line.startsWith('option ')) {
      const rest = line.slice('option '.length);
      const space = rest.indexOf(' ');
      const name = space < 0 ? rest : rest.slice(0, space);
      const value = space < 0 ? '' : rest.slice(space + 1);
      const answer = await backend.option(name, value);
      await send(typeof answer === 'string' ? `${answer}\n` : `error ${answer.error}\n`);
    } else if (line === 'list' || line === 'list for-push') {
      const refs = await backend.list(line === 'list for-push');
      await send(refs.map((l) => l + '\n').join('') + '\n');
    } else if (line.startsWith('fetch ')) {
      const batch = await readBatch(lines, line, 'fetch ', parseFetch);
      const answer = await backend.fetch(batch);
      await send(answer.map((l) => l + '\n').join('') + '\n');
    } else if (line.startsWith('push ')) {
      const batch = await readBatch(lines, line, 'push ', parsePush);
      const answer = await backend.push(batch);
      await send(answer.map((l) => l + '\n').join('') + '\n');
    } else {
      throw new KmscryptError('BAD_PROTOCOL', `unknown command ${JSON.stringify(line)} from git`, { fix: 'is this git newer than kmscrypt supports?' });
    }
  }
}

async function readBatch<T>(lines: LineReader, first: string, prefix: string, parse: (rest: string) => T): Promise<T[]> {
  const batch = [parse(first.slice(prefix.length))];
  for (;;) {
    const line = await lines.next();
    if (line === null || line === '') return batch;
    if (!line.startsWith(prefix)) {
      throw new KmscryptError('BAD_PROTOCOL', `unexpected ${JSON.stringify(line)} inside a ${prefix.trim()} batch from git`);
    }
    batch.push(parse(line.slice(prefix.length)));
  }
}

function parseFetch(rest: string): FetchRequest {
  const m = /^([0-9a-f]{40}|[0-9a-f]{64}) (.+)$/.exec(rest);
  if (!m) throw new KmscryptError('BAD_PROTOCOL', `malformed fetch line ${JSON.stringify(rest)} from git`);
  return { oid: m[1], name: m[2] };
}

function parsePush(rest: string): PushRequest {
  const force = rest.startsWith('+');
  const spec = force ? rest.slice(1) : rest;
  const colon = spec.lastIndexOf(':');
  if (colon < 0) throw new KmscryptError('BAD_PROTOCOL', `malformed push line ${JSON.stringify(rest)} from git`);
  return { src: spec.slice(0, colon), dst: spec.slice(colon + 1), force };
}
