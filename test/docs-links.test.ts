/** README and docs/: every relative link resolves (file and #anchor), and README stays a guide of at most 25 KB. */
import t from 'tap';
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { brokenLink, relativeLinks } from './support/markdown-links';

const PROJECT_ROOT = resolve(__dirname, '..');

/** The markdown files a reader follows links through: README, docs/, and the examples and bench guides. */
function markdownFiles(): string[] {
  const files = [join(PROJECT_ROOT, 'README.md'), join(PROJECT_ROOT, 'bench', 'README.md')];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.md')) files.push(path);
    }
  };
  walk(join(PROJECT_ROOT, 'docs'));
  walk(join(PROJECT_ROOT, 'examples'));
  return files;
}

t.test('every relative link in README.md, docs/ and examples/ resolves', async (t) => {
  const files = markdownFiles();
  t.ok(files.length >= 10, `found ${files.length} markdown files`);
  let checked = 0;
  const broken: string[] = [];
  for (const file of files) {
    for (const link of relativeLinks(file)) {
      checked++;
      const why = brokenLink(link, PROJECT_ROOT);
      if (why) broken.push(`${file.slice(PROJECT_ROOT.length + 1)}:${link.line}: ${why}`);
    }
  }
  t.ok(checked > 50, `${checked} links checked`);
  t.same(broken, [], 'no broken links');
});

t.test('README.md is at most 25 KB', async (t) => {
  const size = statSync(join(PROJECT_ROOT, 'README.md')).size;
  t.ok(size <= 25 * 1024, `README.md is ${size} bytes`);
});

t.test('the link checker finds broken links and anchors', async (t) => {
  const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'kmscrypt-links-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'b.md'), '# Using S3, MinIO and R2 (`s3://`)\n\n## Same\n\n## Same\n');
  writeFileSync(
    join(dir, 'a.md'),
    '[ok](b.md#using-s3-minio-and-r2-s3) [dup](b.md#same-1) [missing](c.md) [anchor](b.md#nope)\n`[code](nope.md)` [web](https://example.com) [up](../x.md)\n```\n[fenced](nope.md)\n```\n',
  );
  const why = relativeLinks(join(dir, 'a.md')).map((l) => [l.target, brokenLink(l, dir)]);
  t.same(why, [
    ['b.md#using-s3-minio-and-r2-s3', undefined],
    ['b.md#same-1', undefined],
    ['c.md', 'c.md: no such file'],
    ['b.md#nope', 'b.md#nope: no heading with that anchor'],
    ['../x.md', `../x.md points outside ${dir}`],
  ]);
});
