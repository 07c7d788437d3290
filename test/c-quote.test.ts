/** Option values in git's C quotes (src/protocol/c-quote.ts), as quote_c_style writes them. */
import t from 'tap';
import { unquoteCStyle } from '../src/protocol/c-quote';

t.test('plain values pass through; quoted ones are unquoted', async (t) => {
  t.equal(unquoteCStyle('2 weeks ago'), '2 weeks ago');
  t.equal(unquoteCStyle('"a\\"b\\\\c"'), 'a"b\\c');
  t.equal(unquoteCStyle('"tab\\there\\nnewline"'), 'tab\there\nnewline');
  t.equal(unquoteCStyle('"caf\\303\\251"'), 'café', 'octal bytes make UTF-8');
  t.equal(unquoteCStyle('"\\a\\b\\f\\r\\v"'), '\x07\b\f\r\v');
});

t.test('malformed quoting is a protocol error', async (t) => {
  for (const bad of ['"open', '"a"b"', '"bad \\q escape"', '"\\9"', '"']) {
    t.throws(() => unquoteCStyle(bad), { code: 'BAD_PROTOCOL', message: /malformed quoted value/ }, bad);
  }
});
