import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { filterArchive, memberDestination, type ArchiveFile } from '../../src/quota/archive.js';
import { END, file, header, pax } from '../adversarial/tar-blocks.js';
import { formatBulkAnswer, parseBulkAnswer, quoteLikePython, withRefusal } from '../../src/quota/bulk-response.js';

async function archive(entries: Array<{ name: string; body?: string; type?: 'file' | 'directory' | 'symlink'; linkname?: string }>): Promise<Buffer> {
  const pack = tar.pack();
  for (const entry of entries) {
    if (entry.type && entry.type !== 'file') pack.entry({ name: entry.name, type: entry.type, ...(entry.linkname ? { linkname: entry.linkname } : {}) });
    else pack.entry({ name: entry.name }, entry.body ?? '');
  }
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function members(tarBytes: Buffer): Promise<Array<[string, string]>> {
  const extract = tar.extract();
  const out: Array<[string, string]> = [];
  extract.on('entry', (header, stream, next) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c) => chunks.push(c as Buffer));
    stream.on('end', () => {
      out.push([header.name, Buffer.concat(chunks).toString()]);
      next();
    });
  });
  Readable.from([tarBytes]).pipe(extract);
  await new Promise<void>((resolve, reject) => extract.on('finish', () => resolve()).on('error', reject));
  return out;
}

async function filtered(source: Buffer, options: { gzip?: boolean; base: string; stopAt?: string; pieces?: number }): Promise<{ files: ArchiveFile[]; sent: Buffer; broken?: Error }> {
  const files: ArchiveFile[] = [];
  let broken: Error | undefined;
  const piece = options.pieces ?? source.length;
  const chunks: Buffer[] = [];
  for (let at = 0; at < source.length; at += piece) chunks.push(source.subarray(at, at + piece));
  const out = filterArchive(Readable.from(chunks), {
    gzip: options.gzip ?? false,
    base: options.base,
    file: async (file) => {
      files.push(file);
      return file.object === options.stopAt ? 'stop' : 'send';
    },
    broken: (error) => (broken = error),
  });
  const sent: Buffer[] = [];
  for await (const chunk of out) sent.push(chunk as Buffer);
  return { files, sent: Buffer.concat(sent), ...(broken ? { broken } : {}) };
}

describe('memberDestination: where bulk stores an archive member', () => {
  test('in a container (and under a prefix), ./ and / dropped', () => {
    assert.deepEqual(memberDestination('./a/b.txt', 'c'), { container: 'c', object: 'a/b.txt', relative: 'a/b.txt' });
    assert.deepEqual(memberDestination('//x', 'c/pre/'), { container: 'c', object: 'pre/x', relative: 'x' });
    // One './' only, then slashes: what is left is the name below the base.
    assert.deepEqual(memberDestination('././/x', 'c'), { container: 'c', object: './/x', relative: './/x' });
  });
  test('at the account: the first segment is the container; base-level files are ignored', () => {
    assert.deepEqual(memberDestination('c/o', ''), { container: 'c', object: 'o', relative: 'c/o' });
    assert.equal(memberDestination('lonely', ''), undefined);
  });
});

describe('filterArchive: Swift gets a plain tar of the files let through', () => {
  const entries = [
    { name: 'dir', type: 'directory' as const },
    { name: 'dir/a', body: 'aaa' },
    { name: 'link', type: 'symlink' as const, linkname: 'dir/a' },
    { name: './dir/b', body: 'bb' },
    { name: 'dir/c', body: 'c' },
  ];
  for (const [name, gzip, pieces] of [['tar', false, undefined], ['tar.gz', true, undefined], ['tar in 7-byte pieces', false, 7]] as const) {
    test(`${name}: every regular file decided, in order, sent with its bytes; other members left out`, async () => {
      const source = await archive(entries);
      const { files, sent } = await filtered(gzip ? gzipSync(source) : source, { gzip, base: 'cont', ...(pieces ? { pieces } : {}) });
      assert.deepEqual(files, [
        { container: 'cont', object: 'dir/a', size: 3, metadata: [] },
        { container: 'cont', object: 'dir/b', size: 2, metadata: [] },
        { container: 'cont', object: 'dir/c', size: 1, metadata: [] },
      ]);
      // Each under './' and its name below the base: bulk drops the './' and nothing else.
      assert.deepEqual(await members(sent), [['./dir/a', 'aaa'], ['./dir/b', 'bb'], ['./dir/c', 'c']]);
    });
  }
  test('stopped at a file: the tar Swift gets ends before it, well formed', async () => {
    const { files, sent } = await filtered(await archive(entries), { base: 'cont', stopAt: 'dir/b' });
    assert.equal(files.length, 2);
    assert.deepEqual(await members(sent), [['./dir/a', 'aaa']]);
  });
  test('an archive that cannot be read ends in an extended header and a block no tar reader takes', async () => {
    const { sent, broken } = await filtered(Buffer.from('not a tar at all'.repeat(64)), { base: 'cont' });
    assert.ok(broken);
    assert.equal(sent.length, 1024);
    assert.equal(String.fromCharCode(sent[156]!), 'x');
    assert.equal(sent.subarray(512).toString(), 'x'.repeat(512));
    const gz = await filtered(Buffer.from('not gzip'), { gzip: true, base: 'cont' });
    assert.ok(gz.broken);
  });
  test('refused after a file: the file, then what tarfile refuses; cut inside a file: Swift gets it short; empty: nothing', async () => {
    const first = file('d/a', 'aaa');
    const refused = await filtered(Buffer.concat([first, pax([['GNU.sparse.name', 'x/y']]), file('d/b', 'b'), END]), { base: 'cont' });
    assert.match(refused.broken?.message ?? '', /sparse/);
    assert.deepEqual(refused.files.map((f) => f.object), ['d/a']);
    assert.equal(refused.sent.length, 1024 + 1024);
    assert.equal(refused.sent.subarray(1536).toString(), 'x'.repeat(512));
    const cut = await filtered(Buffer.concat([first, header({ name: 'd/b', size: 5000 }), Buffer.alloc(700, 'b')]), { base: 'cont' });
    assert.ok(cut.broken);
    assert.equal(cut.sent.length, 1024 + 512 + 700);
    assert.deepEqual((await filtered(Buffer.alloc(0), { base: 'cont' })).sent.length, 0);
  });
});

describe("bulk's answer, with a refusal added", () => {
  const result = { status: '201 Created', body: '', created: 2, errors: [['c/x', '412 Precondition Failed']] as Array<[string, string]> };
  for (const type of ['text/plain', 'application/json', 'application/xml']) {
    test(`${type}: read back as written`, () => {
      assert.deepEqual(parseBulkAnswer(`   \r\n\r\n${formatBulkAnswer(result, type)}`, type), result);
    });
  }
  test('json as Python writes it', () => {
    assert.equal(formatBulkAnswer({ ...result, body: 'é' }, 'application/json'), '{"Response Status": "201 Created", "Response Body": "\\u00e9", "Number Files Created": 2, "Errors": [["c/x", "412 Precondition Failed"]]}');
  });
  test('the refused file is listed, quoted as bulk quotes names, and the answer is a failure', () => {
    const refused = withRefusal(result, 'c/a b(1)', '413 Request Entity Too Large', 'Upload exceeds quota.');
    assert.equal(refused.status, '400 Bad Request');
    assert.deepEqual(refused.errors.at(-1), ['c/a%20b%281%29', '413 Request Entity Too Large']);
    assert.equal(quoteLikePython('é/~_.-'), '%C3%A9/~_.-');
  });
});
