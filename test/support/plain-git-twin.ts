import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Test } from 'tap';
import { scenarioSandbox, type ScenarioBackend } from './git-scenarios';
import type { Sandbox } from './sandbox';
import type { StoreAccess } from './store-access';

/**
 * One source repository pushed to a kmscrypt store and to a plain bare repository (with
 * `uploadpack.allowFilter`, as a server of partial clones needs), so that a test runs the same
 * git command against both and compares what a user would look at.
 */
export class PlainGitTwin {
  readonly bare: string;

  constructor(
    readonly sb: Sandbox,
    readonly store: StoreAccess,
    readonly src: string,
    bareName = 'plain.git',
    objectFormat: 'sha1' | 'sha256' = 'sha1',
  ) {
    this.bare = sb.path(bareName);
    sb.run('git', ['init', '-q', '--bare', `--object-format=${objectFormat}`, this.bare]);
    sb.git(this.bare, 'config', 'uploadpack.allowFilter', 'true');
    sb.git(this.bare, 'config', 'uploadpack.allowAnySHA1InWant', 'true');
    sb.git(src, 'remote', 'add', 'kms', store.url);
    sb.git(src, 'remote', 'add', 'plain', `file://${this.bare}`);
  }

  static async create(t: Test, backend: ScenarioBackend): Promise<PlainGitTwin> {
    const sb = scenarioSandbox(t, backend);
    return new PlainGitTwin(sb, await backend.newStore(sb, 'store'), sb.repo('src'));
  }

  /** Pushes every branch and tag of the source to both remotes. */
  pushAll(): void {
    for (const remote of ['kms', 'plain']) {
      this.sb.git(this.src, 'push', '-q', remote, '--all');
      this.sb.git(this.src, 'push', '-q', remote, '--tags');
    }
  }

  /** `git clone <args>` of both: [the kmscrypt clone, the plain clone]. */
  cloneBoth(name: string, ...args: string[]): [string, string] {
    const k = this.sb.path(`${name}-kms`);
    const p = this.sb.path(`${name}-plain`);
    this.sb.run('git', ['clone', '-q', ...args, this.store.url, k]);
    this.sb.run('git', ['clone', '-q', ...args, `file://${this.bare}`, p]);
    return [k, p];
  }

  /** The same git command in both clones; their outputs. */
  inBoth(clones: [string, string], ...args: string[]): [string, string] {
    return [this.sb.git(clones[0], ...args), this.sb.git(clones[1], ...args)];
  }

  /** What tells a shallow or partial clone from another: the same in both, or the test fails. */
  compare(t: Test, clones: [string, string], what: string): void {
    const [k, p] = clones;
    t.equal(this.shallowFile(k), this.shallowFile(p), `${what}: .git/shallow`);
    t.equal(
      this.sb.git(k, 'rev-parse', '--is-shallow-repository'),
      this.sb.git(p, 'rev-parse', '--is-shallow-repository'),
      `${what}: rev-parse --is-shallow-repository`,
    );
    t.equal(this.sb.git(k, 'log', '--all', '--format=%H %P'), this.sb.git(p, 'log', '--all', '--format=%H %P'), `${what}: git log --all, with parents`);
    t.same(this.objects(k), this.objects(p), `${what}: the same objects`);
    t.same(this.sb.refs(k), this.sb.refs(p), `${what}: the same branches and tags`);
  }

  shallowFile(repo: string): string {
    try {
      return readFileSync(join(repo, '.git', 'shallow'), 'utf8');
    } catch {
      return '(none)';
    }
  }

  /** Every object a repository holds, listed without fetching anything (never a lazy fetch). */
  objects(repo: string): string[] {
    const out = execFileSync('git', ['cat-file', '--batch-all-objects', '--batch-check=%(objectname) %(objecttype)'], {
      cwd: repo,
      env: { ...this.sb.env, GIT_NO_LAZY_FETCH: '1' },
      maxBuffer: 64 << 20,
    });
    return out.toString('utf8').split('\n').filter(Boolean).sort();
  }
}
