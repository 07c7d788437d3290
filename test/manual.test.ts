/**
 * The manual (src/cli/help/): the committed man pages and bash completion are what it generates,
 * every command has an entry, `--help` and `help <command>` print its text, the man page shows the
 * same synopsis and options, and the version is the package's.
 */
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { COMMANDS } from '../src/cli/git-kmscrypt';
import { COMMAND_DOCS } from '../src/cli/help/git-kmscrypt-manual';
import { commandHelp, commandList } from '../src/cli/help/render-text';
import { generatedFiles } from '../src/cli/help/write-generated-files';
import { PROJECT_ROOT, Sandbox } from './support/sandbox';
import { ensureMan } from './support/system-packages';

const VERSION = (JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

t.test('the committed man pages and bash completion are what npm run generate writes', async (t) => {
  const files = generatedFiles();
  t.same(files.map((f) => f.path).sort(), ['completion/git-kmscrypt.bash', 'man/git-kmscrypt.1', 'man/git-remote-kmscrypt.1']);
  for (const { path, text } of files) {
    t.equal(readFileSync(join(PROJECT_ROOT, path), 'utf8'), text, `${path} is current (else: npm run generate)`);
  }
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'package.json'), 'utf8')) as { man: string[]; files: string[] };
  t.same(pkg.man, ['./man/git-kmscrypt.1', './man/git-remote-kmscrypt.1'], "package.json's man lists both pages");
  t.ok(pkg.files.includes('man') && pkg.files.includes('completion'), 'the package ships them');
});

t.test('every command git kmscrypt runs has a manual entry, and every entry a command', async (t) => {
  t.same(Object.keys(COMMANDS).sort(), COMMAND_DOCS.map((c) => c.name).sort(), 'add a new command to src/cli/help/git-kmscrypt-manual.ts too');
});

t.test('--help, -h and help <command> print the manual text of the command', async (t) => {
  const sb = new Sandbox(t).withoutCoverage();
  for (const doc of COMMAND_DOCS) {
    const expected = commandHelp(doc);
    t.equal(sb.run('git', ['kmscrypt', doc.name, '--help']).stdout, expected, `git kmscrypt ${doc.name} --help`);
    t.equal(sb.run('git', ['kmscrypt', 'help', doc.name]).stdout, expected, `git kmscrypt help ${doc.name}`);
    t.equal(sb.run('git-kmscrypt', [doc.name, 'origin', '-h']).stdout, expected, `git-kmscrypt ${doc.name} origin -h`);
  }
  t.equal(sb.run('git', ['kmscrypt', 'help']).stdout, commandList(COMMAND_DOCS), 'git kmscrypt help lists the commands');
  t.equal(sb.run('git-kmscrypt', ['-h']).stdout, commandList(COMMAND_DOCS), 'git-kmscrypt -h too');
  t.match(commandList(COMMAND_DOCS), /^ {2}rotate-key {2}rewrap every data key/m);
});

t.test('each option the manual lists is one its command accepts', async (t) => {
  const sb = new Sandbox(t).withoutCoverage();
  for (const doc of COMMAND_DOCS) {
    for (const option of doc.options) {
      // `-b, --initial-branch <name>`: spellings separated by commas, the value (if any) after the last.
      const spellings = option.flags.split(', ');
      const value = spellings[spellings.length - 1].split(' ')[1];
      for (const spelling of spellings) {
        const flag = spelling.split(' ')[0];
        const sample: Record<string, string> = { '--grace': '1h', '--port': '0' };
        const args = [doc.name, flag, ...(value === undefined ? [] : [sample[flag] ?? (value.startsWith('<') ? 'x' : value.split('|')[0])])];
        // Stop each command right after its options are parsed: without its target, or with a bad port.
        if (doc.name === 'local-kms') args.push('--port', 'not-a-port');
        const r = sb.run('git', ['kmscrypt', ...args], { expectFailure: true });
        t.notMatch(r.stderr, /unknown option|unexpected argument/, `git kmscrypt ${args.join(' ')}: ${r.stderr.trim()}`);
        t.match(r.stderr, /missing <(remote-or-url|url)>|--port not-a-port is not a port number|keys: missing action/, 'fails only for the missing argument');
      }
    }
  }
});

t.test('the manual page shows the same synopsis and options, and renders without warnings', async (t) => {
  ensureMan();
  const render = (page: string) =>
    spawnSync('man', ['--warnings', '-l', join(PROJECT_ROOT, 'man', `${page}.1`)], {
      env: { ...process.env, MANWIDTH: '250', LANG: 'C.UTF-8', MAN_KEEP_FORMATTING: '' },
      encoding: 'utf8',
    });
  const page = render('git-kmscrypt');
  t.equal(page.status, 0);
  t.equal(page.stderr, '', 'no roff warnings');
  const text = page.stdout.replace(/.\x08/g, '');
  t.match(text, /^NAME\n\s+git-kmscrypt - look after repositories stored encrypted by git-remote-kmscrypt$/m);
  for (const doc of COMMAND_DOCS) {
    t.ok(text.includes(`git kmscrypt ${doc.name} ${doc.synopsis}`), `synopsis of ${doc.name}`);
    for (const option of doc.options) t.match(text, new RegExp(`^ {7}${option.flags.replace(/[|[\]]/g, '\\$&')}(?=\\s|$)`, 'm'), `${doc.name} ${option.flags}`);
    t.ok(text.includes(doc.description[0].replace(/`/g, '').slice(0, 60)), `description of ${doc.name}`);
  }
  const helper = render('git-remote-kmscrypt');
  t.equal(helper.status, 0);
  t.equal(helper.stderr, '', 'no roff warnings');
  t.match(helper.stdout, /kmscrypt\.requestTimeout, KMSCRYPT_REQUEST_TIMEOUT/);
  t.match(helper.stdout, /kmscrypt::s3:\/\/\[<profile>@\]<bucket>\[\/<prefix>\]/);
});

t.test('--version, -V and version print the package version', async (t) => {
  const sb = new Sandbox(t);
  const line = `git-remote-kmscrypt version ${VERSION}\n`;
  for (const arg of ['--version', '-V', 'version']) t.equal(sb.run('git', ['kmscrypt', arg]).stdout, line, `git kmscrypt ${arg}`);
  t.equal(sb.run('git-remote-kmscrypt', ['--version']).stdout, line, 'git-remote-kmscrypt --version');
});

t.test('no command, or an unknown one, is a usage error (129)', async (t) => {
  const sb = new Sandbox(t);
  const none = sb.run('git', ['kmscrypt'], { expectFailure: true });
  t.equal(none.status, 129);
  t.equal(none.stdout, '');
  t.equal(none.stderr, commandList(COMMAND_DOCS), 'the list of commands on stderr');
  for (const args of [['frobnicate'], ['help', 'frobnicate'], ['frobnicate', '--help']]) {
    const r = sb.run('git', ['kmscrypt', ...args], { expectFailure: true });
    t.equal(r.status, 129, args.join(' '));
    t.equal(r.stderr, "fatal: unknown command 'frobnicate'; run 'git kmscrypt help' for the list\n");
  }
  const helper = sb.run('git-remote-kmscrypt', ['a', 'b', 'c'], { expectFailure: true });
  t.equal(helper.status, 129);
  t.match(helper.stderr, /^usage: git-remote-kmscrypt <remote> \[<url>\]\n/);
  t.match(helper.stderr, /See 'man git-remote-kmscrypt'/, 'the usage points at the manual page');
});
