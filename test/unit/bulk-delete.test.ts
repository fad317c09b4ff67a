import { test } from 'node:test';
import assert from 'node:assert/strict';
import { containerOfLine, createDeleteListChecker, DeleteListRefused } from '../../src/quota/bulk-delete.js';

test('a delete list line names its container as bulk reads it: stripped, percent-decoded, leading slashes off', () => {
  const cases: Array<[string, string | undefined]> = [
    ['c/o', 'c'],
    ['  /c/o\r', 'c'],
    ['%2F%2Fc%2Fo', 'c'],
    ['c%2', 'c%2'],
    ['%E2%98%83/x', '\u2603'],
    ['container-only', 'container-only'],
    ['', undefined],
    ['   ', undefined],
    // bytes.strip() keeps a 0xA0 byte (not UTF-8: no container has that name).
    ['\u00a0c/o', '\ufffdc'],
  ];
  for (const [line, container] of cases) assert.equal(containerOfLine(Buffer.from(line, 'latin1')), container, JSON.stringify(line));
});

test('the list goes on line by line once checked; an unfinished line waits for its end; a refused one cuts the list', async () => {
  const asked: string[] = [];
  const passed: string[] = [];
  const checker = createDeleteListChecker(async (container) => {
    asked.push(container);
    return container === 'bad' ? 'refused' : undefined;
  });
  checker.on('data', (chunk: Buffer) => passed.push(chunk.toString()));
  const failed = new Promise<Error>((resolve) => checker.on('error', resolve));
  checker.write('a/1\nb/');
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(passed, ['a/1\n']);
  checker.write('2\nbad/3');
  checker.end();
  const error = await failed;
  assert.ok(error instanceof DeleteListRefused);
  assert.deepEqual(asked, ['a', 'b', 'bad']);
  assert.deepEqual(passed, ['a/1\n', 'b/2\n']);
});
