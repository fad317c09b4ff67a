/**
 * The proxy's reading of a form against Swift's own: 3,000 forms (seeds 1..3000; FORM_CASES changes the count)
 * built from the shapes that make multipart parsers disagree (blank and padded opening lines, delimiters
 * followed by anything, contents that hold pieces of the boundary, folded and odd part headers, parts ending
 * inside their headers, sizes around Swift's 4096- and 65536-byte reads, forms cut short), each read by Swift's
 * formpost code (formpost_reference.py) and by the proxy's parser fed in random pieces. The proxy must never
 * count fewer files or fewer file bytes than Swift stores, and must count exactly as many for ordinary forms.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { SwiftFormParser } from '../../src/quota/formpost.js';
import { random, throughReference } from './differential.js';

const REFERENCE = fileURLToPath(new URL('./formpost_reference.py', import.meta.url));
const CASES = Number(process.env.FORM_CASES ?? 3000);


interface Case {
  boundary: string;
  body: Buffer;
  /** Built only from shapes the proxy reads exactly as Swift does. */
  plain: boolean;
}

export function makeCase(seed: number): Case {
  const rnd = random(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
  const boundary = pick(['BOUND', 'b', '----WebKitFormBoundary7MA4YWxkTrZu0gW', 'x-y_z']);
  let plain = true;
  const odd = <T>(value: T): T => {
    plain = false;
    return value;
  };
  const parts: Buffer[] = [];
  const push = (text: string | Buffer) => parts.push(typeof text === 'string' ? Buffer.from(text, 'latin1') : text);
  push(pick(['', '', '\r\n', '\r\n\r\n']));
  push(seed % 5 >= 2 && rnd() < 0.05 ? odd(`--${boundary}   \r\n`) : `--${boundary}\r\n`);
  const count = Math.floor(rnd() * 7);
  for (let i = 0; i < count; i++) {
    // Two forms in five use only ordinary shapes.
    const shape = seed % 5 < 2 ? rnd() * 0.66 : rnd();
    if (shape < 0.35) push(`Content-Disposition: form-data; name="f${i}"; filename="file${i}.bin"\r\nContent-Type: application/octet-stream\r\n`);
    else if (shape < 0.55) push(`Content-Disposition: form-data; name="field${i}"\r\n`);
    else if (shape < 0.6) push(`Content-Disposition: form-data; name="e${i}"; filename=""\r\n`);
    else if (shape < 0.65) push(`Content-Disposition: attachment; filename="att${i}"\r\n`);
    else if (shape < 0.7) push(odd(`Content-Disposition: form-data;\r\n\tname="fold${i}"; filename="fold${i}"\r\n`));
    else if (shape < 0.74) push(odd(`Content-Disposition: form-data; name="n\u00e9${i}"; filename="\u00e9t\u00e9${i}"\r\n`));
    else if (shape < 0.78) push(odd(`garbage line without colon\r\nContent-Disposition: form-data; name="g${i}"; filename="g${i}"\r\n`));
    else if (shape < 0.82) push(odd(`Content-Disposition: form-data; name="d${i}"\r\ncontent-disposition: form-data; name="d${i}"; filename="dup${i}"\r\n`));
    else if (shape < 0.86) push(`CONTENT-DISPOSITION: form-data; filename=up${i}; name=u${i}\r\n`);
    else if (shape < 0.9) push('');
    else push(odd(`Content-Disposition: form-data; name="h${i}"; filename="h${i}"`));
    // The empty line that ends the headers; sometimes missing (the part ends inside its headers).
    if (seed % 5 < 2 || rnd() < 0.92) push('\r\n');
    else plain = false;
    const size = pick([0, 1, 7, 100, 4090, 4096, 4101, 8192, 65530, 65536, 65541, 70000]);
    const content = Buffer.alloc(size, 97 + (i % 26));
    if (size > 10 && rnd() < 0.3) {
      // Pieces of the boundary inside the content (sometimes, with the content around them, a whole delimiter).
      odd(undefined);
      const piece = Buffer.from(pick([`--${boundary}`, `\r\n--${boundary.slice(0, -1)}`, '\r\n', `\r\n-`, `--${boundary}--`]), 'latin1');
      piece.copy(content, Math.floor(rnd() * (size - piece.length)));
    }
    push(content);
    push(`\r\n--${boundary}`);
    const last = i === count - 1;
    if (last) push(seed % 5 < 2 || rnd() < 0.8 ? pick(['--\r\n', '--', '']) : odd(pick(['--\r\ntrailing junk', '\r\n'])));
    else push(seed % 5 < 2 || rnd() < 0.9 ? '\r\n' : odd(pick(['zz', '-x', '\r\r', 'ab'])));
  }
  return { boundary, body: Buffer.concat(parts), plain };
}

interface Stored {
  valid: boolean;
  files: Array<{ filename: string; size: number }>;
}

function swiftReads(cases: Case[]): Promise<Stored[]> {
  return throughReference<Stored>(REFERENCE, cases.map((c) => ({ boundary: c.boundary, body: c.body.toString('base64') })));
}

function proxyReads(c: Case, seed: number): { files: Array<{ filename: string | undefined; size: number }> } {
  const rnd = random(seed);
  const parser = new SwiftFormParser(Buffer.from(c.boundary, 'utf8'));
  const files: Array<{ filename: string | undefined; size: number }> = [];
  const take = (segments: ReturnType<SwiftFormParser['push']>) => {
    for (const segment of segments) {
      if (segment.type === 'file') files.push({ filename: segment.filename, size: 0 });
      else if (segment.file) files[files.length - 1]!.size += segment.data.length;
    }
  };
  for (let at = 0; at < c.body.length; ) {
    const step = 1 + Math.floor(rnd() * (rnd() < 0.5 ? 16 : 20_000));
    take(parser.push(c.body.subarray(at, at + step)));
    at += step;
  }
  take(parser.end());
  return { files };
}

describe('the proxy reads forms as Swift\'s formpost does', () => {
  test(`${CASES} generated forms: never fewer files or file bytes than Swift stores; exactly as many for ordinary forms`, async () => {
    const cases = Array.from({ length: CASES }, (_, i) => makeCase(i + 1));
    const stored = await swiftReads(cases);
    let compared = 0;
    let plainCases = 0;
    for (let i = 0; i < cases.length; i++) {
      const swift = stored[i]!;
      if (!swift.valid) continue;
      compared++;
      const proxy = proxyReads(cases[i]!, 1000 + i);
      const bytes = (files: Array<{ size: number }>) => files.reduce((sum, f) => sum + f.size, 0);
      const what = `case ${i + 1}: Swift ${JSON.stringify(swift.files.map((f) => [f.filename, f.size]))}, proxy ${JSON.stringify(proxy.files.map((f) => [f.filename, f.size]))}`;
      assert.ok(proxy.files.length >= swift.files.length, what);
      assert.ok(bytes(proxy.files) >= bytes(swift.files), what);
      if (cases[i]!.plain) {
        plainCases++;
        assert.deepEqual(proxy.files.map((f) => [f.filename, f.size]), swift.files.map((f) => [f.filename, f.size]), what);
      }
    }
    assert.ok(compared > CASES / 2, `only ${compared} forms were valid for Swift`);
    assert.ok(plainCases > CASES / 5, `only ${plainCases} ordinary forms`);
  });
});
