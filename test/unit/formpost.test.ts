import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { createFormLimiter, formBoundary, parseContentDisposition, SwiftFormParser, type FormSegment } from '../../src/quota/formpost.js';

const B = 'BOUND';

/** What the parser makes of a form, fed in pieces of `step` bytes: files (with their content) and fields. */
function read(form: string | Buffer, step = 7): { files: Array<{ filename: string | undefined; content: string; attributes: Record<string, string> }>; passedThrough: string } {
  const parser = new SwiftFormParser(Buffer.from(B));
  const bytes = Buffer.isBuffer(form) ? form : Buffer.from(form, 'latin1');
  const segments: FormSegment[] = [];
  for (let at = 0; at < bytes.length; at += step) segments.push(...parser.push(bytes.subarray(at, at + step)));
  segments.push(...parser.end());
  const files: Array<{ filename: string | undefined; content: string; attributes: Record<string, string> }> = [];
  let passed = '';
  for (const segment of segments) {
    if (segment.type === 'file') files.push({ filename: segment.filename, content: '', attributes: Object.fromEntries(segment.attributes) });
    else {
      passed += segment.data.toString('latin1');
      if (segment.file) files[files.length - 1]!.content += segment.data.toString('latin1');
    }
  }
  return { files, passedThrough: passed };
}

const field = (name: string, value: string) => `Content-Disposition: form-data; name="${name}"\r\n\r\n${value}`;
const file = (name: string, filename: string, content: string) => `Content-Disposition: form-data; name="${name}"; filename="${filename}"\r\nContent-Type: text/plain\r\n\r\n${content}`;
const form = (...parts: string[]) => `--${B}\r\n${parts.join(`\r\n--${B}\r\n`)}\r\n--${B}--\r\n`;

describe('SwiftFormParser: parts as Swift\'s formpost reads them', () => {
  test('fields before a file are its attributes; files carry their content; every byte passes through once', () => {
    const body = form(field('expires', '123'), field('Signature', 'abc'), file('f', 'a.txt', 'hello'), file('g', 'b.txt', 'world!'));
    const { files, passedThrough } = read(body);
    assert.deepEqual(files, [
      { filename: 'a.txt', content: 'hello', attributes: { expires: '123', signature: 'abc' } },
      { filename: 'b.txt', content: 'world!', attributes: { expires: '123', signature: 'abc' } },
    ]);
    assert.equal(passedThrough, body);
  });

  test('the same in one piece and byte by byte', () => {
    const body = form(field('expires', '1'), file('f', 'a', 'x'.repeat(100)));
    assert.deepEqual(read(body, body.length).files, read(body, 1).files);
  });

  test('blank lines before the opening boundary are skipped; any other preamble makes the form invalid (nothing stored)', () => {
    assert.equal(read(`\r\n\r\n${form(file('f', 'a', 'x'))}`).files.length, 1);
    const parser = new SwiftFormParser(Buffer.from(B));
    parser.push(Buffer.from(`preamble\r\n${form(file('f', 'a', 'x'))}`));
    parser.end();
    assert.equal(parser.valid, false);
  });

  test('an opening line padded past its length: the padding starts the first part, which then has no headers', () => {
    // readline(len("--BOUND") + 2) reads "--BOUND  " and strips it; "\r\n" then begins a part without headers.
    const { files } = read(`--${B}  \r\n${field('expires', '1')}\r\n--${B}\r\n${file('f', 'a', 'x')}\r\n--${B}--`);
    assert.deepEqual(files.map((f) => [f.filename, f.attributes]), [['a', {}]]);
  });

  test('a delimiter ends a part wherever it stands: the two bytes after it are skipped, whatever they are', () => {
    const body = `--${B}\r\n${file('f', 'a', '1')}\r\n--${B}zz${file('g', 'b', '2')}\r\n--${B}XY${file('h', 'c', '3')}\r\n--${B}--`;
    assert.deepEqual(read(body).files.map((f) => [f.filename, f.content]), [['a', '1'], ['b', '2'], ['c', '3']]);
  });

  test('"--" after a delimiter ends the form: nothing after it is read', () => {
    const body = `${form(file('f', 'a', '1'))}--${B}\r\n${file('g', 'late', '2')}\r\n--${B}--`;
    assert.deepEqual(read(body).files.map((f) => f.filename), ['a']);
  });

  test('a form that ends without its closing delimiter ends its last part there', () => {
    assert.deepEqual(read(`--${B}\r\n${file('f', 'a', 'partial')}`).files.map((f) => [f.filename, f.content]), [['a', 'partial']]);
  });

  test('a content that contains the boundary without the preceding CRLF is content', () => {
    assert.deepEqual(read(form(file('f', 'a', `x--${B}y`))).files.map((f) => f.content), [`x--${B}y`]);
  });

  test('a field takes its first 4096 bytes, trailing "\\r", "\\n" and "-" stripped', () => {
    const { files } = read(form(field('redirect', `${'r'.repeat(5000)}`), field('x', 'v--\r\n'), file('f', 'a', '1')));
    assert.equal(files[0]!.attributes.redirect!.length, 4096);
    assert.equal(files[0]!.attributes.x, 'v');
  });

  test('Content-Disposition other than form-data, or without a filename, is a field', () => {
    const parts = ['Content-Disposition: attachment; name="a"; filename="x"\r\n\r\n1', 'Content-Disposition: form-data; name="b"; filename=""\r\n\r\n2', 'Content-Disposition: form-data; name="c"\r\n\r\n3'];
    const { files } = read(form(...parts, file('f', 'real', '4')));
    assert.deepEqual(files.map((f) => [f.filename, f.attributes]), [['real', { a: '1', b: '2', c: '3' }]]);
  });

  test('headers the proxy cannot be sure of (folded, non-ASCII, not a header, twice) make the part a file: counted, never missed', () => {
    const odd = [
      'Content-Disposition: form-data;\r\n name="a"\r\n\r\n1',
      'Content-Disposition: form-data; name="b\u00e9"\r\n\r\n2',
      'no header here\r\nContent-Disposition: form-data; name="c"\r\n\r\n3',
      'Content-Disposition: form-data; name="d"\r\ncontent-disposition: form-data; name="e"\r\n\r\n4',
    ];
    const { files } = read(form(...odd));
    assert.equal(files.length, 4);
    assert.deepEqual(files.map((f) => f.filename), [undefined, undefined, undefined, undefined]);
  });

  test('a part without headers (a delimiter right after the last) is a field without a name', () => {
    assert.equal(read(`--${B}\r\n\r\n--${B}\r\n${file('f', 'a', '1')}\r\n--${B}--`).files.length, 1);
  });
});

describe('formBoundary and parseContentDisposition, as Swift parses them', () => {
  test('only multipart/form-data with a boundary is a form; the value is compared exactly', () => {
    assert.deepEqual(formBoundary('multipart/form-data; boundary=abc'), Buffer.from('abc'));
    assert.deepEqual(formBoundary('multipart/form-data; boundary="a;b"'), Buffer.from('a;b'));
    assert.deepEqual(formBoundary('multipart/form-data; charset=x; boundary=abc'), Buffer.from('abc'));
    assert.equal(formBoundary('Multipart/Form-Data; boundary=abc'), undefined);
    assert.equal(formBoundary('multipart/form-data'), undefined);
    assert.equal(formBoundary('multipart/mixed; boundary=abc'), undefined);
    assert.equal(formBoundary(undefined), undefined);
  });

  test('attribute names are Python word characters, so a non-ASCII name does not stop the boundary being read', () => {
    assert.deepEqual(formBoundary('multipart/form-data; \u00e9t\u00e9=1; boundary=abc'), Buffer.from('abc'));
  });

  test('a latin-1 boundary is looked for in its UTF-8 bytes, as Python encodes it', () => {
    assert.deepEqual(formBoundary('multipart/form-data; boundary=\u00e9'), Buffer.from('\u00e9', 'utf8'));
  });

  test('parseContentDisposition: value and attributes, quotes stripped', () => {
    assert.deepEqual(parseContentDisposition('form-data; name="f"; filename="a b.txt"'), { value: 'form-data', attributes: new Map([['name', 'f'], ['filename', 'a b.txt']]) });
    assert.deepEqual(parseContentDisposition('form-data '), { value: 'form-data ', attributes: new Map() });
  });
});

describe('createFormLimiter', () => {
  async function run(body: string, allowFiles: number, allowBytes: number) {
    let files = 0;
    let bytes = 0;
    const cuts: Array<{ refusal: string; partial: unknown }> = [];
    const limiter = createFormLimiter<string>(Buffer.from(B), {
      file: async () => (++files > allowFiles ? 'files' : undefined),
      fileBytes: async (n) => ((bytes += n) > allowBytes ? 'bytes' : undefined),
      cut: (refusal, partial) => cuts.push({ refusal, partial }),
    });
    const out: Buffer[] = [];
    limiter.on('data', (chunk: Buffer) => out.push(chunk));
    const ended = new Promise((resolve) => limiter.on('end', resolve));
    Readable.from([Buffer.from(body)]).pipe(limiter);
    await ended;
    return { forwarded: Buffer.concat(out).toString('latin1'), cuts };
  }

  test('a form that fits passes whole', async () => {
    const body = form(file('f', 'a', '12345'));
    assert.deepEqual(await run(body, 5, 100), { forwarded: body, cuts: [] });
  });

  test('a file past the count is cut before its headers: the form ends right after the previous part', async () => {
    const body = form(file('f', 'a', '1'), file('g', 'b', '2'));
    const { forwarded, cuts } = await run(body, 1, 100);
    assert.equal(forwarded, `--${B}\r\n${file('f', 'a', '1')}\r\n--${B}\r\n`);
    assert.deepEqual(cuts, [{ refusal: 'files', partial: undefined }]);
  });

  test('bytes past the limit cut inside the file, naming it', async () => {
    const { forwarded, cuts } = await run(form(file('f', 'big.bin', 'x'.repeat(50))), 5, 10);
    assert.ok(!forwarded.includes('x'.repeat(11)));
    assert.deepEqual(cuts, [{ refusal: 'bytes', partial: { filename: 'big.bin' } }]);
  });
});
