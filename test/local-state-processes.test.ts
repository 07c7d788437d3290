/**
 * The local state file (src/remote/local-state.ts) shared by processes: two updating at once lose
 * nothing, a lock left by a process that died is broken and a live one is waited for.
 */
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalStateFile } from '../src/remote/local-state';

const repositoryId = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';

function stateDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'kmscrypt-state-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'git', 'kmscrypt');
}

/**
 * Two git processes of one clone update the state at once (a fetch and a push, say): under the
 * lock neither undoes the other. Each child process writes generations of its own parity and
 * containers of its own name; an unlocked read-modify-write loses updates of both kinds.
 */
t.test('two processes updating at once never lower the generation nor lose a container', async (t) => {
  const dir = stateDir(t);
  const rounds = 60;
  const script = `
    const { LocalStateFile } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'remote', 'local-state.js'))});
    (async () => {
      const [dir, id, parity, rounds] = process.argv.slice(1);
      const state = LocalStateFile.at(dir, id);
      for (let i = 0; i < Number(rounds); i++) {
        await state.update({ generation: 2 * i + Number(parity), manifestHash: String(2 * i + Number(parity)).padStart(64, '0'), fetched: ['p' + parity + '-' + i] });
        const seen = (await state.load()).generation;
        if (seen < 2 * i + Number(parity)) { console.error('lowered to ' + seen + ' after writing ' + (2 * i + Number(parity))); process.exit(1); }
      }
    })().catch((err) => { console.error(err); process.exit(1); });
  `;
  const run = (parity: number) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['-e', script, dir, repositoryId, String(parity), String(rounds)], {
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, NODE_OPTIONS: '' },
      });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('close', (code) => resolve({ code, stderr }));
    });
  const results = await Promise.all([run(0), run(1)]);
  for (const r of results) t.equal(r.code, 0, 'the updater saw its own generation or a higher one after every update', { stderr: r.stderr });
  const final = await LocalStateFile.at(dir, repositoryId).load();
  t.equal(final.generation, 2 * (rounds - 1) + 1, 'the highest generation written is the one kept');
  t.equal(final.manifestHash, String(final.generation).padStart(64, '0'), 'with its hash');
  t.equal(final.fetched.length, 2 * rounds, 'no container was lost');
  t.same(readdirSync(dir).sort(), [`${repositoryId}.json`], 'no lock or temporary file is left');
});

/**
 * A process killed while it takes the lock (git's kill of its helper, a crash) must not leave a
 * lock that names no owner: only age (a minute) could break it, and meanwhile every git command
 * of the clone would wait 15 s and fail. So the lock never exists without its owner's PID: a
 * watcher reading it as fast as it can while another process takes and releases it hundreds of
 * times never finds it empty.
 */
t.test("the lock never exists without its owner's PID", async (t) => {
  const dir = stateDir(t);
  const done = join(dir, '..', 'done');
  const script = `
    const { writeFileSync } = require('node:fs');
    const { LocalStateFile } = require(${JSON.stringify(join(__dirname, '..', 'dist', 'remote', 'local-state.js'))});
    (async () => {
      const [dir, id, done] = process.argv.slice(1);
      const state = LocalStateFile.at(dir, id);
      for (let i = 1; i <= 400; i++) await state.update({ generation: i, manifestHash: String(i).padStart(64, '0') });
      writeFileSync(done, '');
    })().catch((err) => { console.error(err); process.exit(1); });
  `;
  const child = spawn(process.execPath, ['-e', script, dir, repositoryId, done], { stdio: 'ignore', env: { ...process.env, NODE_OPTIONS: '' } });
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const lock = join(dir, `${repositoryId}.json.lock`);
  let seen = 0;
  let empty = 0;
  const deadline = Date.now() + 60_000;
  while (!existsSync(done) && Date.now() < deadline) {
    let text: string;
    try {
      text = readFileSync(lock, 'utf8');
    } catch {
      continue; // not held at this moment
    }
    seen++;
    if (text === '') empty++;
  }
  t.equal(await exited, 0, 'the updater finished');
  t.ok(seen > 0, `the watcher saw the lock held (${seen} reads)`);
  t.equal(empty, 0, 'never without its PID');
});

t.test('a lock left by a process that died is broken; a live one is waited for', async (t) => {
  const dir = stateDir(t);
  const state = LocalStateFile.at(dir, repositoryId);
  await state.update({ generation: 1 });
  const lock = join(dir, `${repositoryId}.json.lock`);
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((r) => dead.on('close', r));
  writeFileSync(lock, String(dead.pid));
  // What the dead owner may also have left (its PID file, the text it was writing, a lock it was
  // moving aside), and a live process's file being written, which must stay.
  const file = `${repositoryId}.json`;
  const leftovers = [`${file}.lock.${dead.pid}.0a1b2c3d4e5f.tmp`, `.${file}.${dead.pid}.0a1b2c3d4e5f.tmp`, `${file}.lock.${dead.pid}.0a1b2c3d4e5f.stale`];
  for (const name of leftovers) writeFileSync(join(dir, name), '');
  const live = `.${file}.${process.pid}.0a1b2c3d4e5f.tmp`;
  writeFileSync(join(dir, live), '');
  await state.update({ generation: 2 });
  t.equal((await state.load()).generation, 2, "the dead owner's lock did not block the update");
  t.same(readdirSync(dir).sort(), [live, file].sort(), "it is gone, and so are the dead owner's temporary files; a live process's stays");
  rmSync(join(dir, live));

  writeFileSync(lock, String(process.pid));
  const waiting = state.update({ generation: 3 });
  await new Promise((r) => setTimeout(r, 300));
  t.equal((await state.load()).generation, 2, "a live owner's lock is waited for");
  rmSync(lock);
  await waiting;
  t.equal((await state.load()).generation, 3, 'and the update happens once it is released');
});
