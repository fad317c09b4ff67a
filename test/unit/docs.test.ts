/**
 * The documentation agrees with the repository and with the proxy:
 * - every relative link in README.md, docs/*.md and docker/README.md points to a file that exists and, with an
 *   anchor, to a heading of that page (GitHub's anchors); docs/ pages named in the config files' comments exist;
 * - the README's quick start is exactly two commands, and .ci/run runs exactly its test command (with the type check
 *   put before `npm test`);
 * - docs/configuration.md lists every key of [quota-proxy], [filter:quota] and webhook [notify:<name>]
 *   sections that the loader knows, and no key it does not.
 * Each checker returns a list of problems, and is also fed broken copies, so a check that can never fail would
 * be noticed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { configFromText } from '../../src/config/load.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

/** The Markdown files whose links are checked, relative to the repository. */
const PAGES = ['README.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`), 'docker/README.md'];

// ---------------------------------------------------------------------------------------------------------
// Markdown: headings and links, outside code
// ---------------------------------------------------------------------------------------------------------

interface MarkdownLine {
  no: number; // 1-based
  text: string; // inline code spans blanked (same length), so that nothing in them reads as a link
}

/** The lines outside fenced code blocks, with the content of inline code spans replaced by spaces. */
function proseLines(source: string): MarkdownLine[] {
  const lines: MarkdownLine[] = [];
  let fence: string | undefined;
  source.split('\n').forEach((raw, i) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(raw)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length) fence = undefined;
      return;
    }
    if (marker) {
      fence = marker;
      return;
    }
    lines.push({ no: i + 1, text: raw.replace(/(`+)([^`]|[^`].*?[^`])\1(?!`)/g, (m, ticks: string, code: string) => `${ticks}${' '.repeat(code.length)}${ticks}`) });
  });
  return lines;
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens (github-slugger). */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1') // links and images: their text
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** The anchors of a page's headings, repeats numbered as GitHub numbers them (-1, -2, ...). */
export function anchorsOf(source: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  // Headings are read from the raw lines (code spans matter to the anchor) that are outside fences.
  const raw = source.split('\n');
  for (const { no } of proseLines(source)) {
    const match = /^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$/.exec(raw[no - 1]!);
    if (!match) continue;
    const base = githubSlug(match[1]!);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

export interface Link {
  line: number;
  target: string;
}

/** Inline links and images, `[text](target "title")`, outside code. */
export function linksOf(source: string): Link[] {
  const links: Link[] = [];
  for (const { no, text } of proseLines(source)) {
    for (const match of text.matchAll(/\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+"[^"]*")?\s*\)/g)) {
      links.push({ line: no, target: match[1]!.replace(/^<|>$/g, '') });
    }
  }
  return links;
}

/**
 * What is wrong with the relative links of `page` (a path relative to the repository) whose text is `source`.
 * `pageText` gives the text of another Markdown page of the repository, for its anchors.
 */
export function linkProblems(page: string, source: string, pageText: (repoPath: string) => string | undefined): string[] {
  const problems: string[] = [];
  const here = dirname(join(ROOT, page));
  for (const { line, target } of linksOf(source)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target) || target.startsWith('//')) continue; // absolute: http:, mailto:, ...
    const where = `${page}:${line}: ${target}`;
    const hash = target.indexOf('#');
    const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
    const anchor = hash < 0 ? undefined : target.slice(hash + 1);
    if (path.startsWith('/')) {
      problems.push(`${where}: absolute path (GitHub resolves it from the site root, not the repository)`);
      continue;
    }
    const file = path === '' ? join(ROOT, page) : resolve(here, path);
    const repoPath = relative(ROOT, file);
    if (repoPath.startsWith('..') || repoPath.split(sep).includes('node_modules')) {
      problems.push(`${where}: points outside the repository`);
      continue;
    }
    if (!existsSync(file)) {
      problems.push(`${where}: ${repoPath} does not exist`);
      continue;
    }
    if (anchor === undefined) continue;
    if (!repoPath.endsWith('.md') || statSync(file).isDirectory()) {
      problems.push(`${where}: an anchor on a file that is not a Markdown page`);
      continue;
    }
    const text = path === '' ? source : pageText(repoPath.split(sep).join('/'));
    if (text === undefined || !anchorsOf(text).has(anchor)) problems.push(`${where}: ${repoPath} has no heading with the anchor #${anchor}`);
  }
  return problems;
}

const pageText = (repoPath: string): string | undefined => {
  const file = join(ROOT, repoPath);
  return existsSync(file) ? readFileSync(file, 'utf8') : undefined;
};

/** `docs/<page>.md[#anchor]` named in a file that is not Markdown (config comments), relative to the repository. */
export function mentionProblems(file: string, source: string, text: (repoPath: string) => string | undefined): string[] {
  const problems: string[] = [];
  source.split('\n').forEach((line, i) => {
    for (const match of line.matchAll(/\bdocs\/[\w.-]+\.md(?:#[\w-]+)?/g)) {
      const [path, anchor] = match[0].split('#') as [string, string | undefined];
      const page = text(path);
      if (page === undefined) problems.push(`${file}:${i + 1}: ${match[0]}: ${path} does not exist`);
      else if (anchor !== undefined && !anchorsOf(page).has(anchor)) problems.push(`${file}:${i + 1}: ${match[0]}: no heading with that anchor`);
    }
  });
  return problems;
}

const COMMENTED_FILES = ['conf/proxy-server.conf', 'docker/proxy-server.conf', 'docker/compose.yaml', 'Dockerfile'];

describe('Markdown reading', () => {
  test("GitHub's anchors: punctuation dropped, code and links reduced to their text, repeats numbered", () => {
    assert.equal(githubSlug('Several proxies, one ledger'), 'several-proxies-one-ledger');
    assert.equal(githubSlug('`[filter:quota]`'), 'filterquota');
    assert.equal(githubSlug("Swift's `[filter:s3api]`, `[filter:domain_remap]`, `[filter:cname_lookup]`"), 'swifts-filters3api-filterdomain_remap-filtercname_lookup');
    assert.equal(githubSlug('`[notify:<name>]`'), 'notifyname');
    assert.equal(githubSlug('See [the docs](x.md) — now'), 'see-the-docs--now');
    assert.deepEqual([...anchorsOf('# A\n## A\n```\n# not a heading\n```\n### A b\n')], ['a', 'a-1', 'a-b']);
  });

  test('links outside code only, with titles and angle brackets; link text may hold code', () => {
    const source = [
      'See [`conf/x.conf`](../conf/x.conf) and [b](b.md#part "title") and ![img](<i m.png>).',
      'Not a link: `[a](nowhere.md)`.',
      '```',
      '[in a fence](nowhere.md)',
      '```',
      '[external](https://example.com/a_(b)) [mail](mailto:x@example.com) [here](#top)',
    ].join('\n');
    assert.deepEqual(linksOf(source).map((l) => `${l.line} ${l.target}`), ['1 ../conf/x.conf', '1 b.md#part', '1 i m.png', '6 https://example.com/a_(b', '6 mailto:x@example.com', '6 #top']);
  });
});

describe('links in the documentation', () => {
  test('the pages exist: the README and docs/ with the pages the README names', () => {
    for (const page of ['configuration', 'quotas', 'notifications', 'operations', 'security', 'design', 'testing']) {
      assert.ok(PAGES.includes(`docs/${page}.md`), page);
    }
  });

  for (const page of PAGES) {
    test(`${page}: every relative link points to an existing file and heading`, () => {
      const source = read(page);
      assert.ok(linksOf(source).length > 0, 'links were found');
      assert.deepEqual(linkProblems(page, source, pageText), []);
    });
  }

  test('the docs/ pages named in config and container files exist, with their headings', () => {
    let mentions = 0;
    for (const file of COMMENTED_FILES) {
      const source = read(file);
      mentions += [...source.matchAll(/\bdocs\/[\w.-]+\.md/g)].length;
      assert.deepEqual(mentionProblems(file, source, pageText), []);
    }
    assert.ok(mentions >= 2, 'the config files point readers to docs/');
  });

  test('the checker fails on a missing file, a missing heading, a bad anchor in the page, a path outside the repository', () => {
    const readme = read('README.md');
    const cases: Array<[string, string, RegExp]> = [
      ['missing file', readme.replace('](docs/configuration.md)', '](docs/configuraton.md)'), /docs\/configuraton\.md does not exist/],
      ['missing heading', readme.replace('](docs/operations.md#signals)', '](docs/operations.md#signal)'), /no heading with the anchor #signal/],
      ['bad anchor in the page', `${readme}\n[x](#no-such-heading)\n`, /README\.md has no heading with the anchor #no-such-heading/],
      ['outside the repository', `${readme}\n[x](../elsewhere.md)\n`, /outside the repository/],
      ['absolute path', `${readme}\n[x](/docs/design.md)\n`, /absolute path/],
      ['anchor on a non-Markdown file', `${readme}\n[x](package.json#engines)\n`, /not a Markdown page/],
    ];
    for (const [name, source, expected] of cases) {
      const problems = linkProblems('README.md', source, pageText);
      assert.ok(problems.some((p) => expected.test(p)), `${name}: ${JSON.stringify(problems)}`);
    }
    const conf = read('conf/proxy-server.conf');
    assert.match(mentionProblems('conf', `${conf}\n# see docs/nowhere.md\n`, pageText).join(), /does not exist/);
    assert.match(mentionProblems('conf', `${conf}\n# see docs/security.md#nowhere\n`, pageText).join(), /no heading/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// The quick start and CI
// ---------------------------------------------------------------------------------------------------------

/** The commands of the first shell block under `## Quick start` (comments dropped). */
export function quickStartCommands(readme: string): string[] {
  const section = /^## Quick start\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? '';
  const block = /^```sh\n([\s\S]*?)^```/m.exec(section)?.[1] ?? '';
  return block.split('\n').map((line) => line.replace(/\s+#.*$/, '').trim()).filter((line) => line !== '' && !line.startsWith('#'));
}

/** The commands .ci/run runs after its preamble (set, cd). */
export function ciCommands(script: string): string[] {
  return script
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#') && !/^(set|cd)\b/.test(line));
}

/** A command of steps joined by `&&` with `npm run typecheck` put just before its `npm test`. */
export function withTypeCheck(command: string): string {
  const steps = command.split(' && ');
  const at = steps.indexOf('npm test');
  return at < 0 ? command : [...steps.slice(0, at), 'npm run typecheck', ...steps.slice(at)].join(' && ');
}

describe('the quick start', () => {
  test('is two commands on a fresh machine: the demo, and the whole test suite', () => {
    assert.deepEqual(quickStartCommands(read('README.md')), ['npm ci && npm run demo', 'npm ci && npm test']);
    const scripts = (JSON.parse(read('package.json')) as { scripts: Record<string, string> }).scripts;
    assert.ok(scripts.demo && scripts.test, 'package.json has the demo and test scripts');
  });

  test("CI (.ci/run) runs exactly the README's test command, with the type check before the tests", () => {
    const testCommand = quickStartCommands(read('README.md')).find((c) => /\bnpm test\b/.test(c));
    assert.equal(testCommand, 'npm ci && npm test');
    assert.deepEqual(ciCommands(read('.ci/run')), [withTypeCheck(testCommand)]);
  });

  test('the checkers see a third command, a changed command, and CI running something else', () => {
    const readme = read('README.md');
    assert.equal(quickStartCommands(readme.replace('npm ci && npm test ', 'npm ci && npm test\nnpm run bench ')).length, 3);
    assert.notDeepEqual(quickStartCommands(readme.replace('npm ci && npm test ', 'npm install && npm test ')), ['npm ci && npm run demo', 'npm ci && npm test']);
    assert.deepEqual(ciCommands('#!/usr/bin/env bash\nset -e\ncd x\nnpm ci\nnpm run test:unit\n'), ['npm ci', 'npm run test:unit']);
    assert.notDeepEqual(ciCommands('set -e\nnpm ci && npm test\n'), [withTypeCheck('npm ci && npm test')], 'CI without the type check');
    assert.notDeepEqual(ciCommands('set -e\nnpm ci && npm test && npm run typecheck\n'), [withTypeCheck('npm ci && npm test')], 'the type check after the tests');
  });
});

// ---------------------------------------------------------------------------------------------------------
// The configuration reference
// ---------------------------------------------------------------------------------------------------------

/** The keys of the first table under a `## ` heading of docs/configuration.md whose text contains `title`. */
export function documentedKeys(reference: string, title: string, type?: string): string[] {
  const at = reference.split('\n').findIndex((line) => line.startsWith('## ') && line.includes(title));
  if (at < 0) return [];
  const keys: string[] = [];
  let inTable = false;
  for (const line of reference.split('\n').slice(at + 1)) {
    if (line.startsWith('## ')) break;
    if (!line.startsWith('|')) {
      if (inTable) break;
      continue;
    }
    inTable = true;
    const cells = line.split('|').map((cell) => cell.trim());
    const key = /^`([a-z0-9_]+)`$/.exec(cells[1] ?? '')?.[1];
    if (!key) continue;
    if (type !== undefined && !(cells[2] ?? '').split(/,\s*/).some((t) => t === type || t === 'all')) continue;
    keys.push(key);
  }
  return keys;
}

/** The keys a list literal in src/config/*.ts names: `[NAME]: [ ... ]` or `NAME = [ ... ]` (load.ts read first). */
function keysInLoader(source: string, name: string): string[] {
  const match = new RegExp(`(?:\\[${name}\\]\\s*:|${name}\\s*=)\\s*\\[([^\\]]*)\\]`).exec(source);
  assert.ok(match, `src/config/*.ts have no list ${name}: update this test to where the known keys are`);
  return [...match[1]!.matchAll(/'([a-z0-9_]+)'/g)].map((m) => m[1]!);
}

/** Whether the loader refuses `key` in `section` as unknown (any other complaint is about the value). */
function refusedAsUnknown(section: string, key: string): boolean {
  const lines = [
    '[quota-proxy]',
    'upstream = http://127.0.0.1:8080',
    '[filter:tempauth]',
    'user_admin_admin = secret .reseller_admin',
    '[filter:quota]',
    'quota = {"object_count": {"default": 1}}',
  ];
  const at = lines.indexOf(`[${section}]`);
  if (!lines.slice(at + 1).some((l) => l.startsWith(`${key} =`) && !l.startsWith('['))) lines.splice(at + 1, 0, `${key} = x`);
  try {
    configFromText(lines.join('\n'), 'test.conf');
    return false;
  } catch (error) {
    return /not a key of this section/.test((error as Error).message) && (error as Error).message.includes(`] ${key}:`);
  }
}

describe('docs/configuration.md', () => {
  const reference = read('docs/configuration.md');
  // KNOWN_KEYS is in load.ts; a section's own list (WEBHOOK_KEYS) is in its module.
  const loader = [read('src/config/load.ts'), ...readdirSync(join(ROOT, 'src/config')).filter((f) => f.endsWith('.ts') && f !== 'load.ts').sort().map((f) => read(`src/config/${f}`))].join('\n');

  test('lists exactly the keys of [quota-proxy] and [filter:quota] the loader knows', () => {
    assert.deepEqual(documentedKeys(reference, '`[quota-proxy]`').sort(), keysInLoader(loader, 'PROXY_SECTION').sort());
    // Swift's `use` is accepted (and shown in the examples) but is no setting of the proxy's.
    assert.deepEqual(documentedKeys(reference, '`[filter:quota]`').sort(), keysInLoader(loader, 'QUOTA_SECTION').filter((k) => k !== 'use').sort());
  });

  test('lists exactly the keys of a webhook [notify:<name>] section', () => {
    assert.deepEqual(documentedKeys(reference, '`[notify:<name>]`', 'webhook').sort(), keysInLoader(loader, 'WEBHOOK_KEYS').sort());
  });

  test('every documented key of the proxy\'s sections is one the loader takes', () => {
    for (const [section, title] of [['quota-proxy', '`[quota-proxy]`'], ['filter:quota', '`[filter:quota]`']] as const) {
      for (const key of documentedKeys(reference, title)) assert.equal(refusedAsUnknown(section, key), false, `[${section}] ${key}`);
    }
    assert.equal(refusedAsUnknown('filter:quota', 'cache_timout'), true, 'the probe sees an unknown key');
  });

  test('the table reader sees a key left out or one too many', () => {
    const known = keysInLoader(loader, 'PROXY_SECTION').sort();
    const without = reference.replace(/^\| `upstream_timeout` .*\n/m, '');
    assert.notDeepEqual(documentedKeys(without, '`[quota-proxy]`').sort(), known);
    const extra = reference.replace(/^(\| `bind_port` .*\n)/m, '$1| `bind_prot` | | typo |\n');
    assert.notDeepEqual(documentedKeys(extra, '`[quota-proxy]`').sort(), known);
  });
});
