// Preloaded into every test process after tsx (package.json, tap "node-arg"): a module of src/
// that a test imports is taken from its build in dist/, which the helpers that git starts run too
// (test/setup/before-run.ts builds dist/ first). So unit tests exercise the compiled code the
// product ships, and their coverage lands on the same lines as the helpers': tsx compiles each
// module onto one line, which c8 cannot map back (every unit test's coverage of src/ was lost).
// A source without a build (a new file before the first build) is still compiled by tsx.
import { existsSync } from 'node:fs';
import Module from 'node:module';
import { join, relative, sep } from 'node:path';

type Loader = (this: unknown, module: NodeJS.Module, filename: string) => void;
const extensions = (Module as unknown as { _extensions: Record<string, Loader> })._extensions;
const root = join(__dirname, '..', '..');
const sources = join(root, 'src') + sep;
const compileWithTsx = extensions['.ts'];

extensions['.ts'] = function loadBuiltSource(module, filename) {
  if (filename.startsWith(sources)) {
    const built = join(root, 'dist', relative(sources, filename)).replace(/\.ts$/, '.js');
    if (existsSync(built)) {
      module.exports = module.require(built);
      return;
    }
  }
  compileWithTsx.call(this, module, filename);
};
