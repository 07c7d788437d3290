import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The version in package.json, which sits two levels above this file in src/ and in dist/. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version?: unknown };
  if (typeof pkg.version !== 'string') throw new Error('package.json has no version');
  return pkg.version;
}
