import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingHttpHeaders } from 'node:http';
import { expectsContinue, forwardedRequestHeaders, type ForwardContext } from '../../src/proxy/request-headers.js';

const CONTEXT: ForwardContext = {
  contentType: undefined,
  clientHost: 'proxy.example:8081',
  remoteAddress: '192.0.2.7',
  upstreamHost: '127.0.0.1:8080',
};

describe('forwardedRequestHeaders', () => {
  test('hop-by-hop headers are stripped, end-to-end ones kept', () => {
    const headers: IncomingHttpHeaders = {
      connection: 'keep-alive',
      'keep-alive': 'timeout=5',
      'proxy-connection': 'keep-alive',
      'transfer-encoding': 'chunked',
      te: 'trailers',
      trailer: 'x-checksum',
      upgrade: 'h2c',
      expect: '100-continue',
      'x-auth-token': 'AUTH_tk123',
      'content-length': '42',
      'x-object-meta-color': 'blue',
      etag: 'abc',
    };
    const out = forwardedRequestHeaders(headers, CONTEXT);
    for (const name of ['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect']) {
      assert.equal(name in out, false, name);
    }
    assert.equal(out['x-auth-token'], 'AUTH_tk123');
    assert.equal(out['content-length'], '42');
    assert.equal(out['x-object-meta-color'], 'blue');
    assert.equal(out.etag, 'abc');
  });

  test('the input headers are not changed', () => {
    const headers: IncomingHttpHeaders = { connection: 'close', host: '127.0.0.1:8080', 'x-forwarded-for': '10.0.0.1' };
    const copy = { ...headers };
    forwardedRequestHeaders(headers, { ...CONTEXT, contentType: 'text/plain' });
    assert.deepEqual(headers, copy);
  });

  test('Host is the client\'s, so that Swift\'s storage URLs lead back through the proxy', () => {
    const out = forwardedRequestHeaders({ host: '127.0.0.1:8080' }, CONTEXT);
    assert.equal(out.host, 'proxy.example:8081');
  });

  test('without a client Host, the upstream\'s is used', () => {
    const out = forwardedRequestHeaders({}, { ...CONTEXT, clientHost: undefined });
    assert.equal(out.host, '127.0.0.1:8080');
  });

  test('the client\'s Content-Type set aside before routing is put back', () => {
    const out = forwardedRequestHeaders({}, { ...CONTEXT, contentType: 'application/x-tar; charset=binary' });
    assert.equal(out['content-type'], 'application/x-tar; charset=binary');
  });

  test('without a Content-Type set aside, none is added', () => {
    const out = forwardedRequestHeaders({}, CONTEXT);
    assert.equal('content-type' in out, false);
  });

  test('X-Forwarded-For gets the client address appended', () => {
    assert.equal(forwardedRequestHeaders({ 'x-forwarded-for': '203.0.113.1, 10.0.0.1' }, CONTEXT)['x-forwarded-for'], '203.0.113.1, 10.0.0.1, 192.0.2.7');
    assert.equal(forwardedRequestHeaders({}, CONTEXT)['x-forwarded-for'], '192.0.2.7');
  });

  test('without a remote address, X-Forwarded-For is left as it was', () => {
    assert.equal(forwardedRequestHeaders({ 'x-forwarded-for': '203.0.113.1' }, { ...CONTEXT, remoteAddress: undefined })['x-forwarded-for'], '203.0.113.1');
    assert.equal('x-forwarded-for' in forwardedRequestHeaders({}, { ...CONTEXT, remoteAddress: undefined }), false);
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
