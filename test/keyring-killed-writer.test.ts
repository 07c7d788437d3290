/**
 * A keyring writer (src/keys/keyring.ts) killed at any moment, in a child process, leaves a keyring
 * that loads, and the next writer goes on.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Keyring } from '../src/keys/keyring';

t.test('a writer killed at any moment leaves a whole keyring', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'keyring-kill-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'keyring.json');
  const script = `const { Keyring } = require(${JSON.stringify(resolve(__dirname, '../src/keys/keyring.ts'))}); const k = new Keyring(process.argv[1]); for (;;) k.createKey('x'.repeat(4000));`;
  let count = 0;
  for (let round = 0; round < 4; round++) {
    const child = spawn(process.execPath, [...process.execArgv, '-e', script, path], { stdio: 'ignore' });
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    // Wait until this round has written at least one key, then kill at a varying moment.
    while (new Keyring(path).load().keys.length <= count) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 5 + round * 7));
    child.kill('SIGKILL');
    await exited;
    const keys = new Keyring(path).load().keys;
    t.ok(keys.length > count, `round ${round}: the keyring loads with ${keys.length} keys`);
    count = keys.length;
    // A killed writer can leave its lock behind, as the lock's own message says.
    rmSync(`${path}.lock`, { force: true });
  }
  t.ok(new Keyring(path).createKey('after').keyId, 'a new writer goes on after the kills');
});
