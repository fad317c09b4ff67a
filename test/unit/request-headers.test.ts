import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { expectsContinue, forwardedRequestHeaders, type ForwardContext } from '../../src/proxy/request-headers.js';
import { SwiftHeaders } from '../../src/swift/request.js';

const CONTEXT: ForwardContext = {
  remoteAddress: '192.0.2.7',
  upstreamHost: '127.0.0.1:8080',
};

const NO_CHANGES = new Map<string, string | undefined>();

/** Node's rawHeaders for a list of [name, value] pairs. */
function raw(...pairs: Array<[string, string]>): SwiftHeaders {
  return SwiftHeaders.fromRaw(pairs.flat());
}

describe('forwardedRequestHeaders', () => {
  test('hop-by-hop headers are stripped, in every spelling; end-to-end ones kept', () => {
    const headers = raw(
      ['Connection', 'keep-alive'],
      ['Keep-Alive', 'timeout=5'],
      ['Proxy-Connection', 'keep-alive'],
      ['Transfer-Encoding', 'chunked'],
      ['Transfer_Encoding', 'chunked'],
      ['TE', 'trailers'],
      ['Trailer', 'x-checksum'],
      ['Upgrade', 'h2c'],
      ['Expect', '100-continue'],
      ['X-Auth-Token', 'AUTH_tk123'],
      ['Content-Length', '42'],
      ['X-Object-Meta-Color', 'blue'],
      ['ETag', 'abc'],
    );
    const out = forwardedRequestHeaders(headers, NO_CHANGES, CONTEXT);
    for (const name of ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect']) {
      assert.equal(name in out, false, name);
    }
    assert.equal(out['x-auth-token'], 'AUTH_tk123');
    assert.equal(out['content-length'], '42');
    assert.equal(out['x-object-meta-color'], 'blue');
    assert.equal(out.etag, 'abc');
  });

  test('every spelling of a header reaches Swift as the one value Swift would have made of them', () => {
    const out = forwardedRequestHeaders(raw(['X-Copy-From', 'a/b'], ['x_copy_from', 'c/d'], ['X-AUTH_token', 'tk']), NO_CHANGES, CONTEXT);
    assert.equal(out['x-copy-from'], 'a/b,c/d');
    assert.equal(out['x-auth-token'], 'tk');
    assert.equal('x_copy_from' in out, false);
  });

  test('Content-Type and Content-Length go by their exact names, first one; underscore spellings are dropped as eventlet drops them', () => {
    const out = forwardedRequestHeaders(raw(['Content-Type', 'text/plain'], ['content-type', 'text/html'], ['Content_Type', 'x/y'], ['content_length', '9']), NO_CHANGES, CONTEXT);
    assert.equal(out['content-type'], 'text/plain');
    assert.equal('content-length' in out, false);
  });

  test('the proxy\'s changes win over what the client sent, in any spelling', () => {
    const changes = new Map<string, string | undefined>([['if-match', '"abc"'], ['x-object-meta-gone', undefined]]);
    const out = forwardedRequestHeaders(raw(['If_Match', '"other"'], ['X-Object-Meta-Gone', '1']), changes, CONTEXT);
    assert.equal(out['if-match'], '"abc"');
    assert.equal('x-object-meta-gone' in out, false);
  });

  test('Host is the client\'s, so that Swift\'s storage URLs lead back through the proxy', () => {
    const out = forwardedRequestHeaders(raw(['Host', 'proxy.example:8081']), NO_CHANGES, CONTEXT);
    assert.equal(out.host, 'proxy.example:8081');
  });

  test('without a client Host, the upstream\'s is used', () => {
    const out = forwardedRequestHeaders(raw(), NO_CHANGES, CONTEXT);
    assert.equal(out.host, '127.0.0.1:8080');
  });

  test('the client\'s Content-Type is passed on as sent', () => {
    const out = forwardedRequestHeaders(raw(['Content-Type', 'application/x-tar; charset=binary']), NO_CHANGES, CONTEXT);
    assert.equal(out['content-type'], 'application/x-tar; charset=binary');
  });

  test('without a Content-Type, none is added', () => {
    const out = forwardedRequestHeaders(raw(), NO_CHANGES, CONTEXT);
    assert.equal('content-type' in out, false);
  });

  test('X-Forwarded-For gets the client address appended', () => {
    assert.equal(forwardedRequestHeaders(raw(['X-Forwarded-For', '203.0.113.1, 10.0.0.1']), NO_CHANGES, CONTEXT)['x-forwarded-for'], '203.0.113.1, 10.0.0.1, 192.0.2.7');
    assert.equal(forwardedRequestHeaders(raw(), NO_CHANGES, CONTEXT)['x-forwarded-for'], '192.0.2.7');
  });

  test('without a remote address, X-Forwarded-For is left as it was', () => {
    assert.equal(forwardedRequestHeaders(raw(['X-Forwarded-For', '203.0.113.1']), NO_CHANGES, { ...CONTEXT, remoteAddress: undefined })['x-forwarded-for'], '203.0.113.1');
    assert.equal('x-forwarded-for' in forwardedRequestHeaders(raw(), NO_CHANGES, { ...CONTEXT, remoteAddress: undefined }), false);
  });
});

describe('expectsContinue', () => {
  test('Expect: 100-continue, in any case and with blanks, waits for 100 Continue', () => {
    assert.equal(expectsContinue({ expect: '100-continue' }), true);
    assert.equal(expectsContinue({ expect: ' 100-Continue ' }), true);
  });

  test('no Expect, or another expectation, does not', () => {
    assert.equal(expectsContinue({}), false);
    assert.equal(expectsContinue({ expect: '200-ok' }), false);
    assert.equal(expectsContinue({ expect: '' }), false);
  });
});
