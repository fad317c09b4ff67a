import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mendRequestLine, PLACEHOLDER_METHOD, RequestStreamRewriter } from '../../src/proxy/request-lines.js';

const HEADER = 'x-secret-method';
const bytes = (text: string) => Buffer.from(text, 'latin1');
const utf8 = (text: string) => Buffer.from(text, 'utf8');

function rewriteAll(input: Buffer, pieceSize: number): string {
  const rewriter = new RequestStreamRewriter(HEADER);
  const out: Buffer[] = [];
  for (let at = 0; at < input.length; at += pieceSize) out.push(...rewriter.push(input.subarray(at, at + pieceSize)));
  return Buffer.concat(out).toString('latin1');
}

describe('mendRequestLine', () => {
  test('lines Node parses are left alone', () => {
    assert.equal(mendRequestLine(bytes('GET /v1/AUTH_a/c%C3%A9 HTTP/1.1'), HEADER), undefined);
    assert.equal(mendRequestLine(bytes('COPY /v1/AUTH_a/c/o HTTP/1.1'), HEADER), undefined);
  });
  test('raw bytes >= 0x80 in the target are percent-encoded (UTF-8 or not), the rest kept byte for byte', () => {
    assert.equal(mendRequestLine(Buffer.concat([bytes('PUT /v1/AUTH_a/'), utf8('é?x=ü'), bytes(' HTTP/1.1')]), HEADER)!.toString('latin1'), 'PUT /v1/AUTH_a/%C3%A9?x=%C3%BC HTTP/1.1');
    assert.equal(mendRequestLine(Buffer.concat([bytes('GET /v1/'), Buffer.from([0xff, 0xfe]), bytes('/%41 HTTP/1.0')]), HEADER)!.toString('latin1'), 'GET /v1/%FF%FE/%41 HTTP/1.0');
  });
  test('a method Node does not know travels in the header under the placeholder', () => {
    assert.equal(mendRequestLine(bytes('LICK /v1/AUTH_a/c/o HTTP/1.1'), HEADER)!.toString('latin1'), `${PLACEHOLDER_METHOD} /v1/AUTH_a/c/o HTTP/1.1\r\n${HEADER}: LICK`);
    assert.equal(mendRequestLine(bytes('get / HTTP/1.1'), HEADER)!.toString('latin1'), `${PLACEHOLDER_METHOD} / HTTP/1.1\r\n${HEADER}: get`);
  });
  test('what is no request line is not touched', () => {
    assert.equal(mendRequestLine(bytes('GET'), HEADER), undefined);
    assert.equal(mendRequestLine(bytes('G(T / HTTP/1.1'), HEADER), undefined);
    assert.equal(mendRequestLine(Buffer.concat([bytes('G'), Buffer.from([0xe9]), bytes('T / HTTP/1.1')]), HEADER), undefined);
  });
});

describe('RequestStreamRewriter: only request heads change, bodies pass byte for byte, whatever the pieces', () => {
  const body = Buffer.concat([utf8('é LICK /x HTTP/1.1\r\n\r\n'), Buffer.from([0x80, 0xff])]); // looks like a request line: it is not one
  const stream = Buffer.concat([
    utf8('PUT /v1/é HTTP/1.1\r\nHost: h\r\nContent-Length: ' + body.length + '\r\n\r\n'),
    body,
    bytes('LICK /v1/a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n'),
    bytes('5;ext=1\r\n'),
    Buffer.concat([utf8('GET /'), bytes('\r\n')]).subarray(0, 5),
    bytes('\r\n0\r\nX-Trailer: é\r\n\r\n'),
    bytes('\r\nGET /plain HTTP/1.1\r\n\r\n'),
    utf8('DELETE /v1/ü HTTP/1.1\r\nContent-Length: 0\r\n\r\n'),
  ]);
  const expected = Buffer.concat([
    bytes('PUT /v1/%C3%A9 HTTP/1.1\r\nHost: h\r\nContent-Length: ' + body.length + '\r\n\r\n'),
    body,
    bytes(`${PLACEHOLDER_METHOD} /v1/a HTTP/1.1\r\n${HEADER}: LICK\r\nTransfer-Encoding: chunked\r\n\r\n`),
    bytes('5;ext=1\r\n'),
    Buffer.concat([utf8('GET /'), bytes('\r\n')]).subarray(0, 5),
    bytes('\r\n0\r\nX-Trailer: é\r\n\r\n'),
    bytes('\r\nGET /plain HTTP/1.1\r\n\r\n'),
    bytes('DELETE /v1/%C3%BC HTTP/1.1\r\nContent-Length: 0\r\n\r\n'),
  ]).toString('latin1');
  for (const pieceSize of [1, 2, 3, 7, 64, 100_000]) {
    test(`in pieces of ${pieceSize} bytes`, () => assert.equal(rewriteAll(stream, pieceSize), expected));
  }
  test('an upgrade or framing llhttp refuses: everything after passes unchanged', () => {
    const upgrade = bytes('GET / HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n');
    const after = Buffer.concat([utf8('LICK /é HTTP/1.1\r\n\r\n')]);
    assert.equal(rewriteAll(Buffer.concat([upgrade, after]), 5), Buffer.concat([upgrade, after]).toString('latin1'));
    const both = bytes('PUT / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n');
    assert.equal(rewriteAll(Buffer.concat([both, after]), 4), Buffer.concat([both, after]).toString('latin1'));
  });
});
