import Module from 'node:module';
import {
  closeSync,
  existsSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  rmSync,
  writeFileSync,
  constants as fsConstants,
} from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, isAbsolute, join, sep } from 'node:path';
import vm from 'node:vm';
import zlib from 'node:zlib';
import { processExists } from './process-exists';
import { trace, tracing } from './trace';

/**
 * A V8 code cache for the modules a helper loads: its own and the AWS SDK's (issue 16; measured in
 * docs/performance.md, "Code cache"). Node 20 compiles every module from source in each process;
 * over S3 that is 1.5 MB of SDK, 60 ms before the first request and 20 ms more compiling the
 * functions the first request runs. Node 22's `module.enableCompileCache` does this; Node 20 needs
 * the hook below, which compiles each module as Node does (the same wrapper, `require`, `this`),
 * but through a `vm.Script` that can take V8's cached data and give it back after the run.
 *
 * Trust: V8 runs cached data as code, and checks only its version, flags and the source's length.
 * So the cache lives where only this user can write (`$XDG_CACHE_HOME/git-remote-kmscrypt`, or
 * `~/.cache/...`, made mode 0700, never inside another user's directory): the directory and the
 * file must be the user's own and writable by no one else, or the cache is neither read nor
 * written. Each entry is also checked against the CRC-32 of the module's current source (an
 * upgrade that keeps a file's length cannot reuse stale code) and of its own bytes (a torn or
 * damaged file is ignored).
 *
 * Off when KMSCRYPT_CODE_CACHE is 0/false/off, while NODE_V8_COVERAGE collects coverage, and in a
 * process started with a preload (`--require`, `--import`, a loader) or `--enable-source-maps`:
 * coverage tools, tracers and transpilers hook into or read Node's own compilation, and a module
 * compiled here has a wrapper in its source text and no source map registered with Node (tap's
 * coverage, collected through its preload, was wrong for every file such a helper loaded).
 *
 * The file is rewritten at the exit of a successful run that compiled a module the cache did not
 * hold, with every function that run compiled: the first runs of each operation after an install
 * or upgrade fill it, and then it stays as it is.
 */

const MAGIC = Buffer.from('kmscrypt code cache 1\n');
const HEADER_BYTES = 16; // source CRC-32, source length, data CRC-32, data length (4 bytes each)

interface Entry {
  sourceCrc: number;
  sourceLength: number;
  data: Buffer;
}

interface Compiled {
  filename: string;
  script: vm.Script;
  sourceCrc: number;
  sourceLength: number;
}

/** Node's CommonJS module, with the internals its own `_compile` uses. */
interface CommonJsModule {
  exports: unknown;
  require(id: string): unknown;
  _compile(content: string, filename: string, format?: string): unknown;
}
interface CommonJsModuleClass {
  prototype: CommonJsModule;
  wrap(source: string): string;
  _resolveFilename(request: string, parent: CommonJsModule, isMain: boolean, options?: { paths?: string[] }): string;
  _resolveLookupPaths(request: string, parent: CommonJsModule): string[] | null;
  _extensions: unknown;
  _cache: unknown;
}

export interface CodeCache {
  readonly file: string;
  /** Modules compiled through the cache so far, and how many of them from cached code. */
  readonly compiled: number;
  readonly fromCache: number;
  /** Writes the file anew when a module was compiled without cached code; false when there was nothing to write or it failed. */
  saveIfIncomplete(): boolean;
  /** Puts Node's own compilation back (tests). */
  uninstall(): void;
}

/** The helper's entry points: the cache for the package's modules, saved at a successful exit. */
export function useCodeCacheUntilExit(packageRoot: string): void {
  const cache = useCodeCache(packageRoot);
  if (!cache) return;
  process.on('exit', (code) => {
    const saved = code === 0 && cache.saveIfIncomplete();
    if (tracing()) trace(`code cache: ${cache.fromCache} of ${cache.compiled} modules compiled from ${cache.file}${saved ? '; saved' : ''}`);
  });
}

/**
 * Compiles the modules under `packageRoot` (the package's dist/ and its node_modules/) with cached
 * code from now on. Undefined when the cache is off, or unusable here (then Node compiles as usual).
 */
export function useCodeCache(packageRoot: string, env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): CodeCache | undefined {
  if (/^(0|false|off|no)$/i.test(env.KMSCRYPT_CODE_CACHE ?? '') || env.NODE_V8_COVERAGE || instrumented([...execArgv, env.NODE_OPTIONS ?? ''].join(' ')))
    return undefined;
  const importModuleDynamically = vm.constants?.USE_MAIN_CONTEXT_DEFAULT_LOADER;
  const crc32 = (zlib as { crc32?: (data: string | Buffer) => number }).crc32;
  if (!crc32 || importModuleDynamically === undefined || typeof process.getuid !== 'function') return undefined;
  const directory = cacheDirectory(env);
  if (!directory) return undefined;
  const uid = process.getuid();
  const file = join(directory, `v8-${crc32(`${packageRoot}\0${process.version}\0${process.arch}\0${process.versions.v8}`).toString(16).padStart(8, '0')}.bin`);
  if (!privateDirectoryOrAbsent(directory, uid)) {
    if (tracing()) trace(`code cache: not used, ${directory} is not this user's own or others may write to it`);
    return undefined;
  }
  const entries = readEntries(file, uid, crc32);
  const compiled: Compiled[] = [];
  let fromCache = 0;

  const ModuleClass = Module as unknown as CommonJsModuleClass;
  const nodeCompile = ModuleClass.prototype._compile;
  const under = packageRoot.endsWith(sep) ? packageRoot : packageRoot + sep;
  ModuleClass.prototype._compile = function compile(this: CommonJsModule, content: string, filename: string, format?: string): unknown {
    if (!filename.startsWith(under) || !filename.endsWith('.js') || (format !== undefined && format !== 'commonjs') || content.startsWith('#!')) {
      return nodeCompile.call(this, content, filename, format);
    }
    const sourceCrc = crc32(content);
    const entry = entries.get(filename);
    const cachedData = entry && entry.sourceCrc === sourceCrc && entry.sourceLength === content.length ? entry.data : undefined;
    const script = new vm.Script(ModuleClass.wrap(content), { filename, cachedData, importModuleDynamically });
    if (cachedData && !script.cachedDataRejected) fromCache++;
    compiled.push({ filename, script, sourceCrc, sourceLength: content.length });
    const wrapper = script.runInThisContext({ displayErrors: true }) as (...args: unknown[]) => unknown;
    return wrapper.call(this.exports, this.exports, requireFor(this, ModuleClass), this, filename, dirname(filename));
  };

  return {
    file,
    get compiled() {
      return compiled.length;
    },
    get fromCache() {
      return fromCache;
    },
    saveIfIncomplete: () => fromCache < compiled.length && save(directory, uid, file, compiled, entries, crc32),
    uninstall: () => {
      ModuleClass.prototype._compile = nodeCompile;
    },
  };
}

/** A preload or source maps among Node's options: someone else expects Node's own compilation. */
function instrumented(options: string): boolean {
  // NODE_OPTIONS may quote an option: tap sets "--import=file:///…/processinfo/…".
  return /(^|[\s"'])(-r|--require|--import|--loader|--experimental-loader|--enable-source-maps)(=|[\s"']|$)/.test(options);
}

/** Node's own `require` for a module (lib/internal/modules/helpers.js, makeRequireFunction). */
function requireFor(module: CommonJsModule, ModuleClass: CommonJsModuleClass): NodeJS.Require {
  const require = ((id: string) => module.require(id)) as NodeJS.Require;
  const resolve = ((request: string, options?: { paths?: string[] }) => ModuleClass._resolveFilename(request, module, false, options)) as NodeJS.RequireResolve;
  resolve.paths = (request: string) => ModuleClass._resolveLookupPaths(request, module);
  require.resolve = resolve;
  require.main = process.mainModule;
  require.extensions = ModuleClass._extensions as NodeJS.RequireExtensions;
  require.cache = ModuleClass._cache as NodeJS.Dict<NodeJS.Module>;
  return require;
}

function cacheDirectory(env: NodeJS.ProcessEnv): string | undefined {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && isAbsolute(xdg)) return join(xdg, 'git-remote-kmscrypt');
  let home = env.HOME;
  try {
    home ||= homedir();
  } catch {
    return undefined;
  }
  return home && isAbsolute(home) ? join(home, '.cache', 'git-remote-kmscrypt') : undefined;
}

/** A helper killed while it wrote the cache left its temporary file (`<file>.<pid>.tmp`). */
function removeTemporariesOfDeadProcesses(directory: string, file: string): void {
  const prefix = `${basename(file)}.`;
  for (const name of readdirSync(directory)) {
    const pid = name.startsWith(prefix) && name.endsWith('.tmp') ? Number(name.slice(prefix.length, -'.tmp'.length)) : NaN;
    if (Number.isInteger(pid) && pid > 0 && !processExists(pid)) rmSync(join(directory, name), { force: true });
  }
}

/** The directory itself, or the closest of its parents that exists: where a missing cache directory would be made. */
function nearestExisting(directory: string): string {
  let path = directory;
  while (!existsSync(path) && dirname(path) !== path) path = dirname(path);
  return path;
}

/** True when the directory is absent (it will be made 0700) or is a real directory of this user's that no one else may write to. */
function privateDirectoryOrAbsent(directory: string, uid: number): boolean {
  try {
    const stat = lstatSync(directory);
    return stat.isDirectory() && stat.uid === uid && (stat.mode & 0o022) === 0;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT';
  }
}

/** The entries of the cache file, or none when it is absent, not the user's own, writable by others, or damaged. */
function readEntries(file: string, uid: number, crc32: (data: Buffer) => number): Map<string, Entry> {
  const entries = new Map<string, Entry>();
  let fd: number;
  try {
    fd = openSync(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW);
  } catch {
    return entries;
  }
  let bytes: Buffer;
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.uid !== uid || (stat.mode & 0o022) !== 0 || stat.size > 256 * 2 ** 20) return entries;
    bytes = Buffer.allocUnsafe(stat.size);
    let filled = 0;
    while (filled < bytes.length) {
      const n = readSync(fd, bytes, filled, bytes.length - filled, filled);
      if (n === 0) return entries;
      filled += n;
    }
  } catch {
    return entries;
  } finally {
    closeSync(fd);
  }
  if (bytes.length < MAGIC.length || !bytes.subarray(0, MAGIC.length).equals(MAGIC)) return entries;
  let at = MAGIC.length;
  while (at < bytes.length) {
    if (at + 2 > bytes.length) return new Map();
    const nameLength = bytes.readUInt16LE(at);
    const headerAt = at + 2 + nameLength;
    if (headerAt + HEADER_BYTES > bytes.length) return new Map();
    const dataLength = bytes.readUInt32LE(headerAt + 12);
    const dataAt = headerAt + HEADER_BYTES;
    if (dataAt + dataLength > bytes.length) return new Map();
    const data = bytes.subarray(dataAt, dataAt + dataLength);
    if (crc32(data) !== bytes.readUInt32LE(headerAt + 8)) return new Map();
    const name = bytes.toString('utf8', at + 2, headerAt);
    entries.set(name, { sourceCrc: bytes.readUInt32LE(headerAt), sourceLength: bytes.readUInt32LE(headerAt + 4), data });
    at = dataAt + dataLength;
  }
  return entries;
}

/**
 * Writes every module compiled in this run, with the functions it ran, and keeps the entries of
 * modules this run did not load (another kind of operation loads them) while their files exist.
 * The new file is renamed over the old: a reader sees one or the other, whole.
 */
function save(directory: string, uid: number, file: string, compiled: Compiled[], previous: Map<string, Entry>, crc32: (data: Buffer) => number): boolean {
  const parts: Buffer[] = [MAGIC];
  const add = (filename: string, entry: Entry) => {
    const name = Buffer.from(filename);
    if (name.length > 0xffff) return;
    const header = Buffer.alloc(2 + name.length + HEADER_BYTES);
    header.writeUInt16LE(name.length, 0);
    name.copy(header, 2);
    const h = 2 + name.length;
    header.writeUInt32LE(entry.sourceCrc, h);
    header.writeUInt32LE(entry.sourceLength, h + 4);
    header.writeUInt32LE(crc32(entry.data), h + 8);
    header.writeUInt32LE(entry.data.length, h + 12);
    parts.push(header, entry.data);
  };
  const loaded = new Set<string>();
  for (const { filename, script, sourceCrc, sourceLength } of compiled) {
    loaded.add(filename);
    add(filename, { sourceCrc, sourceLength, data: script.createCachedData() });
  }
  for (const [filename, entry] of previous) if (!loaded.has(filename) && existsSync(filename)) add(filename, entry);
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    const ancestor = nearestExisting(directory);
    if (ancestor !== directory && lstatSync(ancestor).uid !== uid) throw new Error(`${ancestor} belongs to another user (a HOME kept by sudo?)`);
    mkdirSync(directory, { recursive: true, mode: 0o700 });
    if (!privateDirectoryOrAbsent(directory, uid)) throw new Error('the directory is not private to this user');
    writeFileSync(temporary, Buffer.concat(parts), { mode: 0o600, flag: 'wx' });
    renameSync(temporary, file);
    removeTemporariesOfDeadProcesses(directory, file);
    return true;
  } catch (err) {
    // A cache that cannot be written costs the next run its speed, never its result.
    rmSync(temporary, { force: true });
    if (tracing()) trace(`code cache: not saved to ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    return false;
  }
}
