import t, { Test } from 'tap';
import { chownSync, constants, existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isKmscryptError } from '../src/errors';
import { Keyring } from '../src/keys/keyring';
import { NODE_IO, PrivateFileIo } from '../src/keys/private-file';

function tempDir(t: Test, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Every file below `dir` whose bytes contain the key material. */
function filesHolding(dir: string, material: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    const path = join(entry.parentPath, entry.name);
    if (entry.isFile() && readFileSync(path, 'utf8').includes(material)) found.push(path);
  }
  return found;
}

function keyringError(t: Test, fn: () => unknown, pattern: RegExp, label: string): void {
  try {
    fn();
    t.fail(`${label}: expected a KEYRING error`);
  } catch (err) {
    t.ok(isKmscryptError(err, 'KEYRING'), `${label}: a KEYRING error`);
    t.match((err as Error).message, pattern, label);
  }
}

t.test('a symbolic link planted at a predictable name never receives key material', async (t) => {
  const home = tempDir(t, 'keyring-home');
  const attacker = tempDir(t, 'keyring-attacker');
  const path = join(home, 'keyring.json');
  const first = new Keyring(path).createKey('first');

  // The names the keyring was once written through, for this process and its neighbours.
  const oldNames = [-2, -1, 0, 1, 2].map((d) => `${path}.${process.pid + d}.tmp`);
  oldNames.forEach((name, i) => symlinkSync(join(attacker, `old-tmp-${i}`), name));
  const second = new Keyring(path).createKey('second');
  t.same(readdirSync(attacker), [], 'nothing was created through the old temporary names');
  t.same(filesHolding(attacker, second.material), [], 'the new master key is nowhere in the attacker’s directory');
  t.ok(lstatSync(path).isFile(), 'the keyring is a regular file');
  t.equal(statSync(path).mode & 0o777, 0o600, 'mode 0600');
  t.same(new Keyring(path).load().keys.map((k) => k.keyId), [first.keyId, second.keyId]);
  oldNames.forEach((name) => t.ok(lstatSync(name).isSymbolicLink(), `${name} was left alone`));

  symlinkSync(join(attacker, 'lock-target'), `${path}.lock`);
  const before = readFileSync(path);
  keyringError(t, () => new Keyring(path).createKey('third'), /keyring lock .*\.lock is a symbolic link or other non-file that kmscrypt did not create; remove it/, 'a link at the lock path');
  t.notOk(existsSync(join(attacker, 'lock-target')), 'the lock was not created through the link');
  t.same(readFileSync(path), before, 'the keyring is unchanged');
  unlinkSync(`${path}.lock`);

  const planted = join(home, 'planted.json');
  symlinkSync(join(attacker, 'captured.json'), planted);
  keyringError(t, () => new Keyring(planted).createKey('fourth'), /keyring .*planted\.json is a symbolic link to a missing file; remove the link/, 'a dangling link at the keyring path');
  t.same(readdirSync(attacker), [], 'no keyring was written through the dangling link');
});

t.test('a keyring reached through a link to the owner’s own file is updated in place', async (t) => {
  const dir = tempDir(t, 'keyring-link');
  const real = join(dir, 'vault', 'keyring.json');
  const first = new Keyring(real).createKey('first');
  const link = join(dir, 'keyring.json');
  symlinkSync(real, link);
  const second = new Keyring(link).createKey('second');
  t.ok(lstatSync(link).isSymbolicLink(), 'the link is kept');
  t.same(new Keyring(real).load().keys.map((k) => k.keyId), [first.keyId, second.keyId], 'the file it points to holds both keys');
});

t.test('a keyring that belongs to another user is refused', async (t) => {
  t.equal(process.getuid?.(), 0, 'runs as root, which can give a file to another user');
  const dir = tempDir(t, 'keyring-owner');
  const path = join(dir, 'keyring.json');
  new Keyring(path).createKey('mine');
  chownSync(path, 65534, 65534);
  keyringError(t, () => new Keyring(path).load(), new RegExp(`keyring ${path} belongs to uid 65534, not to you \\(uid 0\\): it must be yours alone`), 'load');
});

/** Records each call of a write, and fails the one named in `failAt`. */
function recordingIo(failAt?: keyof PrivateFileIo): { io: PrivateFileIo; calls: string[] } {
  const calls: string[] = [];
  const fail = (name: keyof PrivateFileIo) => {
    if (name === failAt) throw Object.assign(new Error(`injected ${name} failure`), { code: 'EIO' });
  };
  const io: PrivateFileIo = {
    open: (path, flags, mode) => {
      calls.push(`open ${path.endsWith('.tmp') ? 'tmp' : 'dir'} ${flags} ${mode ?? ''}`.trim());
      fail('open');
      return NODE_IO.open(path, flags, mode);
    },
    write: (fd, data, offset) => {
      calls.push('write');
      fail('write');
      return NODE_IO.write(fd, data, offset);
    },
    fsync: (fd) => {
      calls.push('fsync');
      fail('fsync');
      NODE_IO.fsync(fd);
    },
    close: (fd) => {
      calls.push('close');
      NODE_IO.close(fd);
    },
    rename: (from, to) => {
      calls.push('rename');
      fail('rename');
      NODE_IO.rename(from, to);
    },
    link: (from, to) => {
      calls.push('link');
      NODE_IO.link(from, to);
    },
    unlink: (path) => {
      calls.push('unlink');
      NODE_IO.unlink(path);
    },
  };
  return { io, calls };
}

t.test('the new keyring is written and synced before it replaces the old one, and the directory after', async (t) => {
  const dir = tempDir(t, 'keyring-order');
  const path = join(dir, 'keyring.json');
  const { io, calls } = recordingIo();
  new Keyring(path, io).createKey('first');
  const exclusive = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  t.same(calls, [`open tmp ${exclusive} 384`, 'write', 'fsync', 'close', 'rename', `open dir ${constants.O_RDONLY | constants.O_DIRECTORY}`, 'fsync', 'close']);
  t.same(readdirSync(dir), ['keyring.json'], 'no temporary file is left');
});

t.test('a failure between writing and renaming leaves the old keyring whole', async (t) => {
  for (const failAt of ['write', 'fsync', 'rename'] as const) {
    const dir = tempDir(t, `keyring-fault-${failAt}`);
    const path = join(dir, 'keyring.json');
    const first = new Keyring(path).createKey('first');
    const before = readFileSync(path);
    keyringError(t, () => new Keyring(path, recordingIo(failAt).io).createKey('second'), /cannot write keyring .*: EIO; the previous file is unchanged/, `${failAt} fails`);
    t.same(readFileSync(path), before, `${failAt} fails: the keyring is byte for byte as before`);
    t.same(new Keyring(path).load().keys.map((k) => k.keyId), [first.keyId], `${failAt} fails: it loads`);
    t.same(readdirSync(dir), ['keyring.json'], `${failAt} fails: no temporary file and no lock is left`);
  }
});
