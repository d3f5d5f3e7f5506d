// The documentation's relative links lead somewhere: in README.md, CONTRIBUTING.md and docs/*.md,
// every `[text](path)`, `[text](path#anchor)` and `[text](#anchor)` names a file or folder of the
// repository, and an anchor names a heading of the target, as GitHub makes heading ids.
// Links to web addresses (http, https, mailto) are not checked.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.join(__dirname, '..', '..');

/** The Markdown files this test checks, relative to `root`. */
function documents(root: string): string[] {
  const docs = fs.existsSync(path.join(root, 'docs'))
    ? fs
        .readdirSync(path.join(root, 'docs'))
        .filter((f) => f.endsWith('.md'))
        .map((f) => `docs/${f}`)
    : [];
  return ['README.md', 'CONTRIBUTING.md', ...docs.sort()].filter((f) => fs.existsSync(path.join(root, f)));
}

/** The lines outside fenced code blocks, with inline code spans blanked out (links there are text). */
function prose(markdown: string): string[] {
  const lines: string[] = [];
  let fence: string | undefined;
  for (const line of markdown.split('\n')) {
    const marker = /^\s*(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence !== undefined) {
      if (marker !== undefined && marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      lines.push('');
    } else if (marker !== undefined) {
      fence = marker;
      lines.push('');
    } else {
      lines.push(line.replace(/(`+)[\s\S]*?\1/g, (span) => ' '.repeat(span.length)));
    }
  }
  return lines;
}

/** GitHub's id for a heading's text: lower case, punctuation dropped, spaces as hyphens. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // a link counts by its text
    .replace(/<[^>]+>/g, '') // HTML tags
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** The ids of every heading of a Markdown document; repeated ones get -1, -2... as on GitHub. */
function headingIds(markdown: string): Set<string> {
  const ids = new Set<string>();
  const seen = new Map<string, number>();
  const lines = markdown.split('\n');
  const outside = prose(markdown).map((line, i) => (line === '' ? '' : lines[i]));
  for (const line of outside) {
    const match = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(line ?? '');
    if (!match) continue;
    const base = slug(match[1] ?? '');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    ids.add(count === 0 ? base : `${base}-${count}`);
  }
  return ids;
}

interface Link {
  line: number;
  target: string;
}

/** Every relative link of a document: inline links and images, and reference definitions. */
function relativeLinks(markdown: string): Link[] {
  const links: Link[] = [];
  prose(markdown).forEach((text, i) => {
    const targets = [
      ...[...text.matchAll(/\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1] ?? ''),
      ...[...text.matchAll(/^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?/g)].map((m) => m[1] ?? ''),
    ];
    for (const target of targets) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // http:, https:, mailto: and other schemes
      links.push({ line: i + 1, target });
    }
  });
  return links;
}

/** What is wrong with each relative link of `file` (relative to `root`): one line per broken link. */
function brokenLinks(root: string, file: string): string[] {
  const problems: string[] = [];
  const source = path.join(root, file);
  for (const { line, target } of relativeLinks(fs.readFileSync(source, 'utf8'))) {
    const where = `${file}:${line}: (${target})`;
    const hash = target.indexOf('#');
    const filePart = decodeURIComponent(hash === -1 ? target : target.slice(0, hash));
    const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
    const resolved = filePart === '' ? source : path.resolve(path.dirname(source), filePart);
    if (filePart !== '' && !fs.existsSync(resolved)) {
      problems.push(`${where} no such file: ${path.relative(root, resolved)}`);
      continue;
    }
    if (anchor === undefined || !resolved.endsWith('.md')) continue;
    if (!headingIds(fs.readFileSync(resolved, 'utf8')).has(anchor)) {
      problems.push(`${where} no heading #${anchor} in ${path.relative(root, resolved)}`);
    }
  }
  return problems;
}

describe('the documentation of this repository', () => {
  const files = documents(ROOT);

  test('has a README, a CONTRIBUTING guide and pages in docs/, with relative links to check', () => {
    expect(files).toEqual(expect.arrayContaining(['README.md', 'CONTRIBUTING.md', 'docs/guarantees.md']));
    const total = files.reduce((n, f) => n + relativeLinks(fs.readFileSync(path.join(ROOT, f), 'utf8')).length, 0);
    expect(total).toBeGreaterThan(30);
  });

  test.each(documents(ROOT))('%s: every relative link names an existing file and heading', (file) => {
    expect(brokenLinks(ROOT, file)).toEqual([]);
  });

  test('the README links every page of docs/', () => {
    const linked = new Set(
      relativeLinks(fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')).map((l) => l.target.split('#')[0]),
    );
    const pages = files.filter((f) => f.startsWith('docs/'));
    expect(pages.filter((page) => !linked.has(page))).toEqual([]);
  });
});

describe('the link checker', () => {
  let root: string;

  beforeAll(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'mdl-links-'));
    fs.mkdirSync(path.join(root, 'docs'));
    fs.mkdirSync(path.join(root, 'spec'));
    fs.writeFileSync(
      path.join(root, 'docs', 'page.md'),
      [
        '# A page',
        '## The `mdlock` command',
        '## Upgrading from 0.0.1',
        '## Notes',
        '## Notes',
        '### Shut down, then exit! #',
        '```md',
        '## Not a heading',
        '```',
      ].join('\n'),
    );
    fs.writeFileSync(
      path.join(root, 'README.md'),
      [
        '# Readme',
        '[ok](docs/page.md) [ok](docs/page.md#the-mdlock-command) [ok](docs/page.md#upgrading-from-001)',
        '[ok](docs/page.md#notes-1) [ok](docs/page.md#shut-down-then-exit) [ok](#readme) [ok](spec/)',
        '[web](https://example.com/nowhere.md) [mail](mailto:someone@example.com) `[code](missing.md)`',
        '```sh',
        '[in a code block](missing.md)',
        '```',
        '[missing file](docs/missing.md)',
        '[missing anchor](docs/page.md#not-a-heading)',
        '[missing here](#nowhere)',
        '[duplicate beyond the last](docs/page.md#notes-2)',
        '![missing image](docs/missing.png)',
        '[ref]: docs/gone.md',
      ].join('\n'),
    );
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  test('reports each broken link, and only those', () => {
    expect(brokenLinks(root, 'README.md')).toEqual([
      'README.md:8: (docs/missing.md) no such file: docs/missing.md',
      'README.md:9: (docs/page.md#not-a-heading) no heading #not-a-heading in docs/page.md',
      'README.md:10: (#nowhere) no heading #nowhere in README.md',
      'README.md:11: (docs/page.md#notes-2) no heading #notes-2 in docs/page.md',
      'README.md:12: (docs/missing.png) no such file: docs/missing.png',
      'README.md:13: (docs/gone.md) no such file: docs/gone.md',
    ]);
  });

  test('checks links from docs/ relative to docs/', () => {
    fs.writeFileSync(path.join(root, 'docs', 'other.md'), '[up](../README.md#readme) [wrong](README.md)\n');
    expect(brokenLinks(root, 'docs/other.md')).toEqual(['docs/other.md:1: (README.md) no such file: docs/README.md']);
  });
});
