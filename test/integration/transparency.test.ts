/**
 * The proxy is invisible: the Swift API behaves through it as it does straight against Swift, bodies
 * stream both ways, and clients going away or odd requests do not upset it.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login, type Login } from '../helpers/http.js';

const ACCOUNT = 'qa1';

/** A raw HTTP/1.1 exchange, for what fetch-style clients hide (100 Continue, aborts). */
function rawRequest(url: string, options: http.RequestOptions): http.ClientRequest {
  return http.request(url, { agent: false, ...options });
}

/** A series' value in a /metrics text (`series` is the line up to its value); 0 when it has none yet. */
function requestCount(text: string, series: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

describe('transparent proxying', () => {
  let swift: string;
  let proxy: RunningProxy;
  let user: Login;
  const viaProxy = (path = '') => `${accountUrl(proxy.url, ACCOUNT)}${path}`;
  const direct = (path = '') => `${accountUrl(swift, ACCOUNT)}${path}`;
  const auth = () => ({ 'x-auth-token': user.token });

  before(async () => {
    swift = await swiftUrl();
    proxy = await startProxy({ upstream: swift });
    user = await login(proxy.url, `${ACCOUNT}:admin`, `${ACCOUNT}pass`);
    assert.equal((await call('PUT', viaProxy('/t'), auth())).status, 201);
  });
  after(() => proxy.close());

  test('the storage URL that auth returns points at the proxy (Host is preserved)', () => {
    assert.equal(user.storageUrl, `${proxy.url}/v1/AUTH_${ACCOUNT}`);
  });

  test('object round trip: PUT, HEAD, GET, metadata POST, DELETE give what Swift gives', async () => {
    const put = await call('PUT', viaProxy('/t/hello.txt'), { ...auth(), 'content-type': 'text/plain', 'x-object-meta-color': 'blue' }, 'hello, world');
    assert.equal(put.status, 201);
    assert.match(put.headers['x-trans-id'] ?? '', /^tx/);
    assert.equal(put.headers.etag, 'e4d7f1b4ed2e42d15898f4b27b019da4');

    const [viaHead, directHead] = await Promise.all([call('HEAD', viaProxy('/t/hello.txt'), auth()), call('HEAD', direct('/t/hello.txt'), auth())]);
    for (const name of ['content-length', 'content-type', 'etag', 'x-object-meta-color', 'last-modified']) {
      assert.equal(viaHead.headers[name], directHead.headers[name], name);
    }
    const get = await call('GET', viaProxy('/t/hello.txt'), auth());
    assert.equal(get.body, 'hello, world');
    assert.equal((await call('POST', viaProxy('/t/hello.txt'), { ...auth(), 'x-object-meta-color': 'red' })).status, 202);
    assert.equal((await call('HEAD', direct('/t/hello.txt'), auth())).headers['x-object-meta-color'], 'red');
    assert.equal((await call('DELETE', viaProxy('/t/hello.txt'), auth())).status, 204);
    assert.equal((await call('GET', viaProxy('/t/hello.txt'), auth())).status, 404);
  });

  test('non-ASCII, percent-encoded and slash-laden object names reach Swift unchanged', async () => {
    const names = ['żółw/ünïcode ✓.txt', 'a b%20c', 'dir//double/slash', 'q?mark#hash', 'plus+and&amp'];
    for (const name of names) {
      const path = `/t/${name.split('/').map(encodeURIComponent).join('/')}`;
      assert.equal((await call('PUT', viaProxy(path), auth(), name)).status, 201, name);
      assert.equal((await call('GET', direct(path), auth())).body, name);
    }
    const listing = await call('GET', viaProxy('/t?format=json'), auth());
    const listed = (JSON.parse(listing.body) as Array<{ name: string }>).map((o) => o.name);
    for (const name of names) assert.ok(listed.includes(name), name);
    const prefixed = await call('GET', viaProxy(`/t?prefix=${encodeURIComponent('żółw/')}`), auth());
    assert.equal(prefixed.body.trim(), names[0]);
  });

  test('Range requests return 206 with the requested bytes', async () => {
    await call('PUT', viaProxy('/t/range'), auth(), '0123456789');
    const ranged = await call('GET', viaProxy('/t/range'), { ...auth(), range: 'bytes=2-5' });
    assert.equal(ranged.status, 206);
    assert.equal(ranged.body, '2345');
    assert.equal(ranged.headers['content-range'], 'bytes 2-5/10');
  });

  test('empty bodies, large metadata and COPY / OPTIONS behave as in Swift', async () => {
    assert.equal((await call('PUT', viaProxy('/t/empty'), auth(), '')).status, 201);
    assert.equal((await call('HEAD', direct('/t/empty'), auth())).headers['content-length'], '0');

    const meta: Record<string, string> = {};
    for (let i = 0; i < 12; i++) meta[`x-object-meta-m${i}`] = 'v'.repeat(200);
    assert.equal((await call('PUT', viaProxy('/t/meta'), { ...auth(), ...meta }, 'm')).status, 201);
    const head = await call('HEAD', viaProxy('/t/meta'), auth());
    for (const [name, value] of Object.entries(meta)) assert.equal(head.headers[name], value);

    assert.equal((await call('COPY', viaProxy('/t/meta'), { ...auth(), destination: '/t/meta-copy' })).status, 201);
    assert.equal((await call('HEAD', direct('/t/meta-copy'), auth())).headers['x-object-meta-m3'], 'v'.repeat(200));

    const options = { origin: 'http://example.test', 'access-control-request-method': 'GET' };
    const [viaOptions, directOptions] = await Promise.all([call('OPTIONS', viaProxy('/t/meta'), options), call('OPTIONS', direct('/t/meta'), options)]);
    assert.equal(viaOptions.status, directOptions.status);
    assert.equal((await call('OPTIONS', `${proxy.url}/info`)).status, (await call('OPTIONS', `${swift}/info`)).status);
  });

  test('a text/plain or oddly typed body is streamed, not parsed or refused', async () => {
    const big = 'x'.repeat(3 * 1024 * 1024); // over Fastify's 1 MiB body limit
    assert.equal((await call('PUT', viaProxy('/t/text'), { ...auth(), 'content-type': 'text/plain' }, big)).status, 201);
    assert.equal((await call('PUT', viaProxy('/t/json'), { ...auth(), 'content-type': 'application/json' }, '{not json')).status, 201);
    assert.equal((await call('PUT', viaProxy('/t/odd'), { ...auth(), 'content-type': 'nonsense' }, 'odd')).status, 201);
    assert.equal((await call('HEAD', direct('/t/odd'), auth())).headers['content-type'], 'nonsense');
    assert.equal((await call('HEAD', direct('/t/text'), auth())).headers['content-length'], String(big.length));
  });

  test('Expect: 100-continue: the proxy answers 100 after its checks, then the body flows', async () => {
    const body = Buffer.alloc(64 * 1024, 'e');
    const result = await new Promise<{ continued: boolean; status: number }>((resolve, reject) => {
      let continued = false;
      const req = rawRequest(viaProxy('/t/expect'), {
        method: 'PUT',
        headers: { ...auth(), expect: '100-continue', 'content-length': body.length },
      });
      req.on('continue', () => {
        continued = true;
        req.end(body);
      });
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve({ continued, status: res.statusCode ?? 0 }));
      });
      req.on('error', reject);
      req.flushHeaders();
    });
    assert.deepEqual(result, { continued: true, status: 201 });
    assert.equal((await call('HEAD', direct('/t/expect'), auth())).headers['content-length'], String(body.length));
  });

  test("an upload announcing more than Swift's max_file_size gets Swift's early 413 before any body, as direct", async () => {
    const maxFileSize = (JSON.parse((await call('GET', `${swift}/info`, {})).body) as { swift: { max_file_size: number } }).swift.max_file_size;
    // Headers only, no body: the answer (or none) within two seconds, as Swift's functional tests wait for it.
    const headersOnly = (url: string, length: number) =>
      new Promise<{ status: number; body: string } | 'no answer'>((resolve, reject) => {
        const req = rawRequest(url, { method: 'PUT', headers: { ...auth(), 'content-length': length } });
        const timer = setTimeout(() => {
          req.destroy();
          resolve('no answer');
        }, 2000);
        req.on('response', (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => (body += chunk));
          res.on('end', () => {
            clearTimeout(timer);
            req.destroy();
            resolve({ status: res.statusCode ?? 0, body });
          });
        });
        req.on('error', reject); // after an answer, a no-op
        req.flushHeaders();
      });
    for (const [length, expected] of [
      [maxFileSize + 1, { status: 413, body: 'Your request is too large.' }],
      [maxFileSize, 'no answer'],
    ] as const) {
      assert.deepEqual(await headersOnly(direct('/t/huge'), length), expected, `direct, ${length}`);
      assert.deepEqual(await headersOnly(viaProxy('/t/huge'), length), expected, `through the proxy, ${length}`);
    }
    assert.equal((await call('HEAD', direct('/t/huge'), auth())).status, 404);
  });

  test('a chunked upload streams through', async () => {
    async function* chunks() {
      for (let i = 0; i < 100; i++) yield Buffer.alloc(10_000, i % 256);
    }
    assert.equal((await call('PUT', viaProxy('/t/chunked'), auth(), Readable.from(chunks()))).status, 201);
    assert.equal((await call('HEAD', direct('/t/chunked'), auth())).headers['content-length'], '1000000');
  });

  test('256 MiB up and down through the proxy with flat memory', async () => {
    // RSS also holds the garbage the collector has not reached yet: how much depends on when it runs (Node 24
    // runs it later than 20 did, and this process is the client and the proxy at once: 87–111 MiB of growth
    // seen). Collected before each sample, what stays is what the transfer holds.
    setFlagsFromString('--expose-gc');
    const collectGarbage = runInNewContext('gc') as () => void;
    const size = 256 * 1024 * 1024;
    const chunk = Buffer.alloc(1024 * 1024, 'z');
    collectGarbage();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    const sampler = setInterval(() => {
      collectGarbage();
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 50);
    try {
      async function* body() {
        for (let sent = 0; sent < size; sent += chunk.length) yield chunk;
      }
      const put = await call('PUT', viaProxy('/t/big'), { ...auth(), 'content-length': String(size) }, Readable.from(body()));
      assert.equal(put.status, 201);
      let received = 0;
      await new Promise<void>((resolve, reject) => {
        rawRequest(viaProxy('/t/big'), { headers: auth() })
          .on('response', (res) => {
            res.on('data', (data: Buffer) => (received += data.length));
            res.on('end', resolve);
            res.on('error', reject);
          })
          .on('error', reject)
          .end();
      });
      assert.equal(received, size);
    } finally {
      clearInterval(sampler);
    }
    // The client and the proxy share this process: both must stream for this to hold.
    assert.ok(peak - baseline < 96 * 1024 * 1024, `RSS grew by ${((peak - baseline) / 2 ** 20).toFixed(0)} MiB`);
  });

  test('a client that aborts an upload aborts the upstream request: no object, no reservation left', async () => {
    const req = rawRequest(viaProxy('/t/aborted'), { method: 'PUT', headers: { ...auth(), 'content-length': String(10 * 1024 * 1024) } });
    req.on('error', () => {});
    req.write(Buffer.alloc(1024 * 1024));
    await delay(200);
    req.destroy();
    // The abort travels to Swift asynchronously: give it a few seconds on a loaded machine.
    let inFlight = '';
    for (let tries = 0; tries < 50 && inFlight !== '0'; tries++) {
      await delay(100);
      inFlight = /swift_quota_proxy_reservations_in_flight (\d+)/.exec((await call('GET', `${proxy.url}/metrics`)).body)?.[1] ?? '';
    }
    assert.equal(inFlight, '0', 'the aborted upload still holds its reservation');
    // The client went away; Swift did not fail. (Its series start at 0: each is there, none has counted.)
    const afterAbort = (await call('GET', `${proxy.url}/metrics`)).body;
    assert.match(afterAbort, /^swift_quota_proxy_upstream_errors_total\{status="502"\} 0$/m);
    assert.doesNotMatch(afterAbort, /^swift_quota_proxy_upstream_errors_total\{[^}]*\} (?!0$)/m);
    assert.equal((await call('HEAD', direct('/t/aborted'), auth())).status, 404);
    // And the proxy still serves.
    assert.equal((await call('HEAD', viaProxy('/t'), auth())).status, 204);
  });

  test('a client that aborts a download does not upset the proxy', async () => {
    await new Promise<void>((resolve) => {
      const req = rawRequest(viaProxy('/t/big'), { headers: auth() });
      req.on('response', (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
      req.end();
    });
    await delay(200);
    assert.equal((await call('GET', viaProxy('/t/range'), auth())).body, '0123456789');
  });

  test('requests Swift rejects are passed on as Swift answers them', async () => {
    const [viaBad, directBad] = await Promise.all([
      call('GET', viaProxy('/t/x'), { 'x-auth-token': 'AUTH_tkbogus' }),
      call('GET', direct('/t/x'), { 'x-auth-token': 'AUTH_tkbogus' }),
    ]);
    assert.equal(viaBad.status, directBad.status);
    assert.equal(viaBad.body, directBad.body);
    assert.equal((await call('GET', `${proxy.url}/nonsense`)).status, (await call('GET', `${swift}/nonsense`)).status);
  });

  test('answers carry Swift\'s header names as Swift spells and orders them; a repeated header keeps every value', async () => {
    const rawNames = (url: string) =>
      new Promise<string[]>((resolve, reject) => {
        rawRequest(url, { method: 'HEAD', headers: auth() })
          .on('response', (res) => {
            res.resume();
            resolve(res.rawHeaders.filter((_, i) => i % 2 === 0).filter((name) => !/^(connection|keep-alive)$/i.test(name)));
          })
          .on('error', reject)
          .end();
      });
    assert.equal((await call('PUT', viaProxy('/t/spelled'), { ...auth(), 'X-Object-Meta-Colour': 'blue', 'x-object-meta-SHADE': 'dark' }, 'x')).status, 201);
    const [viaNames, directNames] = await Promise.all([rawNames(viaProxy('/t/spelled')), rawNames(direct('/t/spelled'))]);
    assert.ok(directNames.includes('X-Object-Meta-Colour') && directNames.includes('X-Object-Meta-Shade'), directNames.join(' '));
    assert.deepEqual(viaNames, directNames);

    // Swift sends no header twice; a server in its place that does gets each value through, under its spelling.
    const stub = http.createServer((_req, res) => res.writeHead(200, ['X-Object-Meta-Colour', 'red', 'Content-Length', '2', 'x-Twice', 'a', 'X-TWICE', 'b']).end('ok'));
    await new Promise<void>((resolve) => stub.listen(0, '127.0.0.1', resolve));
    const stubProxy = await startProxy({ upstream: `http://127.0.0.1:${(stub.address() as { port: number }).port}` });
    try {
      const raw = await new Promise<string[]>((resolve, reject) => {
        rawRequest(`${stubProxy.url}/v1/AUTH_${ACCOUNT}/t/o`, {})
          .on('response', (res) => {
            res.resume();
            resolve(res.rawHeaders);
          })
          .on('error', reject)
          .end();
      });
      const pairs = [];
      for (let i = 0; i < raw.length; i += 2) pairs.push(`${raw[i]}: ${raw[i + 1]}`);
      assert.ok(pairs.includes('X-Object-Meta-Colour: red'), pairs.join('\n'));
      const twice = pairs.filter((pair) => /^x-twice:/i.test(pair));
      assert.deepEqual(twice.map((pair) => pair.toLowerCase()), ['x-twice: a', 'x-twice: b']);
      assert.ok(twice.every((pair) => pair.startsWith('x-Twice:') || pair.startsWith('X-TWICE:')), twice.join('\n'));
    } finally {
      await stubProxy.close();
      stub.closeAllConnections();
      await new Promise((resolve) => stub.close(resolve));
    }
  });

  test('the metrics route is the proxy\'s own and counts proxied requests', async () => {
    const series = 'swift_quota_proxy_requests_total{method="PUT",status_class="2xx"}';
    const putsBefore = requestCount((await call('GET', `${proxy.url}/metrics`)).body, series);
    assert.equal((await call('PUT', viaProxy('/t/counted'), auth(), 'counted')).status, 201);
    const metrics = await call('GET', `${proxy.url}/metrics`);
    assert.equal(metrics.status, 200);
    assert.match(metrics.headers['content-type'] ?? '', /text\/plain/);
    assert.equal(requestCount(metrics.body, series) - putsBefore, 1, 'the one PUT just proxied is counted');
    // The standard process metrics under their standard names (no project prefix).
    assert.match(metrics.body, /^process_cpu_seconds_total \d/m);
    assert.doesNotMatch(metrics.body, /^swift_quota_proxy_(process|nodejs)_/m);
  });
});
