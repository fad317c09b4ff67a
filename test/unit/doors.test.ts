/**
 * The HTTP edge and the front doors (http/quota-hooks.ts, doors/*), in-process: the app buildApp() makes, in
 * front of a stub Swift started by the test itself (a node:http server on a loopback port answering the few
 * requests the proxy makes: /info, the service and S3 users' logins, the authorisation question, usage HEADs)
 * and recording what reaches it. Requests through Fastify's inject, or a raw socket where the wire matters
 * (100 Continue, Connection: close, a client hanging up).
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createHmac } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { buildApp, type ProxyApp } from '../../src/app.js';
import type { MemoryLedger } from '../../src/quota/ledger/memory.js';
import type { Reservation } from '../../src/quota/ledger/ledger.js';
import { configFromText } from '../../src/config/load.js';
import { proxyConfigText } from '../helpers/proxy.js';
import { rawRequest, until } from '../helpers/raw-http.js';
import { freePort } from '../helpers/ports.js';

const ACCOUNT = 'AUTH_test';
const TOKEN = 'AUTH_tk_tester';
const QUOTA = { container_count: { default: 10 }, object_count: { default: 100 }, container_usage: { default: 1000 } };

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

interface StubOptions {
  /** Usage HEADs (account and container) answer 500. */
  failUsage?: boolean;
}

/**
 * A stub Swift: what the proxy asks, answered; every request recorded. Containers exist once a test adds them
 * (each test its own, so that the proxy's cached readings of one test are not another's). Object PUTs are
 * answered 201 once their body is in, or when the test says (`holdPuts`).
 */
async function stubSwift(options: StubOptions = {}) {
  const seen: Seen[] = [];
  /** Containers and their usage (objects, bytes); any other container does not exist. */
  const containers: Record<string, [number, number]> = {};
  let heldPuts: Array<() => void> | undefined;
  let heldHeads: Array<() => void> | undefined;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const url = req.url ?? '';
      seen.push({ method: req.method ?? '', url, headers: req.headers, body: Buffer.concat(chunks) });
      const [path] = url.split('?');
      const parts = path!.split('/').slice(1);
      if (req.method === 'GET' && path === '/info') return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ swift: { version: '2.30.1' }, s3api: {}, tempauth: {} }));
      if (req.method === 'GET' && path === '/auth/v1.0') {
        const [account, user] = String(req.headers['x-auth-user']).split(':');
        return void res.writeHead(200, { 'x-auth-token': `AUTH_tk_${user}`, 'x-storage-url': `http://127.0.0.1/v1/AUTH_${account}`, 'x-auth-token-expires': '3600' }).end();
      }
      // The authorisation question: a POST to a name nobody wrote; 404 once Swift has authorised it.
      if (req.method === 'POST' && /quota-proxy-probe-/.test(path!)) return void res.writeHead(404).end();
      if (req.method === 'HEAD' && parts[0] === 'v1' && parts.length <= 3) {
        if (options.failUsage) return void res.writeHead(500).end();
        if (parts.length === 2) {
          const bytes = Object.values(containers).reduce((sum, [, b]) => sum + b, 0);
          return void res.writeHead(204, { 'x-account-container-count': String(Object.keys(containers).length), 'x-account-bytes-used': String(bytes), 'x-account-object-count': '0' }).end();
        }
        const answer = () => {
          const usage = containers[decodeURIComponent(parts[2]!)];
          if (!usage) return void res.writeHead(404).end();
          res.writeHead(204, { 'x-container-object-count': String(usage[0]), 'x-container-bytes-used': String(usage[1]) }).end();
        };
        if (heldHeads) return void heldHeads.push(answer);
        return answer();
      }
      if (req.method === 'PUT' && parts.length >= 4) {
        // Swift updates the container's usage before it answers.
        const name = decodeURIComponent(parts[2]!);
        const usage = containers[name];
        if (usage) containers[name] = [usage[0] + 1, usage[1] + Number(req.headers['content-length'] ?? 0)];
        const answer = () => res.writeHead(201, { etag: '"d41d8cd98f00b204e9800998ecf8427e"', 'content-length': '0', 'x-trans-id': 'tx-stub' }).end();
        if (heldPuts) return void heldPuts.push(answer);
        return void answer();
      }
      res.writeHead(req.method === 'HEAD' ? 404 : 204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let containerNumber = 0;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    /** A new container with this usage; its name. */
    container: (objects: number, bytes: number) => {
      const name = `c${++containerNumber}`;
      containers[name] = [objects, bytes];
      return name;
    },
    /** Object writes into `container` that reached Swift. */
    puts: (container: string) => seen.filter((request) => request.method === 'PUT' && request.url.startsWith(`/v1/${ACCOUNT}/${container}/`)),
    /** Whether Swift was asked for `container`'s usage. */
    usageRead: (container: string) => seen.some((request) => request.method === 'HEAD' && request.url === `/v1/${ACCOUNT}/${container}`),
    /** From now on object PUTs wait; the function returned answers those waiting and stops holding them. */
    holdPuts: () => {
      heldPuts = [];
      return () => {
        for (const answer of heldPuts?.splice(0) ?? []) answer();
        heldPuts = undefined;
      };
    },
    /** From now on container usage reads wait; the function returned answers those waiting and stops holding them. */
    holdHeads: () => {
      heldHeads = [];
      return () => {
        for (const answer of heldHeads?.splice(0) ?? []) answer();
        heldHeads = undefined;
      };
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface AccessLine {
  access?: boolean;
  method?: string;
  path?: string;
  status?: number;
  quota?: string;
  [field: string]: unknown;
}

const closers: Array<() => Promise<void>> = [];
after(async () => {
  for (const close of closers.reverse()) await close();
});

/** The proxy as buildApp() makes it, listening on a loopback port, its log lines kept. */
async function startProxy(upstream: string, failMode: 'open' | 'closed' = 'closed') {
  // Small caches: an LRU allocates for its maximum up front.
  const text = proxyConfigText({ upstream, quota: QUOTA, failMode, extraQuotaLines: ['cache_max_entries = 1000'] });
  const lines: AccessLine[] = [];
  const proxy = await buildApp(configFromText(text, 'doors.conf'), { logger: { level: 'info', stream: { write: (line: string) => void lines.push(JSON.parse(line) as AccessLine) } } });
  await proxy.app.listen({ host: '127.0.0.1', port: 0 });
  closers.push(() => proxy.app.close());
  const { port } = proxy.app.server.address() as AddressInfo;
  return {
    ...proxy,
    origin: `http://127.0.0.1:${port}`,
    /** The access line of the request to `path`, once written. */
    async accessLine(path: string): Promise<AccessLine> {
      const of = () => lines.filter((line) => line.access === true && line.path === path);
      await until(() => of().length > 0, `the access line of ${path}`);
      assert.equal(of().length, 1, 'one access line per request');
      return of()[0]!;
    },
  };
}

async function world(stubOptions: StubOptions = {}, failMode: 'open' | 'closed' = 'closed') {
  const stub = await stubSwift(stubOptions);
  closers.push(stub.close);
  const proxy = await startProxy(stub.url, failMode);
  return { stub, proxy };
}

/** One stub Swift and one proxy for the tests of the doors (each test writes into containers of its own). */
let shared: ReturnType<typeof world> | undefined;
const sharedWorld = () => (shared ??= world());

/** `promise`, or a failure after `ms` (a client waiting for 100 Continue would wait forever). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const put = (proxy: ProxyApp, path: string, bytes: number, headers: Record<string, string> = {}) =>
  proxy.app.inject({ method: 'PUT', url: path, headers: { host: '127.0.0.1', 'x-auth-token': TOKEN, 'content-length': String(bytes), ...headers }, payload: Buffer.alloc(bytes, 'x') });

describe('doors: the Swift API', () => {
  test('an object PUT over container_usage: Swift\'s 413 wording and the quota headers; it never reaches Swift; logged rejected', async () => {
    const { stub, proxy } = await sharedWorld();
    const c = stub.container(3, 950);
    const answer = await put(proxy, `/v1/${ACCOUNT}/${c}/o`, 100);
    assert.equal(answer.statusCode, 413);
    assert.equal(answer.body, 'Upload exceeds quota.\nQuota container_usage of level "default": at most 1000 bytes in this container, 950 used.\n');
    assert.equal(answer.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(answer.headers['x-quota-exceeded'], 'container_usage');
    assert.equal(answer.headers['x-quota-limit'], '1000');
    assert.match(String(answer.headers['x-trans-id']), /^tx/);
    assert.deepEqual(stub.puts(c), []);
    // What the proxy asked Swift to decide: the caller's authorisation (with the caller's token), then usage.
    assert.ok(stub.seen.some((request) => request.method === 'POST' && request.url.startsWith(`/v1/${ACCOUNT}/${c}/quota-proxy-probe-`) && request.headers['x-auth-token'] === TOKEN));
    assert.ok(stub.usageRead(c));
    const line = await proxy.accessLine(`/v1/${ACCOUNT}/${c}/o`);
    assert.equal(line.status, 413);
    assert.equal(line.quota, 'rejected:container_usage');
  });

  test('an object PUT that fits reaches Swift with its body, is logged admitted, and is counted once Swift answered', async () => {
    const { stub, proxy } = await sharedWorld();
    const c = stub.container(3, 900);
    const answer = await put(proxy, `/v1/${ACCOUNT}/${c}/o`, 100);
    assert.equal(answer.statusCode, 201);
    assert.equal(stub.puts(c).length, 1);
    assert.equal(stub.puts(c)[0]!.body.length, 100);
    assert.equal(proxy.gate.ledger.openReservations, 0);
    assert.equal((await proxy.accessLine(`/v1/${ACCOUNT}/${c}/o`)).quota, 'admitted');
    // The container is full now: one more byte is refused without Swift seeing it.
    const next = await put(proxy, `/v1/${ACCOUNT}/${c}/p`, 1);
    assert.equal(next.statusCode, 413);
    assert.equal(stub.puts(c).length, 1);
  });

  test('Expect: 100-continue over the limit: the refusal comes first (no 100 Continue), with Connection: close; the body is never read', async () => {
    const { stub, proxy } = await sharedWorld();
    const c = stub.container(3, 950);
    const request = rawRequest(proxy.origin, 'PUT', `/v1/${ACCOUNT}/${c}/big`, [
      ['Host', '127.0.0.1'],
      ['X-Auth-Token', TOKEN],
      ['Content-Length', '5000'],
      ['Expect', '100-continue'],
    ]);
    assert.equal(await within(request.admitted, 5000, 'the refusal'), 413, 'answered without 100 Continue');
    const answer = await request.response;
    // The body the client still holds is not drained (Node closes too: no 100 Continue was sent).
    assert.equal(answer.headers.connection, 'close');
    assert.match(answer.body, /^Upload exceeds quota\./);
    assert.deepEqual(stub.puts(c), []);
  });

  test('Expect: 100-continue that fits: 100 Continue, then Swift\'s answer', async () => {
    const { stub, proxy } = await sharedWorld();
    const c = stub.container(3, 900);
    const request = rawRequest(proxy.origin, 'PUT', `/v1/${ACCOUNT}/${c}/small`, [
      ['Host', '127.0.0.1'],
      ['X-Auth-Token', TOKEN],
      ['Content-Length', '10'],
      ['Expect', '100-continue'],
    ]);
    assert.equal(await within(request.admitted, 5000, '100 Continue'), 'continue');
    const answer = await request.finish('0123456789');
    assert.equal(answer.status, 201);
    assert.equal(stub.puts(c)[0]!.body.toString(), '0123456789');
  });

  test('a refusal while the client is still sending its body: Connection: close', async () => {
    const { stub, proxy } = await sharedWorld();
    const c = stub.container(3, 950);
    const request = rawRequest(proxy.origin, 'PUT', `/v1/${ACCOUNT}/${c}/partial`, [
      ['Host', '127.0.0.1'],
      ['X-Auth-Token', TOKEN],
      ['Content-Length', '2000'],
    ], Buffer.alloc(500, 'x'));
    const answer = await request.response;
    assert.equal(answer.status, 413);
    assert.equal(answer.headers.connection, 'close');
    assert.deepEqual(stub.puts(c), []);
  });

  test('a client that hangs up while the proxy decides: a 499 line; its write never reaches Swift, and what it held is given back', async () => {
    const { stub, proxy } = await sharedWorld();
    const c = stub.container(3, 900);
    const ledger = proxy.gate.ledger as MemoryLedger;
    const key = `c/${ACCOUNT}/${c}`;
    const holds: Reservation[] = [];
    const hold = ledger.hold.bind(ledger);
    ledger.hold = (...args) => {
      const reservation = hold(...args);
      if (reservation.key === key) holds.push(reservation);
      return reservation;
    };
    const answerHeads = stub.holdHeads();
    const request = rawRequest(proxy.origin, 'PUT', `/v1/${ACCOUNT}/${c}/gone`, [
      ['Host', '127.0.0.1'],
      ['X-Auth-Token', TOKEN],
      ['Content-Length', '10'],
    ], '01234');
    await until(() => stub.usageRead(c), 'the usage read at Swift');
    // Gone mid-body: Node reports the broken body, and the proxy gives an answer in progress a moment (server.ts,
    // BROKEN_BODY_GRACE_MS, 1 s) before it closes the connection and the abort is seen.
    request.destroy();
    const line = await proxy.accessLine(`/v1/${ACCOUNT}/${c}/gone`);
    assert.equal(line.status, 499);
    answerHeads();
    // The decision goes on with the reading: the client went before the write could be sent (its exchange ended,
    // abandoned), so the reservation is given back as soon as it is made, and not counted.
    await until(() => holds.length === 1 && holds[0]!.settled, 'the write admitted and settled');
    assert.deepEqual(ledger.projected(key, await ledger.read(key)), { count: 3, bytes: 900 }, 'released, not committed');
    assert.equal(ledger.openReservations, 0);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.deepEqual(stub.puts(c), []);
  });

  test('a client that hangs up once its whole body is sent: the write stays held until Swift answers', async () => {
    const { stub, proxy } = await sharedWorld();
    const c = stub.container(3, 900);
    const answerPuts = stub.holdPuts();
    const request = rawRequest(proxy.origin, 'PUT', `/v1/${ACCOUNT}/${c}/slow`, [
      ['Host', '127.0.0.1'],
      ['X-Auth-Token', TOKEN],
      ['Content-Length', '10'],
    ], '0123456789');
    await until(() => stub.puts(c).length === 1, 'the PUT at Swift');
    request.destroy();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(proxy.gate.ledger.openReservations, 1, 'held: Swift has not answered yet');
    answerPuts();
    await until(() => proxy.gate.ledger.openReservations === 0, 'the reservation settled by Swift\'s answer');
  });
});

describe('doors: S3', () => {
  /** AWS Signature Version 2 of a path-style PUT, as tempauth's user test:tester (the key is the secret). */
  function signedPut(path: string, bytes: number): Record<string, string> {
    const date = new Date().toUTCString();
    const contentType = 'application/octet-stream';
    const signature = createHmac('sha1', 'testing').update(['PUT', '', contentType, date, path].join('\n')).digest('base64');
    return { host: '127.0.0.1', date, 'content-type': contentType, 'content-length': String(bytes), authorization: `AWS test:tester:${signature}` };
  }

  test('an S3 object PUT over container_usage: s3api\'s XML (EntityTooLarge), never reaching Swift', async () => {
    const { stub, proxy } = await sharedWorld();
    const c = stub.container(3, 950);
    const answer = await proxy.app.inject({ method: 'PUT', url: `/${c}/o`, headers: signedPut(`/${c}/o`, 100), payload: Buffer.alloc(100, 'x') });
    assert.equal(answer.statusCode, 400, answer.body);
    assert.equal(answer.headers['content-type'], 'application/xml');
    assert.match(answer.body, /^<\?xml version='1\.0' encoding='UTF-8'\?>\n<Error><Code>EntityTooLarge<\/Code><Message>Upload exceeds quota\. Quota container_usage/);
    assert.deepEqual(stub.puts(c), []);
    // The caller is the S3 user: Swift is asked with that user's own token.
    assert.ok(stub.seen.some((request) => request.url === '/auth/v1.0' && request.headers['x-auth-user'] === 'test:tester'));
    assert.ok(stub.seen.some((request) => request.method === 'POST' && request.url.startsWith(`/v1/${ACCOUNT}/${c}/quota-proxy-probe-`) && request.headers['x-auth-token'] === 'AUTH_tk_tester'));
    assert.equal((await proxy.accessLine(`/${c}/o`)).quota, 'rejected:container_usage');
  });

  test('an S3 PUT that fits goes on to Swift (s3api there reads it), logged admitted', async () => {
    const { stub, proxy } = await sharedWorld();
    const c = stub.container(3, 900);
    await proxy.app.inject({ method: 'PUT', url: `/${c}/o`, headers: signedPut(`/${c}/o`, 10), payload: Buffer.alloc(10, 'x') });
    const forwarded = stub.seen.filter((request) => request.method === 'PUT' && request.url === `/${c}/o`);
    assert.equal(forwarded.length, 1);
    assert.equal(forwarded[0]!.body.length, 10);
    assert.equal((await proxy.accessLine(`/${c}/o`)).quota, 'admitted');
  });

  test('an S3 PUT with a wrong signature: SignatureDoesNotMatch, nothing asked of Swift for it', async () => {
    const { stub, proxy } = await sharedWorld();
    const c = stub.container(3, 900);
    const headers = signedPut(`/${c}/o`, 10);
    headers.authorization = headers.authorization!.replace(/:[^:]+$/, ':AAAAAAAAAAAAAAAAAAAAAAAAAAA=');
    const before = stub.seen.length;
    const answer = await proxy.app.inject({ method: 'PUT', url: `/${c}/o`, headers, payload: Buffer.alloc(10, 'x') });
    assert.equal(answer.statusCode, 403);
    assert.match(answer.body, /<Code>SignatureDoesNotMatch<\/Code>/);
    assert.deepEqual(stub.seen.slice(before).map((request) => `${request.method} ${request.url}`), []);
  });
});

describe('doors: fail_mode when usage cannot be read', () => {
  test('closed, Swift answers 500 to usage reads: 503 with Retry-After, nothing written', async () => {
    const { stub, proxy } = await world({ failUsage: true }, 'closed');
    const c = stub.container(0, 0);
    const answer = await put(proxy, `/v1/${ACCOUNT}/${c}/o`, 10);
    assert.equal(answer.statusCode, 503);
    assert.equal(answer.headers['retry-after'], '3');
    assert.equal(answer.body, 'Service Unavailable: the quota proxy cannot read usage from Swift; try again later.\n');
    assert.deepEqual(stub.puts(c), []);
    assert.equal((await proxy.accessLine(`/v1/${ACCOUNT}/${c}/o`)).quota, 'refused:503');
  });

  test('closed, Swift refuses connections: 503 with Retry-After', async () => {
    const proxy = await startProxy(`http://127.0.0.1:${await freePort()}`, 'closed');
    const answer = await put(proxy, `/v1/${ACCOUNT}/c/o`, 10);
    assert.equal(answer.statusCode, 503);
    assert.equal(answer.headers['retry-after'], '3');
    assert.match(answer.body, /^Service Unavailable: the quota proxy cannot read usage from Swift/);
  });

  test('open, Swift answers 500 to usage reads: the write goes on to Swift unchecked', async () => {
    const { stub, proxy } = await world({ failUsage: true }, 'open');
    const c = stub.container(0, 0);
    const answer = await put(proxy, `/v1/${ACCOUNT}/${c}/o`, 10);
    assert.equal(answer.statusCode, 201);
    assert.equal(stub.puts(c).length, 1);
    assert.equal((await proxy.accessLine(`/v1/${ACCOUNT}/${c}/o`)).quota, 'unchecked');
    const failures = (await proxy.metrics.checkFailures.get()).values.find((sample) => sample.labels.action === 'admitted' && sample.labels.cause === 'swift');
    assert.equal(failures?.value, 1);
  });
});
