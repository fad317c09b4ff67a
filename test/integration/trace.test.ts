/**
 * Every refusal traceable (issue 23, item 5), against the test Swift: the proxy's own answers carry a Swift-style
 * transaction id that is also in their access line; the access line of a checked write names account, user, kind,
 * limit, usage and the size asked; the hard_limit_hit event has the size asked and the refusal's id; client
 * addresses come from X-Forwarded-For / X-Cluster-Client-IP only when the peer is a trusted proxy, and the bound
 * on bodies per client counts the forwarded client behind one; a listener on :: reads IPv4 and IPv6 peers alike;
 * ids stay unique across two workers.
 *
 * Accounts: ops41..ops45 of the test cluster.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { proxyConfigText, startProxy, type RunningProxy } from '../helpers/proxy.js';
import { redisUrl, swiftUrl } from '../helpers/swift-env.js';
import { accountUrl, call, login } from '../helpers/http.js';
import { eventually } from '../helpers/receiver.js';
import { startCli } from '../helpers/cli.js';
import { freePort } from '../helpers/ports.js';
import { until } from '../helpers/raw-http.js';
import { buildApp } from '../../src/app.js';
import { configFromText } from '../../src/config/load.js';

const LIMITS = { container_count: { default: 5 }, object_count: { default: 100 }, container_usage: { default: 10_000 } };
const OWN_ID = /^tx[0-9a-f]{21}-[0-9a-f]{10}-quota-proxy$/;
const recording = fileURLToPath(new URL('../fixtures/providers/recording.mjs', import.meta.url));
const recorded = async () => ((await import(recording)) as { events: Array<Record<string, unknown>> }).events;

type Line = Record<string, unknown>;

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
}

/**
 * One request over a connection from `localAddress` (any 127.x address is this host's: a second peer address
 * for the proxy to tell apart). `body` false: the head only, and the connection kept open (an upload that has not
 * sent its body yet) until `close`.
 */
function fromAddress(port: number, localAddress: string, head: string, body: string | false = '', host = net.isIPv6(localAddress) ? '::1' : '127.0.0.1'): { answer: Promise<RawAnswer>; close: () => void } {
  const socket = net.connect({ host, port, localAddress });
  socket.write(head + (body === false ? '' : body));
  const answer = new Promise<RawAnswer>((resolve, reject) => {
    let data = '';
    socket.on('data', (chunk: Buffer) => {
      data += chunk.toString('latin1');
      const end = data.indexOf('\r\n\r\n');
      if (end < 0) return;
      const [statusLine, ...lines] = data.slice(0, end).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
      resolve({ status: Number(statusLine!.split(' ')[1]), headers });
    });
    socket.on('error', reject);
  });
  return { answer, close: () => socket.destroy() };
}

describe('traceable refusals', () => {
  let swift: string;
  let proxy: RunningProxy;
  const lines: Line[] = [];
  const accessLine = (transId: string | undefined) => lines.find((l) => l.access === true && l.transId === transId);

  before(async () => {
    swift = await swiftUrl();
    proxy = await startProxy({
      upstream: swift,
      quota: LIMITS,
      extraProxyLines: ['trusted_proxies = 127.0.0.2, 10.0.0.0/8, fd00::/8', 'max_bodies_per_client = 1'],
      extraSections: ['[notify:recorder]', 'type = module', `module = ${recording}`, ''],
      logStream: { write: (line) => lines.push(JSON.parse(line) as Line) },
    });
  });
  after(() => proxy?.close());

  test('a refused upload: the 413 carries the id of its access line, which names account, user, kind, limit, usage and the size asked; so does the event', async () => {
    const user = await login(proxy.url, 'ops41:admin', 'ops41pass');
    const base = accountUrl(proxy.url, 'ops41');
    assert.equal((await call('PUT', `${base}/traced`, { 'x-auth-token': user.token })).status, 201);
    const refused = await call('PUT', `${base}/traced/big`, { 'x-auth-token': user.token }, 'x'.repeat(20_000));
    assert.equal(refused.status, 413);
    const id = refused.headers['x-trans-id'];
    assert.match(id ?? '', OWN_ID);
    assert.equal(refused.headers['x-openstack-request-id'], id);
    await eventually(() => accessLine(id) !== undefined, 'the access line of the 413');
    const line = accessLine(id)!;
    assert.equal(line.reqId, id, 'the proxy\'s request id is the transaction id');
    assert.deepEqual([line.level, line.quotaLevel], [30, 'default'], 'pino\'s level stays the line\'s own');
    assert.deepEqual(
      { status: line.status, quota: line.quota, account: line.account, container: line.container, user: line.user, kind: line.kind, limit: line.limit, usage: line.usage, askedBytes: line.askedBytes, askedCount: line.askedCount },
      { status: 413, quota: 'rejected:container_usage', account: 'AUTH_ops41', container: 'traced', user: 'ops41:admin', kind: 'container_usage', limit: 10_000, usage: 0, askedBytes: 20_000, askedCount: 1 },
    );
    await eventually(async () => (await recorded()).some((e) => e.type === 'hard_limit_hit' && e.account === 'AUTH_ops41'), 'the hard_limit_hit event');
    const event = (await recorded()).find((e) => e.type === 'hard_limit_hit' && e.account === 'AUTH_ops41')!;
    assert.deepEqual(
      { usage: event.usage, limit: event.limit, requested_bytes: event.requested_bytes, requested_count: event.requested_count, caller: event.caller },
      { usage: 0, limit: 10_000, requested_bytes: 20_000, requested_count: 1, caller: 'ops41:admin' },
    );
    assert.equal((event.request as { transaction_id: string }).transaction_id, id, 'the event names the refusal by its id');
  });

  test('an admitted upload: Swift\'s id for the client and in transId, the proxy\'s as reqId, and what it was checked against', async () => {
    const user = await login(proxy.url, 'ops42:admin', 'ops42pass');
    const base = accountUrl(proxy.url, 'ops42');
    assert.equal((await call('PUT', `${base}/fits`, { 'x-auth-token': user.token })).status, 201);
    const put = await call('PUT', `${base}/fits/o`, { 'x-auth-token': user.token }, 'y'.repeat(3000));
    assert.equal(put.status, 201);
    const id = put.headers['x-trans-id'];
    assert.match(id ?? '', /^tx/);
    assert.doesNotMatch(id!, OWN_ID, 'Swift\'s own id');
    await eventually(() => accessLine(id) !== undefined, 'the access line of the PUT');
    const line = accessLine(id)!;
    assert.match(String(line.reqId), OWN_ID);
    assert.deepEqual(
      { quota: line.quota, account: line.account, container: line.container, user: line.user, kind: line.kind, limit: line.limit, usage: line.usage, askedBytes: line.askedBytes, askedCount: line.askedCount },
      { quota: 'admitted', account: 'AUTH_ops42', container: 'fits', user: 'ops42:admin', kind: 'container_usage', limit: 10_000, usage: 0, askedBytes: 3000, askedCount: 1 },
    );
  });

  test('the proxy\'s own answers all carry an id, each its own: ops routes, a refused container, an unparsable request, too many header lines', async () => {
    const ids = new Set<string>();
    for (const path of ['/healthz', '/readyz', '/metrics']) {
      const answer = await call('GET', `${proxy.url}${path}`);
      assert.match(answer.headers['x-trans-id'] ?? '', OWN_ID, path);
      ids.add(answer.headers['x-trans-id']!);
    }
    const user = await login(proxy.url, 'ops43:admin', 'ops43pass');
    for (let i = 0; i < 5; i++) await call('PUT', `${accountUrl(proxy.url, 'ops43')}/c${i}`, { 'x-auth-token': user.token });
    const tooMany = await call('PUT', `${accountUrl(proxy.url, 'ops43')}/c-more`, { 'x-auth-token': user.token });
    assert.equal(tooMany.status, 403);
    assert.match(tooMany.headers['x-trans-id'] ?? '', OWN_ID);
    ids.add(tooMany.headers['x-trans-id']!);
    await eventually(() => accessLine(tooMany.headers['x-trans-id']) !== undefined, 'the 403\'s line');
    const line = accessLine(tooMany.headers['x-trans-id'])!;
    assert.deepEqual({ kind: line.kind, limit: line.limit, usage: line.usage, askedCount: line.askedCount, account: line.account, user: line.user }, { kind: 'container_count', limit: 5, usage: 5, askedCount: 1, account: 'AUTH_ops43', user: 'ops43:admin' });
    // A request Node cannot parse: answered on the socket, with an id and a line all the same.
    const garbled = fromAddress(proxy.port, '127.0.0.1', 'GET / HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n');
    const bad = await garbled.answer;
    garbled.close();
    assert.equal(bad.status, 400);
    assert.match(bad.headers['x-trans-id'] ?? '', OWN_ID);
    await eventually(() => accessLine(bad.headers['x-trans-id']) !== undefined, 'the 400\'s line');
    ids.add(bad.headers['x-trans-id']!);
    // More header lines than Swift reads: 431 before Fastify has the request, with an id and a line too.
    const crowded = fromAddress(proxy.port, '127.0.0.1', `GET /info HTTP/1.1\r\nHost: x\r\n${Array.from({ length: 300 }, (_, i) => `X-H${i}: v\r\n`).join('')}\r\n`);
    const tooManyHeaders = await crowded.answer;
    crowded.close();
    assert.equal(tooManyHeaders.status, 431);
    assert.match(tooManyHeaders.headers['x-trans-id'] ?? '', OWN_ID);
    await eventually(() => accessLine(tooManyHeaders.headers['x-trans-id']) !== undefined, 'the 431\'s line');
    assert.equal(accessLine(tooManyHeaders.headers['x-trans-id'])!.status, 431);
    ids.add(tooManyHeaders.headers['x-trans-id']!);
    assert.equal(ids.size, 6);
  });

  test('a write refused before any limit (Swift does not authorise the caller): its line still names the account', async () => {
    const refused = await call('PUT', `${accountUrl(proxy.url, 'ops45')}/c/o`, { 'x-auth-token': 'AUTH_tkbogus' }, 'z');
    assert.equal(refused.status, 401);
    await eventually(() => accessLine(refused.headers['x-trans-id']) !== undefined, 'the 401\'s line');
    const line = accessLine(refused.headers['x-trans-id'])!;
    assert.deepEqual({ quota: line.quota, account: line.account, container: line.container, user: line.user }, { quota: 'refused:401', account: 'AUTH_ops45', container: 'c', user: null });
  });

  test('client addresses: forwarded ones only from a trusted peer, the right-most untrusted of a chain', async () => {
    const head = (extra: string) => `GET /healthz HTTP/1.1\r\nHost: proxy\r\n${extra}Connection: close\r\n\r\n`;
    const cases: Array<[string, string, string]> = [
      // [peer, headers, the client the line must name]
      ['127.0.0.1', 'X-Forwarded-For: 203.0.113.9\r\n', '127.0.0.1'],
      ['127.0.0.1', 'X-Cluster-Client-IP: 203.0.113.9\r\n', '127.0.0.1'],
      ['127.0.0.2', 'X-Forwarded-For: 203.0.113.9\r\n', '203.0.113.9'],
      ['127.0.0.2', 'X-Forwarded-For: 1.1.1.1, 198.51.100.7, 10.1.1.1\r\n', '198.51.100.7'],
      ['127.0.0.2', 'X-Forwarded-For: 10.2.2.2, 10.1.1.1\r\n', '10.2.2.2'],
      ['127.0.0.2', 'X-Forwarded-For: [2001:db8::7]:443, 10.1.1.1\r\n', '2001:db8::7'],
      ['127.0.0.2', 'X-Forwarded-For: ::ffff:192.0.2.1\r\n', '192.0.2.1'],
      // The balancer appends to X-Forwarded-For (client_ip_header's default): a client's own X-Cluster-Client-IP,
      // which the balancer passes on as written, names nobody.
      ['127.0.0.2', 'X-Cluster-Client-IP: 192.0.2.44\r\nX-Forwarded-For: 203.0.113.9\r\n', '203.0.113.9'],
      ['127.0.0.2', 'X-Cluster-Client-IP: 192.0.2.44\r\n', '127.0.0.2'],
      ['127.0.0.2', '', '127.0.0.2'],
    ];
    for (const [peer, headers, client] of cases) {
      const request = fromAddress(proxy.port, peer, head(headers));
      const answer = await request.answer;
      request.close();
      await eventually(() => accessLine(answer.headers['x-trans-id']) !== undefined, 'its line');
      const line = accessLine(answer.headers['x-trans-id'])!;
      assert.equal(line.client, client, `${peer} ${headers.trim()}`);
      assert.equal(line.peer, client === peer ? undefined : peer);
    }
  });

  test('behind a trusted balancer, max_bodies_per_client counts each forwarded client, not the balancer', async () => {
    const user = await login(proxy.url, 'ops44:admin', 'ops44pass');
    assert.equal((await call('PUT', `${accountUrl(proxy.url, 'ops44')}/up`, { 'x-auth-token': user.token })).status, 201);
    const upload = (peer: string, client: string, name: string) =>
      fromAddress(proxy.port, peer, `PUT /v1/AUTH_ops44/up/${name} HTTP/1.1\r\nHost: 127.0.0.1:${proxy.port}\r\nX-Auth-Token: ${user.token}\r\nX-Forwarded-For: ${client}\r\nContent-Length: 10\r\n\r\n`, false);
    // One body in progress from 198.51.100.1 through the balancer (its body never comes).
    const first = upload('127.0.0.2', '198.51.100.1', 'a');
    try {
      await new Promise((resolve) => setTimeout(resolve, 300));
      const sameClient = upload('127.0.0.2', '198.51.100.1', 'b');
      const otherClient = upload('127.0.0.2', '198.51.100.2', 'c');
      try {
        assert.equal((await sameClient.answer).status, 503, 'a second body of the same client');
        const other = await Promise.race([otherClient.answer, new Promise<'waiting'>((resolve) => setTimeout(() => resolve('waiting'), 1000))]);
        assert.equal(other, 'waiting', 'another client behind the same balancer is not refused');
      } finally {
        sameClient.close();
        otherClient.close();
      }
    } finally {
      first.close();
    }
  });
});

describe('listening on :: (IPv6 and IPv4 on one socket)', () => {
  test('IPv4 peers are logged as IPv4 and matched against IPv4 networks; IPv6 peers as they are', async () => {
    const swift = await swiftUrl();
    const lines: Line[] = [];
    const config = configFromText(proxyConfigText({ upstream: swift, quota: LIMITS, extraProxyLines: ['trusted_proxies = 127.0.0.2, ::1'] }), 'ipv6.conf');
    const proxy = await buildApp(config, { logger: { level: 'info', stream: { write: (line: string) => lines.push(JSON.parse(line) as Line) } } });
    await proxy.app.listen({ host: '::', port: 0 });
    try {
      const port = (proxy.app.server.address() as net.AddressInfo).port;
      const head = 'GET /healthz HTTP/1.1\r\nHost: proxy\r\nX-Forwarded-For: 2001:db8::5, 198.51.100.3\r\nConnection: close\r\n\r\n';
      for (const [peer, client, logged] of [['127.0.0.2', '198.51.100.3', '127.0.0.2'], ['127.0.0.1', '127.0.0.1', undefined], ['::1', '198.51.100.3', '::1']] as const) {
        const request = fromAddress(port, peer, head);
        const answer = await request.answer;
        request.close();
        await eventually(() => lines.some((l) => l.transId === answer.headers['x-trans-id']), 'its line');
        const line = lines.find((l) => l.transId === answer.headers['x-trans-id'])!;
        assert.deepEqual({ client: line.client, peer: line.peer }, { client, peer: logged }, peer);
      }
    } finally {
      await proxy.app.close();
    }
  });
});

describe('transaction ids with workers = 2', () => {
  test('unique across workers over 400 answers of the proxy\'s own, each in its worker\'s access line', async () => {
    const swift = await swiftUrl();
    const dir = await mkdtemp(join(tmpdir(), 'sqp-trace-'));
    const file = join(dir, 'workers.conf');
    const lines = [`ledger = ${await redisUrl()}`, `ledger_prefix = trace-${process.pid}:`, 'workers = 2', 'log_level = info'];
    await writeFile(file, proxyConfigText({ upstream: swift, quota: LIMITS, port: await freePort(), extraProxyLines: lines }).replace('log_level = warn\n', ''));
    const started = await startCli(['--config', file]);
    try {
      await until(async () => (await call('GET', `${started.url}/healthz`).catch(() => ({ status: 0 }))).status === 200, 'the proxy', 20_000);
      // Both workers listening before the requests: each accepts from the shared socket once it listens (a CI run
      // sent all 400 while the second one was still starting, and only the first answered).
      await until(() => new Set([...started.output().matchAll(/"pid":(\d+),[^\n]*listening on /g)].map((m) => m[1])).size === 2, 'both workers listening', 30_000);
      const ids: string[] = [];
      for (let round = 0; round < 20; round++) {
        // New connections each time, so both workers take some.
        const answers = await Promise.all(Array.from({ length: 20 }, () => call('GET', `${started.url}/healthz`, { connection: 'close' })));
        for (const answer of answers) ids.push(answer.headers['x-trans-id'] ?? '');
      }
      assert.ok(ids.every((id) => OWN_ID.test(id)), ids.find((id) => !OWN_ID.test(id)));
      assert.equal(new Set(ids).size, ids.length, 'every id unique');
      // Each id is in the access line of the worker that answered; both workers answered some.
      await eventually(() => ids.every((id) => started.output().includes(`"transId":"${id}"`)), 'every id in an access line', 10_000);
      const healthLines = started.output().split('\n').filter((l) => l.includes('"path":"/healthz"')).map((l) => JSON.parse(l) as { pid: number; reqId: string });
      assert.equal(new Set(healthLines.map((l) => l.pid)).size, 2, 'both workers answered');
      assert.equal(new Set(healthLines.map((l) => l.reqId)).size, healthLines.length, 'every reqId unique too');
    } finally {
      started.child.kill('SIGTERM');
      await new Promise((resolve) => started.child.once('exit', resolve));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
