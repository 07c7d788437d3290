import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import t from 'tap';
import { PROJECT_ROOT, Sandbox } from './support/sandbox';

/** Bytes of every file under `dir`, like `du -sb`. */
function bytesUnder(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? bytesUnder(path) : statSync(path).size;
  }
  return total;
}

/**
 * Bytes stored against git's packed size, on the benchmark generator's fixed small repository
 * (source-like files edited a few lines at a time, feature branches, tags, random binaries): the
 * store keeps git's own deltas, so the encrypted copy costs only a GCM tag and an index entry per
 * object, plus the manifests. The performance target is at most 1.10x git's packed size.
 */
t.test('a mirror push stores at most 1.10x git packed size of the fixed generated repository', async (t) => {
  const sb = new Sandbox(t);
  const source = sb.path('tiny.git');
  // Without tap's coverage hook: bench/ is not part of what the coverage figures measure.
  sb.run(process.execPath, [join(PROJECT_ROOT, 'bench', 'generate-large-repo.js'), '--kind', 'large', '--size', 'tiny', '--out', source], { env: { NODE_OPTIONS: '', NODE_V8_COVERAGE: '' } });
  const packDir = join(source, 'objects', 'pack');
  const packed = readdirSync(packDir)
    .filter((f) => f.endsWith('.pack'))
    .reduce((n, f) => n + statSync(join(packDir, f)).size, 0);
  const objects = Number(/in-pack: (\d+)/.exec(sb.git(source, 'count-objects', '-v'))![1]);
  t.ok(objects > 3000, `${objects} objects in the generated repository`);

  const storeDir = sb.path('store');
  const url = `kmscrypt::file://${storeDir}`;
  sb.git(source, 'push', '-q', '--mirror', url);
  const stored = bytesUnder(storeDir);
  const containers = bytesUnder(join(storeDir, 'containers'));
  const ratio = stored / packed;
  t.comment(`git packed ${packed} B, stored ${stored} B (containers ${containers} B), ratio ${ratio.toFixed(3)}, ${((stored - packed) / objects).toFixed(1)} B per object over git`);
  t.ok(ratio <= 1.1, `stored ${stored} B is ${ratio.toFixed(3)}x git's packed ${packed} B (target 1.10x)`);
  t.ok(stored > packed, 'and more than git packed: every object carries its tag and index entry');

  // What was stored is the whole repository: a mirror clone has every ref and object.
  const mirror = sb.path('mirror.git');
  sb.run('git', ['clone', '-q', '--mirror', url, mirror]);
  t.same(sb.refs(mirror), sb.refs(source), 'the mirror clone has exactly the refs');
  t.equal(Number(/in-pack: (\d+)/.exec(sb.git(mirror, 'count-objects', '-v'))![1]), objects, 'and exactly as many objects');
});
