/**
 * The proxy's own routes (/healthz, /readyz, /metrics) and its access log.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login } from '../helpers/http.js';
import { createHmac } from 'node:crypto';

describe('operations endpoints and access log', () => {
  let swift: string;
  let proxy: RunningProxy;
  const lines: Array<Record<string, unknown>> = [];

  before(async () => {
    swift = await swiftUrl();
    proxy = await startProxy({ upstream: swift, logStream: { write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) } });
  });
  after(() => proxy.close());

  test('/healthz answers 200 and /readyz 200 while Swift answers; neither reaches Swift', async () => {
    const health = await call('GET', `${proxy.url}/healthz`);
    assert.equal(health.status, 200);
    assert.equal(health.body, 'ok\n');
    assert.match(health.headers['x-trans-id'] ?? '', /^tx[0-9a-f]{21}-[0-9a-f]{10}-quota-proxy$/, 'answered by the proxy, not Swift');
    const ready = await call('GET', `${proxy.url}/readyz`);
    assert.equal(ready.status, 200);
    assert.equal(ready.body, 'ready\n');
  });

  test('/readyz answers 503 when Swift cannot be reached; /healthz stays 200', async () => {
    const orphan = await startProxy({ upstream: 'http://127.0.0.1:1' });
    try {
      const ready = await call('GET', `${orphan.url}/readyz`);
      assert.equal(ready.status, 503);
      // The client port may be public: which dependency, never its address (the ops port says more: truth.test.ts).
      assert.equal(ready.body, 'not ready: upstream\n');
      assert.equal((await call('GET', `${orphan.url}/healthz`)).status, 200);
    } finally {
      await orphan.close();
    }
  });

  test('every request leaves one JSON access line with status, bytes, duration, transaction id and quota decision', async () => {
    const user = await login(proxy.url, 'qa14:admin', 'qa14pass');
    await call('PUT', `${accountUrl(proxy.url, 'qa14')}/logged`, { 'x-auth-token': user.token, 'x-container-meta-temp-url-key': 'logkey' });
    // A temp URL upload: its signature is in the query string, which must not reach the log.
    const expires = Math.floor(Date.now() / 1000) + 300;
    const secret = createHmac('sha256', 'logkey').update(`PUT\n${expires}\n/v1/AUTH_qa14/logged/o`).digest('hex');
    const put = await call('PUT', `${accountUrl(proxy.url, 'qa14')}/logged/o?temp_url_sig=${secret}&temp_url_expires=${expires}`, {}, 'hello');
    assert.equal(put.status, 201);
    const line = lines.find((l) => l.access === true && l.method === 'PUT' && l.path === '/v1/AUTH_qa14/logged/o');
    assert.ok(line, JSON.stringify(lines.slice(-3)));
    assert.equal(line.status, 201);
    assert.equal(line.bytesIn, 5);
    assert.equal(line.transId, put.headers['x-trans-id']);
    assert.equal(line.quota, 'admitted');
    assert.equal(typeof line.durationMs, 'number');
    assert.ok(!JSON.stringify(lines).includes(secret), 'query strings are not logged');
  });
});
