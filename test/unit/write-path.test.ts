/**
 * The one write path (quota/writes.ts) and the exchange it holds on (quota/exchange.ts, quota/settle.ts),
 * in-process: the real Admissions and MemoryLedger, a stub of the few SwiftClient calls these paths make, and a
 * fake HTTP edge. No service, no socket.
 */
import { test, describe, after } from 'node:test';
import assert from 'node:assert/strict';
import { configFromText, type Config } from '../../src/config/load.js';
import { createMetrics } from '../../src/metrics.js';
import type { Log } from '../../src/log.js';
import type { SwiftClient, HeadResult } from '../../src/swift/client.js';
import { capabilitiesFromInfo } from '../../src/swift/capabilities.js';
import { SwiftHeaders } from '../../src/swift/request.js';
import { parseSwiftPath } from '../../src/swift/path.js';
import type { SwiftView } from '../../src/proxy/swift-view.js';
import { MemoryLedger } from '../../src/quota/ledger/memory.js';
import type { Reservation, SnapshotData } from '../../src/quota/ledger/ledger.js';
import { QuotaWatch } from '../../src/quota/watch.js';
import { FallbackStateStore } from '../../src/quota/state-store.js';
import { Notifier } from '../../src/notify/notifier.js';
import { TokenIdentities } from '../../src/auth/identities.js';
import { QuotaCore } from '../../src/quota/core.js';
import { Exchange, type Reply } from '../../src/quota/exchange.js';
import { WritePath } from '../../src/quota/writes.js';
import type { Write } from '../../src/quota/admission.js';
import { settle } from '../../src/quota/settle.js';

const ACCOUNT = 'AUTH_test';
const LIMITS = { container_count: 2, object_count: 10, container_usage: 1000 };

const CONFIG_TEXT = [
  '[quota-proxy]',
  'upstream = http://127.0.0.1:9',
  '',
  '[filter:quota]',
  'service_user = reseller:reseller',
  // Small caches: an LRU allocates for its maximum up front.
  'cache_max_entries = 1000',
  `quota = ${JSON.stringify({ container_count: { default: LIMITS.container_count }, object_count: { default: LIMITS.object_count }, container_usage: { default: LIMITS.container_usage } })}`,
  '',
  '[filter:tempauth]',
  'user_test_tester = testing .admin',
  'user_reseller_reseller = reseller .reseller_admin',
  '',
].join('\n');

const quiet: Log = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

/** The SwiftClient calls the write path makes, answered by the test; every call is recorded. */
function stubSwift() {
  const calls: string[] = [];
  const stub = {
    calls,
    /** What Swift answers the authorisation question (a POST to a name nobody wrote): 404 = authorised. */
    probeAnswer: { status: 404, headers: {} } as HeadResult & { body?: Buffer },
    /** What a HEAD made on the caller's behalf finds (a container a re-PUT would update). */
    callerHead: { status: 404, headers: {} } as HeadResult,
    async asCaller(method: string, path: string): Promise<HeadResult & { body?: Buffer }> {
      calls.push(`${method} ${path}`);
      return method === 'POST' ? stub.probeAnswer : stub.callerHead;
    },
    async head(path: string): Promise<HeadResult> {
      calls.push(`HEAD(service) ${path}`);
      return { status: 404, headers: {} };
    },
    async post(path: string): Promise<HeadResult> {
      calls.push(`POST(service) ${path}`);
      return { status: 204, headers: {} };
    },
    async serviceAccount(): Promise<string> {
      return 'AUTH_reseller';
    },
  };
  return stub;
}

/** The HTTP edge, as the exchange sees it: the test says when the client goes (the edge tells every exchange). */
function fakeEdge() {
  const interrupted: Reply[] = [];
  let exchange: Exchange | undefined;
  return {
    interrupt: async (reply: Reply) => void interrupted.push(reply),
    interrupted,
    attach: (made: Exchange) => void (exchange = made),
    clientGoes: () => exchange?.clientGone(),
  };
}

const watches: QuotaWatch[] = [];
after(async () => {
  for (const watch of watches) await watch.close();
});

/** A QuotaCore over a MemoryLedger whose usage readings the test sets (`usage`, by ledger key). */
async function world(usage: Record<string, Partial<SnapshotData>> = {}) {
  const config: Config = configFromText(CONFIG_TEXT, 'write-path.conf');
  const swift = stubSwift();
  const client = swift as unknown as SwiftClient;
  const metrics = createMetrics();
  metrics.initialise(config);
  const reads: string[] = [];
  const ledger = new MemoryLedger({
    ttlMs: 60_000,
    maxEntries: 100,
    read: async (key) => {
      reads.push(key);
      return { exists: true, count: 0, bytes: 0, ...usage[key] };
    },
  });
  const notifier = await Notifier.create([], metrics, quiet);
  const watch = new QuotaWatch({ quota: config.quota, swift: client, fallback: new FallbackStateStore(client, () => client.serviceAccount()), notifier, metrics, log: quiet });
  watches.push(watch);
  const core = new QuotaCore({ config, swift: client, metrics, log: quiet, watch, identities: new TokenIdentities(), capabilities: () => capabilitiesFromInfo({ swift: {} }), ledger });
  /** One request: its exchange (on a fake edge) and its write path. */
  const request = (method: string, target: string) => {
    const edge = fakeEdge();
    const exchange = new Exchange({ method, url: target, id: 'tx-test' }, { interrupt: edge.interrupt });
    edge.attach(exchange);
    const view: SwiftView = {
      method,
      target,
      headers: SwiftHeaders.fromRaw(['X-Auth-Token', 'AUTH_tk_caller']),
      path: parseSwiftPath(target),
      framing: { contentLength: undefined, transferEncoding: undefined },
      upstream: new Map(),
    };
    return { exchange, edge, writes: new WritePath(core, exchange, view) };
  };
  /** Usage of a key as the next check sees it (reading + finished writes + writes in flight). */
  const used = async (key: string) => ledger.projected(key, await ledger.read(key));
  return { core, ledger, swift, metrics, reads, request, used };
}

type World = Awaited<ReturnType<typeof world>>;

/** An object write of `bytes` into `container`, through the write path's steps. */
async function objectWrite(writes: WritePath, container: string, object: string, bytes: number): Promise<Write> {
  const caller = await writes.authorised(ACCOUNT, container, object);
  assert.ok(caller, 'the stub Swift authorises the caller');
  const scope = writes.enforced(ACCOUNT, container, await writes.level(ACCOUNT));
  assert.ok(scope, 'the container has limits');
  return { scope, add: { count: 1, bytes }, target: object, context: writes.context };
}

/** A new container, through the write path's steps. */
async function containerWrite(writes: WritePath, container: string): Promise<Write> {
  const caller = await writes.authorised(ACCOUNT);
  assert.ok(caller);
  const scope = writes.enforced(ACCOUNT, undefined, await writes.level(ACCOUNT));
  assert.ok(scope);
  return writes.containerWrite(scope, container, caller);
}

const C = `c/${ACCOUNT}/c`;
const A = `a/${ACCOUNT}`;

async function admittedWrite(w: World, bytes = 100, container = 'c', object = 'o') {
  const { exchange, edge, writes } = w.request('PUT', `/v1/${ACCOUNT}/${container}/${object}`);
  const write = await objectWrite(writes, container, object, bytes);
  const admitted = await writes.admit(write);
  assert.ok(admitted, 'the write fits');
  return { exchange, edge, writes, reservation: admitted.reservation };
}

describe('WritePath: admit and hold, settled by Swift\'s answer', () => {
  test('an admitted write holds its reservation on the exchange until Swift answers; a 2xx commits it', async () => {
    const w = await world({ [C]: { count: 3, bytes: 300 } });
    const { exchange, reservation } = await admittedWrite(w, 100);
    assert.deepEqual(exchange.held, [reservation]);
    assert.equal(exchange.tracked, true, 'a request that holds something follows its exchange with Swift');
    assert.equal(exchange.reply, undefined);
    assert.equal(w.ledger.openReservations, 1);
    assert.deepEqual(await w.used(C), { count: 4, bytes: 400 }, 'held: the next check counts it');
    settle(w.core, exchange, 201);
    assert.equal(reservation.settled, true);
    assert.equal(w.ledger.openReservations, 0);
    assert.deepEqual(await w.used(C), { count: 4, bytes: 400 }, 'committed: counted as a finished write');
  });

  test('a 4xx from Swift releases what the write held', async () => {
    const w = await world({ [C]: { count: 3, bytes: 300 } });
    const { exchange, reservation } = await admittedWrite(w, 100);
    settle(w.core, exchange, 403);
    assert.equal(reservation.settled, true);
    assert.equal(w.ledger.openReservations, 0);
    assert.deepEqual(await w.used(C), { count: 3, bytes: 300 }, 'released: as if never asked');
  });

  test('through the dispatcher\'s events: sent, answered 201, settled once', async () => {
    const w = await world({ [C]: { count: 3, bytes: 300 } });
    const { exchange, reservation } = await admittedWrite(w, 100);
    assert.equal(exchange.dispatching(), true);
    exchange.bodySent();
    exchange.answered(201);
    assert.equal(exchange.over, true);
    assert.equal(exchange.settled, true);
    assert.equal(reservation.settled, true);
    assert.deepEqual(await w.used(C), { count: 4, bytes: 400 });
    // A late settle (the response hook) changes nothing.
    settle(w.core, exchange, 500);
    assert.deepEqual(await w.used(C), { count: 4, bytes: 400 });
  });

  test('commitOnlyOn: a new container commits on 201 only; Swift\'s 202 (it existed) releases', async () => {
    const w = await world({ [A]: { count: 1, bytes: 0 } });
    for (const [status, count] of [[202, 1], [201, 2]] as const) {
      const { exchange, writes } = w.request('PUT', `/v1/${ACCOUNT}/new${status}`);
      const admitted = await writes.admit(await containerWrite(writes, `new${status}`));
      assert.ok(admitted);
      exchange.commitOnlyOn = 201;
      settle(w.core, exchange, status);
      assert.equal(admitted.reservation.settled, true);
      assert.equal((await w.used(A)).count, count, `answered ${status}`);
    }
  });
});

describe('WritePath: refusals, worded per protocol', () => {
  test('over container_usage: nothing held, Swift\'s 413 wording with the quota headers, decision and refusal noted', async () => {
    const w = await world({ [C]: { count: 3, bytes: 950 } });
    const { exchange, writes } = w.request('PUT', `/v1/${ACCOUNT}/c/o`);
    const admitted = await writes.admit(await objectWrite(writes, 'c', 'o', 100));
    assert.equal(admitted, undefined);
    assert.deepEqual(exchange.held, []);
    assert.equal(w.ledger.openReservations, 0);
    assert.equal(exchange.decision, 'rejected:container_usage');
    assert.equal(exchange.refusal?.kind, 'container_usage');
    assert.equal(exchange.refusal?.limit, 1000);
    const reply = exchange.reply!;
    assert.equal(reply.status, 413);
    assert.match(String(reply.body), /^Upload exceeds quota\.\nQuota container_usage of level "default": at most 1000 bytes in this container, 950 used\.\n$/);
    assert.equal(reply.headers['content-type'], 'text/plain; charset=utf-8');
    assert.equal(reply.headers['x-quota-exceeded'], 'container_usage');
    assert.equal(reply.headers['x-quota-level'], 'default');
    assert.equal(reply.headers['x-quota-limit'], '1000');
    assert.equal(reply.headers['x-quota-enforced'], 'hard');
    assert.equal(exchange.answeredHere, true);
    const counted = (await w.metrics.rejections.get()).values.find((sample) => sample.labels.kind === 'container_usage' && sample.labels.level === 'default');
    assert.equal(counted?.value, 1, 'counted in the rejections metric');
  });

  test('over container_count: Swift\'s 403 "Reached container limit" (the replaced container looked up first)', async () => {
    const w = await world({ [A]: { count: 2, bytes: 0 } });
    const { exchange, writes } = w.request('PUT', `/v1/${ACCOUNT}/third`);
    assert.equal(await writes.admit(await containerWrite(writes, 'third')), undefined);
    assert.ok(w.swift.calls.includes(`HEAD /v1/${ACCOUNT}/third`), 'an existing container would be an update: asked');
    assert.equal(exchange.decision, 'rejected:container_count');
    assert.equal(exchange.reply?.status, 403);
    assert.match(String(exchange.reply?.body), /^Reached container limit of 2\.\n/);
    assert.equal(exchange.reply?.headers['x-quota-exceeded'], 'container_count');
  });

  test('a re-PUT of an existing container at the limit passes (Swift updates it)', async () => {
    const w = await world({ [A]: { count: 2, bytes: 0 } });
    w.swift.callerHead = { status: 204, headers: {} };
    const { exchange, writes } = w.request('PUT', `/v1/${ACCOUNT}/existing`);
    assert.ok(await writes.admit(await containerWrite(writes, 'existing')));
    assert.equal(exchange.reply, undefined);
  });

  test('in the S3 dialect the same refusals are s3api\'s XML: EntityTooLarge, TooManyBuckets (quota headers kept)', async () => {
    const w = await world({ [C]: { count: 3, bytes: 950 }, [A]: { count: 2, bytes: 0 } });
    const object = w.request('PUT', `/v1/${ACCOUNT}/c/o`);
    object.exchange.dialect = 's3';
    assert.equal(await object.writes.admit(await objectWrite(object.writes, 'c', 'o', 100)), undefined);
    assert.equal(object.exchange.reply?.status, 400);
    assert.equal(object.exchange.reply?.headers['content-type'], 'application/xml');
    assert.equal(object.exchange.reply?.headers['x-quota-exceeded'], 'container_usage');
    assert.match(String(object.exchange.reply?.body), /^<\?xml version='1\.0' encoding='UTF-8'\?>\n<Error><Code>EntityTooLarge<\/Code><Message>Upload exceeds quota\. Quota container_usage/);
    assert.equal(object.exchange.decision, 'rejected:container_usage');

    const bucket = w.request('PUT', `/v1/${ACCOUNT}/third`);
    bucket.exchange.dialect = 's3';
    assert.equal(await bucket.writes.admit(await containerWrite(bucket.writes, 'third')), undefined);
    assert.equal(bucket.exchange.reply?.status, 400);
    assert.match(String(bucket.exchange.reply?.body), /<Code>TooManyBuckets<\/Code><Message>Reached container limit of 2\./);
  });

  test('admit(write, alsoHeld): refused, what the request held before is given back at once', async () => {
    const w = await world({ [C]: { count: 0, bytes: 0 }, [`c/${ACCOUNT}/full`]: { count: 0, bytes: 1000 } });
    const { exchange, writes } = w.request('PUT', `/v1/${ACCOUNT}/c/o`);
    const first = await writes.admit(await objectWrite(writes, 'c', 'o', 100));
    assert.ok(first);
    assert.deepEqual(await w.used(C), { count: 1, bytes: 100 });
    const refused = await writes.admit(await objectWrite(writes, 'full', 'o', 1), exchange.held);
    assert.equal(refused, undefined);
    assert.equal(first.reservation.settled, true);
    assert.deepEqual(await w.used(C), { count: 0, bytes: 0 }, 'released, not committed');
    assert.equal(w.ledger.openReservations, 0);
    assert.equal(exchange.decision, 'rejected:container_usage');
  });

  test('Swift refuses the caller (403 to the question): its own answer, nothing read or held', async () => {
    const w = await world({ [C]: { count: 3, bytes: 300 } });
    w.swift.probeAnswer = { status: 403, headers: { 'content-type': 'text/html; charset=UTF-8' }, body: Buffer.from('<html><h1>Forbidden</h1></html>') };
    const { exchange, writes } = w.request('PUT', `/v1/${ACCOUNT}/c/o`);
    assert.equal(await writes.authorised(ACCOUNT, 'c', 'o'), undefined);
    assert.equal(exchange.reply?.status, 403);
    assert.equal(String(exchange.reply?.body), '<html><h1>Forbidden</h1></html>');
    assert.equal(exchange.decision, 'refused:403');
    assert.deepEqual(w.reads, [], 'no usage read for a caller Swift refuses');
  });
});

describe('Exchange: how a held write ends without Swift\'s answer', () => {
  test('the client goes before the request was sent (abandoned): what it held is released', async () => {
    const w = await world({ [C]: { count: 3, bytes: 300 } });
    const { exchange, edge, reservation } = await admittedWrite(w, 100);
    assert.equal(exchange.tracked, true, 'it follows the request once it holds something');
    edge.clientGoes();
    assert.equal(exchange.over, true);
    assert.equal(reservation.settled, true);
    assert.deepEqual(await w.used(C), { count: 3, bytes: 300 });
    assert.equal(exchange.dispatching(), false, 'never sent to Swift afterwards');
  });

  test('the client went before anything was held: the first hold ends the exchange (abandoned) and is released', async () => {
    const w = await world({ [C]: { count: 3, bytes: 300 } });
    const { exchange, edge, writes } = w.request('PUT', `/v1/${ACCOUNT}/c/early`);
    edge.clientGoes();
    assert.equal(exchange.over, false, 'nothing held yet: nothing to end');
    const reservation: Reservation = w.ledger.hold(C, { count: 1, bytes: 50 }, 'early');
    writes.hold(reservation);
    await Promise.resolve();
    assert.equal(exchange.over, true);
    assert.equal(reservation.settled, true);
    assert.deepEqual(await w.used(C), { count: 3, bytes: 300 });
    assert.equal(exchange.dispatching(), false, 'never sent to Swift afterwards');
  });

  test('abandoned, a hold made afterwards is released at once', async () => {
    const w = await world({ [C]: { count: 3, bytes: 300 } });
    const { exchange, edge, writes } = await admittedWrite(w, 100);
    edge.clientGoes();
    const late: Reservation = w.ledger.hold(C, { count: 1, bytes: 50 }, 'late');
    writes.hold(late);
    assert.equal(late.settled, true);
    assert.ok(!exchange.held.includes(late));
    assert.deepEqual(await w.used(C), { count: 3, bytes: 300 });
  });

  test('the client goes after the request was sent: still held until Swift answers (never on the client\'s word)', async () => {
    const w = await world({ [C]: { count: 3, bytes: 300 } });
    const { exchange, edge, reservation } = await admittedWrite(w, 100);
    exchange.dispatching();
    edge.clientGoes();
    assert.equal(reservation.settled, false);
    assert.deepEqual(await w.used(C), { count: 4, bytes: 400 });
    exchange.answered(201);
    assert.equal(reservation.settled, true);
    assert.deepEqual(await w.used(C), { count: 4, bytes: 400 });
  });

  test('the request to Swift failed after its whole body was sent: committed (Swift may have stored it)', async () => {
    const w = await world({ [C]: { count: 3, bytes: 300 } });
    const { exchange, reservation } = await admittedWrite(w, 100);
    exchange.dispatching();
    exchange.bodySent();
    exchange.failed();
    assert.equal(reservation.settled, true);
    assert.deepEqual(await w.used(C), { count: 4, bytes: 400 });
  });

  test('the request to Swift failed before its whole body was sent: released', async () => {
    const w = await world({ [C]: { count: 3, bytes: 300 } });
    const { exchange, reservation } = await admittedWrite(w, 100);
    exchange.dispatching();
    exchange.bodyStarted();
    exchange.failed();
    assert.equal(reservation.settled, true);
    assert.deepEqual(await w.used(C), { count: 3, bytes: 300 });
  });

  test('endsWith runs once the exchange ends, at once if it has', async () => {
    const w = await world({ [C]: { count: 3, bytes: 300 } });
    const { exchange, writes } = await admittedWrite(w, 100);
    const ran: string[] = [];
    writes.endsWith(() => ran.push('before'));
    assert.equal(ran.length, 0);
    exchange.dispatching();
    exchange.answered(201);
    assert.deepEqual(ran, ['before']);
    writes.endsWith(() => ran.push('after'));
    assert.deepEqual(ran, ['before', 'after']);
  });
});
