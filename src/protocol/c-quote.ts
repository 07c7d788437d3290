import { KmscryptError } from '../errors';

const ESCAPES: Readonly<Record<string, number>> = { a: 7, b: 8, f: 12, n: 10, r: 13, t: 9, v: 11, '\\': 0x5c, '"': 0x22 };

/**
 * An option value as git's transport-helper sends it: as is, or in C quotes (quote_c_style) when
 * it holds a quote, a backslash, a control character or a non-ASCII byte (e.g. a
 * `--shallow-exclude` ref name or a `--shallow-since` date).
 */
export function unquoteCStyle(value: string): string {
  if (!value.startsWith('"')) return value;
  const bad = () => new KmscryptError('BAD_PROTOCOL', `malformed quoted value ${value} from git`);
  if (value.length < 2 || !value.endsWith('"')) throw bad();
  const bytes: number[] = [];
  const body = Buffer.from(value.slice(1, -1), 'utf8');
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c === 0x22) throw bad();
    if (c !== 0x5c) {
      bytes.push(c);
      continue;
    }
    const next = String.fromCharCode(body[++i] ?? 0);
    if (next in ESCAPES) bytes.push(ESCAPES[next]);
    else if (/^[0-3]$/.test(next) && i + 2 < body.length) {
      const octal = String.fromCharCode(body[i], body[i + 1], body[i + 2]);
      if (!/^[0-3][0-7][0-7]$/.test(octal)) throw bad();
      bytes.push(parseInt(octal, 8));
      i += 2;
    } else throw bad();
  }
  return Buffer.from(bytes).toString('utf8');
}
