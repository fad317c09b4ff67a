import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { ByteReader, TarReader, TarRefusal, parseHeader, parsePaxRecords, readNumber, type TarMember } from '../../src/quota/tar-reader.js';
import { END_OF_ARCHIVE, fileHeader, padding } from '../../src/quota/tar-writer.js';
import { fileOf } from '../../src/quota/archive.js';
import { END, base256, file, header, pax, padded, paxRecord } from '../adversarial/tar-blocks.js';

const latin = (text: string) => Buffer.from(text, 'latin1');

/** Every member of `tar` with its data, or the refusal's message. */
async function read(tar: Buffer): Promise<Array<{ name: string; regular: boolean; data: string }> | string> {
  const reader = new TarReader(new ByteReader(Readable.from([tar])[Symbol.asyncIterator]() as AsyncIterator<Buffer>));
  const members: Array<{ name: string; regular: boolean; data: string }> = [];
  try {
    for (let member = await reader.next(); member; member = await reader.next()) {
      const chunks: Buffer[] = [];
      for await (const piece of reader.data()) chunks.push(piece);
      members.push({ name: member.name.toString(), regular: member.regular, data: Buffer.concat(chunks).toString() });
    }
  } catch (error) {
    if (error instanceof TarRefusal) return error.message;
    throw error;
  }
  return members;
}

describe('number fields, as tarfile reads them where that is certain', () => {
  test('octal between spaces, up to a NUL; GNU base-256', () => {
    assert.equal(readNumber(latin('0000644\0')), 0o644);
    assert.equal(readNumber(latin('  12 \0zz')), 0o12);
    assert.equal(readNumber(latin('\0\0\0\0')), 0);
    assert.equal(readNumber(base256(10n * 2n ** 30n, 12)), 10 * 2 ** 30);
    assert.equal(readNumber(Buffer.from([0xff, 0xff, 0xff, 0xff])), -1);
  });
  test('every other spelling (which Python may read another way) refused', () => {
    for (const odd of ['+12', '0o12', '1_2', '12\t', '8', '1 2', '\u00e9']) assert.throws(() => readNumber(latin(`${odd}\0`)), TarRefusal, odd);
  });
});

describe('header blocks', () => {
  test('checksums: unsigned or signed; anything else is no header; zeros end the archive', () => {
    assert.equal(parseHeader(Buffer.alloc(512)), 'end');
    assert.notEqual(typeof parseHeader(header({ name: latin('s/\u00e9\u00ff'), signedChecksum: true })), 'string');
    assert.equal(parseHeader(header({ name: 'a', checksumDelta: 1 })), 'invalid');
  });
  test('the ustar prefix whatever the magic; a type NUL ending in / is a directory; sparse refused', () => {
    assert.deepEqual(parseHeader(header({ name: 'n', prefix: 'p', magic: 'gnu' })), { type: '0', name: Buffer.from('p/n'), size: 0 });
    assert.equal((parseHeader(header({ name: 'd/', type: '\0', size: 10 })) as { type: string }).type, '5');
    assert.throws(() => parseHeader(header({ name: 's', type: 'S' })), TarRefusal);
  });
});

describe('pax records: exactly `<length> <key>=<value>\\n`, NUL padding', () => {
  const none = Buffer.alloc(0);
  test('read in order', () => {
    assert.deepEqual(parsePaxRecords(Buffer.concat([paxRecord('path', 'a/b'), paxRecord('x', 'y=z\n')]), Buffer.alloc(3)), [['path', 'a/b'], ['x', 'y=z\n']]);
  });
  test('anything else refused', () => {
    for (const records of ['012 path=ab\n', '11 pathab/c\n', '12 path=a/bc', '99 path=a/b\n', '+9 path=a\n', '25 hdrcharset=BINARY\n', '8 =abc\n']) {
      assert.throws(() => parsePaxRecords(latin(records), none), TarRefusal, JSON.stringify(records));
    }
    assert.throws(() => parsePaxRecords(paxRecord('path', latin('a/\u00ff')), none), TarRefusal);
    assert.throws(() => parsePaxRecords(paxRecord('path', 'a'), latin('x')), TarRefusal);
  });
});

describe('members, as tarfile frames them', () => {
  test('links and directories have no data whatever their size; unknown types are skipped by their size', async () => {
    const hidden = file('h/x', 'hidden');
    const tar = Buffer.concat([header({ name: 'l', type: '2', size: hidden.length }), hidden, header({ name: 'v', type: 'V', size: 3 }), padded('vvv'), file('f/y', 'yy'), END]);
    assert.deepEqual(await read(tar), [
      { name: 'l', regular: false, data: '' },
      { name: 'h/x', regular: true, data: 'hidden' },
      { name: 'v', regular: false, data: 'vvv' },
      { name: 'f/y', regular: true, data: 'yy' },
    ]);
  });
  test('pax path and size (trailing slashes dropped), GNU long names, global records before every member', async () => {
    const tar = Buffer.concat([
      pax([['comment', 'c'], ['SCHILY.xattr.user.meta.g', '1']], 'g'),
      pax([['path', 'p/long//'], ['size', '3']]),
      header({ name: 'ignored', size: 1 }),
      padded('abc'),
      header({ name: '././@LongLink', type: 'K', size: 2 }),
      padded('t\0'),
      header({ name: '././@LongLink', type: 'L', size: 4 }),
      padded('g/n\0'),
      file('short', 'z'),
      END,
    ]);
    assert.deepEqual(await read(tar), [
      { name: 'p/long', regular: true, data: 'abc' },
      { name: 'g/n', regular: true, data: 'z' },
    ]);
  });
  test('extended headers tarfile resolves by nesting, global path or size, GNU sparse records: refused', async () => {
    const l = (name: string) => Buffer.concat([header({ name: '././@LongLink', type: 'L', size: name.length + 1 }), padded(`${name}\0`)]);
    for (const [what, tar] of [
      ['x then L', Buffer.concat([pax([['path', 'a/b']]), l('c/d'), file('e', 'x'), END])],
      ['L then L', Buffer.concat([l('a/b'), l('c/d'), file('e', 'x'), END])],
      ['x then g', Buffer.concat([pax([['path', 'a/b']]), pax([['comment', 'c']], 'g'), file('e', 'x'), END])],
      ['global path', Buffer.concat([pax([['path', 'a/b']], 'g'), file('e/f', 'x'), END])],
      ['sparse', Buffer.concat([pax([['GNU.sparse.name', 'a/b']]), file('e/f', 'x'), END])],
      ['x at the end', Buffer.concat([file('a/b', 'x'), pax([['path', 'a/c']]), END])],
      ['no NUL in a long name', Buffer.concat([header({ name: '././@LongLink', type: 'L', size: 3 }), padded('a/b', latin('cdef')), file('e', 'x'), END])],
    ] as const) {
      assert.equal(typeof (await read(tar)), 'string', what);
    }
  });
  test('global records are held for the rest of the archive: up to 1 MiB in all (400 headers of 1 MB held 406 MB before)', async () => {
    const value = 'v'.repeat(300_000);
    const globals = (keys: string[]) => Buffer.concat([...keys.map((key) => pax([[key, value]], 'g')), file('c/o', 'x'), END]);
    assert.deepEqual(await read(globals(['comment', 'comment', 'comment', 'comment'])), [{ name: 'c/o', regular: true, data: 'x' }], 'a key replaced counts once');
    assert.deepEqual(await read(globals(['a', 'b', 'c'])), [{ name: 'c/o', regular: true, data: 'x' }]);
    assert.equal(await read(globals(['a', 'b', 'c', 'd'])), 'global pax records over 1 MiB in all');
  });
});

describe('the file bulk makes of a member, and the name Swift is sent', () => {
  const member = (name: Buffer | string, pax: Array<[string, string]> = []): TarMember => ({ regular: true, name: Buffer.from(name), size: 1, pax: new Map(pax) });
  test('under ./ and the path below the base; only bulk metadata, in order', () => {
    const metadata: Array<[string, string]> = [['LIBARCHIVE.xattr.user.meta.b', '2'], ['SCHILY.xattr.user.mime_type', 't/t'], ['comment', 'no'], ['SCHILY.xattr.security.x', 'no']];
    assert.deepEqual(fileOf(member('./../x', metadata), 'c/p'), {
      container: 'c',
      object: 'p/../x',
      size: 1,
      metadata: metadata.slice(0, 2),
      sentName: './../x',
    });
    assert.equal(fileOf(member(Buffer.from([0x2f, 0xff])), ''), undefined); // base level, ignored whatever its bytes
  });
  test('a leading U+FEFF is part of the name, as Python decodes it', () => {
    const named = fileOf(member('\ufeffc/o'), '');
    assert.deepEqual([named?.container, named?.object, named?.sentName], ['\ufeffc', 'o', './\ufeffc/o']);
  });
  test('names bulk would not store as counted: refused', () => {
    for (const name of [Buffer.from([0x61, 0x2f, 0xff]), 'a/b\0c', 'c/', 'c/d/', './']) {
      assert.throws(() => fileOf(member(name), name === './' ? 'c' : ''), TarRefusal, JSON.stringify(name.toString()));
    }
  });
});

describe('the tar the proxy writes', () => {
  test('plain names in the ustar field, others in a pax path; sizes from 8 GiB in base-256; read back the same', async () => {
    const big = 10 * 2 ** 30;
    const parsed = parseHeader(fileHeader('./c', big, []).subarray(0, 512));
    assert.deepEqual(parsed, { type: '0', name: Buffer.from('./c'), size: big });
    const names = ['./' + 'a'.repeat(98), './' + 'a'.repeat(99), './\u00e9t\u00e9', './a\nb', './x=y'];
    const tar = Buffer.concat([...names.map((name) => Buffer.concat([fileHeader(name, 2, [['SCHILY.xattr.user.meta.k', 'v\n=']]), Buffer.from('zz'), padding(2)])), END_OF_ARCHIVE]);
    assert.deepEqual(await read(tar), names.map((name) => ({ name, regular: true, data: 'zz' })));
    assert.equal(fileHeader(names[0]!, 2, []).length, 512);
    assert.equal(fileHeader(names[1]!, 2, []).length, 1536);
  });
});
