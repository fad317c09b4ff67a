/**
 * When Swift is down, slow or broken, clients get a clean, short 5xx, writes that need a quota check are
 * refused (fail closed) and nothing is written, and the proxy keeps running.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { freePort } from '../helpers/ports.js';
import { startProxy, type ProxyOptions, type RunningProxy } from '../helpers/proxy.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login, type Login } from '../helpers/http.js';

const ACCOUNT = 'qa15';

/** An HTTP server on a free loopback port; `handler` decides what Swift "does". */
async function stubServer(handler: http.RequestListener): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Forwards to the real Swift, except that usage reads (HEAD on /v1/...) fail with 503. */
function failingUsageReads(swift: string): http.RequestListener {
  return (req, res) => {
    if (req.method === 'HEAD' && req.url?.startsWith('/v1/')) {
      res.writeHead(503).end();
      return;
    }
    const upstream = http.request(`${swift}${req.url}`, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  };
}


describe('upstream failures', () => {
  let swift: string;
  let user: Login;
  const opened: RunningProxy[] = [];
  const closers: Array<() => Promise<void>> = [];

  before(async () => {
    swift = await swiftUrl();
    user = await login(swift, `${ACCOUNT}:admin`, `${ACCOUNT}pass`);
    assert.equal((await call('PUT', `${accountUrl(swift, ACCOUNT)}/c`, { 'x-auth-token': user.token })).status, 201);
  });
  after(async () => {
    for (const proxy of opened) await proxy.close();
    for (const close of closers) await close();
  });

  async function proxyTo(upstream: string, extra: Partial<ProxyOptions> = {}) {
    const proxy = await startProxy({ upstream, ...extra });
    opened.push(proxy);
    return proxy;
  }

  test('Swift unreachable: reads get 503 with a short text body, writes get 503 + Retry-After', async () => {
    const proxy = await proxyTo(`http://127.0.0.1:${await freePort()}`);
    const read = await call('GET', `${accountUrl(proxy.url, ACCOUNT)}/c/o`, { 'x-auth-token': user.token });
    assert.equal(read.status, 503);
    assert.match(read.body, /^Service Unavailable/);
    assert.ok(read.body.length < 200);
    const write = await call('PUT', `${accountUrl(proxy.url, ACCOUNT)}/c/o`, { 'x-auth-token': user.token }, 'data');
    assert.equal(write.status, 503);
    assert.equal(write.headers['retry-after'], '3');
    assert.match(write.body, /cannot read usage/);
    const metrics = await call('GET', `${proxy.url}/metrics`);
    assert.match(metrics.body, /swift_quota_proxy_upstream_errors_total\{status="503"\} [1-9]/);
  });

  test('usage cannot be read: the write is refused (fail closed) and nothing is written', async () => {
    const stub = await stubServer(failingUsageReads(swift));
    closers.push(stub.close);
    const proxy = await proxyTo(stub.url);
    const write = await call('PUT', `${accountUrl(proxy.url, ACCOUNT)}/c/refused`, { 'x-auth-token': user.token }, 'data');
    assert.equal(write.status, 503);
    assert.equal(write.headers['retry-after'], '3');
    assert.equal((await call('HEAD', `${accountUrl(swift, ACCOUNT)}/c/refused`, { 'x-auth-token': user.token })).status, 404);
    // Reads that only annotate quota headers still work.
    assert.equal((await call('GET', `${accountUrl(proxy.url, ACCOUNT)}/c`, { 'x-auth-token': user.token })).status, 204);
  });

  test('fail_mode = open lets the write through when usage cannot be read', async () => {
    const stub = await stubServer(failingUsageReads(swift));
    closers.push(stub.close);
    const proxy = await proxyTo(stub.url, { failMode: 'open' });
    const write = await call('PUT', `${accountUrl(proxy.url, ACCOUNT)}/c/let-through`, { 'x-auth-token': user.token }, 'data');
    assert.equal(write.status, 201);
  });

  test('Swift answering nothing in time gives 504; Swift resetting the connection gives 502', async () => {
    const hanging = await stubServer(() => {});
    closers.push(hanging.close);
    const slow = await proxyTo(hanging.url, { extraProxyLines: ['upstream_timeout = 1'] });
    const timedOut = await call('GET', `${slow.url}/info`);
    assert.equal(timedOut.status, 504);
    assert.match(timedOut.body, /^Gateway Timeout/);

    const resetting = await stubServer((req) => req.socket.destroy());
    closers.push(resetting.close);
    const broken = await proxyTo(resetting.url);
    const reset = await call('GET', `${broken.url}/info`);
    assert.ok(reset.status === 502 || reset.status === 503, String(reset.status));
    assert.ok(reset.body.length < 200);
    // Still alive.
    assert.equal((await call('GET', `${broken.url}/metrics`)).status, 200);
  });
});
