/**
 * The shape of src/ (docs/design.md, "Source layout"), measured with the TypeScript compiler API rather than by
 * eye: no file over 450 lines, at most three functions over 60 lines, and Fastify only at the HTTP edge.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const root = fileURLToPath(new URL('../..', import.meta.url));
const MAX_FILE_LINES = 450;
const MAX_FUNCTION_LINES = 60;
/** Functions allowed past MAX_FUNCTION_LINES: readers that follow Python code line for line, kept whole to be compared. */
const MAX_LONG_FUNCTIONS = 3;
/** Where Fastify may be imported: the HTTP edge. */
const EDGE = [/^src\/http\//, /^src\/app\.ts$/, /^src\/server\.ts$/, /^src\/main\.ts$/, /^src\/services\.ts$/, /^src\/proxy\/forward\.ts$/];

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') ? [path] : [];
  });
}

interface Measured {
  readonly file: string;
  readonly lines: number;
  readonly longFunctions: string[];
  readonly importsFastify: boolean;
}

function measure(path: string): Measured {
  const text = readFileSync(path, 'utf8');
  const file = relative(root, path);
  const source = ts.createSourceFile(path, text, ts.ScriptTarget.ES2022, true);
  const lineOf = (position: number) => source.getLineAndCharacterOfPosition(position).line;
  const longFunctions: string[] = [];
  let importsFastify = false;
  const visit = (node: ts.Node): void => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      const lines = lineOf(node.getEnd()) - lineOf(node.getStart()) + 1;
      const name = 'name' in node && node.name ? node.name.getText() : '<anonymous>';
      if (lines > MAX_FUNCTION_LINES) longFunctions.push(`${file}:${lineOf(node.getStart()) + 1} ${name} (${lines} lines)`);
    }
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      if (/^(fastify|@fastify\/.*)$/.test(node.moduleSpecifier.text)) importsFastify = true;
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return { file, lines: text.split('\n').length - (text.endsWith('\n') ? 1 : 0), longFunctions, importsFastify };
}

const measured = sources(join(root, 'src')).map(measure);

test('no file in src/ is over 450 lines', () => {
  const large = measured.filter((m) => m.lines > MAX_FILE_LINES).map((m) => `${m.file} (${m.lines} lines)`);
  assert.deepEqual(large, []);
});

test('at most three functions in src/ are over 60 lines', () => {
  const long = measured.flatMap((m) => m.longFunctions);
  assert.ok(long.length <= MAX_LONG_FUNCTIONS, `${long.length} functions over ${MAX_FUNCTION_LINES} lines:\n${long.join('\n')}`);
});

test('only the HTTP edge imports Fastify', () => {
  const outside = measured.filter((m) => m.importsFastify && !EDGE.some((edge) => edge.test(m.file))).map((m) => m.file);
  assert.deepEqual(outside, []);
  // The measure finds imports where there are some: the edge does import it.
  assert.ok(measured.some((m) => m.file === 'src/app.ts' && m.importsFastify));
});
