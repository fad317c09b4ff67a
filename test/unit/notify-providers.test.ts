import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyBaseLogger } from 'fastify';
import { ConfigError } from '../../src/config/errors.js';
import type { NotifierConfig } from '../../src/config/load.js';
import { DiskQueue } from '../../src/notify/disk-queue.js';
import { createEvent, type QuotaEvent } from '../../src/notify/event.js';
import { MemoryProvider } from '../../src/notify/memory-provider.js';
import { loadProviderModule } from '../../src/notify/module-provider.js';
import type { DeliveryOutcome } from '../../src/notify/provider.js';
import { createHmac } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { deliveryHeaders, legacySignature, standardSigner, WebhookProvider } from '../../src/notify/webhook.js';

const noop = () => {};
const silent = { level: 'silent', fatal: noop, error: noop, warn: noop, info: noop, debug: noop, trace: noop, silent: noop, child: () => silent } as unknown as FastifyBaseLogger;
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/providers/${name}`, import.meta.url));

function event(n: number): QuotaEvent {
  return createEvent({
    type: 'soft_limit_exceeded', account: 'AUTH_a', container: 'c', kind: 'object_count', level: 'default',
    limit: 8, soft_limit: 8, hard_limit: 10, usage: 8 + n, grace_expires: null, caller: null, request: null,
  });
}

async function tempDir(): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), 'sqp-queue-'));
}

describe('DiskQueue', () => {
  test('first in, first out, and still there after reopening (a proxy restart)', async () => {
    const dir = await tempDir();
    try {
      const queue = await DiskQueue.open(dir, 1024 * 1024);
      for (const body of ['one', 'two', 'three']) assert.equal(await queue.push(body), true);
      assert.equal(queue.depth, 3);
      const first = await queue.peek();
      assert.equal(first?.body, 'one');
      await queue.remove(first!.name);

      const reopened = await DiskQueue.open(dir, 1024 * 1024);
      assert.equal(reopened.depth, 2);
      assert.equal((await reopened.peek())?.body, 'two');
      await reopened.push('four');
      const order: string[] = [];
      for (let next = await reopened.peek(); next; next = await reopened.peek()) {
        order.push(next.body);
        await reopened.remove(next.name);
      }
      assert.deepEqual(order, ['two', 'three', 'four'], 'new events go after the ones from before the restart');
      assert.deepEqual(await readdir(dir), []);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  test('a full queue refuses new events and keeps the old ones', async () => {
    const dir = await tempDir();
    try {
      const queue = await DiskQueue.open(dir, 10);
      assert.equal(await queue.push('12345678'), true);
      assert.equal(await queue.push('123'), false);
      assert.equal(queue.depth, 1);
      assert.equal(queue.size, 8);
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  test('an event half written when its writer died is removed once it has stayed a minute; other files are left alone', async () => {
    const dir = await tempDir();
    try {
      await writeFile(path.join(dir, '0000000000000007.json'), 'seven'); // the first layout: delivered first
      await writeFile(path.join(dir, '0000000000000008.json.tmp'), 'half');
      await writeFile(path.join(dir, 'README'), 'not an event');
      let now = Date.now();
      const queue = await DiskQueue.open(dir, 1024, { now: () => now, monotonic: () => now, writerId: 'w1' });
      assert.equal(queue.depth, 1);
      await queue.push('nine');
      // Another live writer's temporary file looks the same for a moment: it is removed only after a minute.
      assert.ok((await readdir(dir)).includes('0000000000000008.json.tmp'));
      now += 61_000;
      await queue.scan();
      const files = (await readdir(dir)).sort();
      assert.deepEqual(files.filter((name) => !name.endsWith('.w1.000000000001.4.json')), ['0000000000000007.json', 'README']);
      assert.equal(files.length, 3);
      assert.equal((await queue.peek())?.body, 'seven');
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});

describe('MemoryProvider', () => {
  const outcomes = () => {
    const seen: DeliveryOutcome[] = [];
    return { seen, report: (_provider: string, outcome: DeliveryOutcome) => void seen.push(outcome) };
  };

  test('delivers in order, never inside the emitting call', async () => {
    const got: number[] = [];
    const { seen, report } = outcomes();
    const provider = new MemoryProvider({ name: 'p', timeoutMs: 1000, report, log: silent, send: (e) => void got.push(e.usage) });
    for (let i = 1; i <= 3; i++) provider.enqueue(event(i));
    assert.deepEqual(got, [], 'enqueue returns before any send');
    await provider.close();
    assert.deepEqual(got, [9, 10, 11]);
    assert.deepEqual(seen, ['queued', 'queued', 'queued', 'ok', 'ok', 'ok']);
  });

  test('a send that throws or never settles is counted as failed, and the next event still goes out', async () => {
    const got: number[] = [];
    const { seen, report } = outcomes();
    const provider = new MemoryProvider({
      name: 'p',
      timeoutMs: 100,
      report,
      log: silent,
      send: (e) => {
        if (e.usage === 9) throw new Error('boom');
        if (e.usage === 10) return new Promise(() => {});
        got.push(e.usage);
        return undefined;
      },
    });
    for (let i = 1; i <= 3; i++) provider.enqueue(event(i));
    for (const deadline = Date.now() + 5000; got.length === 0 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    await provider.close();
    assert.deepEqual(got, [11]);
    assert.deepEqual(seen.filter((o) => o !== 'queued'), ['failed', 'failed', 'ok']);
  });
});

describe('loadProviderModule', () => {
  const config = (file: string): Extract<NotifierConfig, { type: 'module' }> => ({
    name: 'mine',
    type: 'module',
    timeoutSeconds: 1,
    modulePath: file,
    place: { file: 'proxy.conf', line: 42, section: 'notify:mine', key: 'module' },
    options: { channel: '#quota' },
  });

  test('a default export object with send(event)', async () => {
    const loaded = await loadProviderModule(config(fixture('object-provider.mjs')));
    const module = (await import(fixture('object-provider.mjs'))) as { received: QuotaEvent[] };
    const sent = event(1);
    await loaded.send(sent);
    assert.deepEqual(module.received.at(-1), sent);
  });

  test('a default export class with send(event) is built once with the section\'s other settings', async () => {
    const loaded = await loadProviderModule(config(fixture('class-provider.mjs')));
    const { default: ListProvider } = (await import(fixture('class-provider.mjs'))) as { default: { instances: Array<{ options: unknown; events: unknown[] }> } };
    const instance = ListProvider.instances.at(-1)!;
    assert.deepEqual(instance.options, { channel: '#quota' });
    await loaded.send(event(2));
    assert.equal(instance.events.length, 1);
  });

  const failures: Array<[string, RegExp]> = [
    ['missing.mjs', /does not exist/],
    ['no-default.mjs', /has no default export/],
    ['no-send.mjs', /has no send\(event\) method/],
    ['broken.mjs', /cannot be loaded/],
  ];
  for (const [file, reason] of failures) {
    test(`${file}: a clear start-up error at the module line`, async () => {
      await assert.rejects(loadProviderModule(config(fixture(file))), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, /^proxy\.conf:42: \[notify:mine\] module: provider module|^proxy\.conf:42: \[notify:mine\] module: the default export/);
        assert.match(error.message, reason);
        return true;
      });
    });
  }
});

describe('webhook signature', () => {
  const body = '{"id":"evt_1","a":1}';
  const at = new Date(1_700_000_000_123);

  test('Standard Webhooks: id, timestamp, and v1,<base64 HMAC-SHA256 of "id.timestamp.body"> (known answer)', () => {
    const headers = deliveryHeaders({ secret: 's3cret', signature: 'standard' }, standardSigner('s3cret'), 'evt_1', body, at);
    const expected = createHmac('sha256', 's3cret').update(`evt_1.1700000000.${body}`).digest('base64');
    assert.deepEqual(headers, { 'webhook-id': 'evt_1', 'webhook-timestamp': '1700000000', 'webhook-signature': `v1,${expected}` });
  });

  test('a whsec_ secret is base64 of the key, as the scheme\'s own verifier reads it', () => {
    const key = Buffer.from('0123456789abcdef0123456789abcdef');
    const secret = `whsec_${key.toString('base64')}`;
    const now = new Date();
    const headers = deliveryHeaders({ secret, signature: 'standard' }, standardSigner(secret), 'evt_2', body, now);
    assert.equal(headers['webhook-signature'], `v1,${createHmac('sha256', key).update(`evt_2.${headers['webhook-timestamp']}.${body}`).digest('base64')}`);
    // The reference library's verifier accepts it, and refuses the same delivery with another body or an old timestamp.
    assert.deepEqual(new Webhook(secret).verify(body, headers), JSON.parse(body));
    assert.throws(() => new Webhook(secret).verify(body.replace('1', '2'), headers));
    const old = deliveryHeaders({ secret, signature: 'standard' }, standardSigner(secret), 'evt_2', body, new Date(now.getTime() - 3_600_000));
    assert.throws(() => new Webhook(secret).verify(body, old), /timestamp/i);
  });

  test('legacy: X-Quota-Signature, HMAC-SHA256 of the body as sha256=<hex>; both: the two side by side', () => {
    // Known answer: echo -n '{"a":1}' | openssl dgst -sha256 -hmac s3cret
    assert.equal(legacySignature('s3cret', '{"a":1}'), 'sha256=5910e62016ef5034272c926c27071992a465c2335cecf41851bda071577f4f6d');
    assert.deepEqual(deliveryHeaders({ secret: 's3cret', signature: 'legacy' }, standardSigner('s3cret'), 'evt_1', body, at), {
      'x-quota-signature': legacySignature('s3cret', body),
    });
    const both = deliveryHeaders({ secret: 's3cret', signature: 'both' }, standardSigner('s3cret'), 'evt_1', body, at);
    assert.deepEqual(Object.keys(both).sort(), ['webhook-id', 'webhook-signature', 'webhook-timestamp', 'x-quota-signature']);
  });

  test('without a secret: id and timestamp (a receiver still drops duplicates), no signature', () => {
    assert.deepEqual(deliveryHeaders({ signature: 'standard' }, undefined, 'evt_1', body, at), { 'webhook-id': 'evt_1', 'webhook-timestamp': '1700000000' });
  });
});

describe('webhook queue directory', () => {
  test('one that cannot be written stops start-up with a ConfigError naming queue_dir', async () => {
    const dir = await tempDir();
    try {
      const notADirectory = path.join(dir, 'file');
      await writeFile(notADirectory, 'x');
      const queueDir = path.join(notADirectory, 'queue');
      const config: Extract<NotifierConfig, { type: 'webhook' }> = {
        name: 'ops', type: 'webhook', timeoutSeconds: 1, url: new URL('http://127.0.0.1:1/'), signature: 'standard',
        queueDir, queueDirPlace: { file: 'proxy.conf', line: 7, section: 'notify:ops', key: 'queue_dir' },
        queueMaxBytes: 4096, retryMinSeconds: 1, retryMaxSeconds: 1,
      };
      await assert.rejects(WebhookProvider.open(config, () => {}, silent), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.match(error.message, new RegExp(`^proxy\\.conf:7: \\[notify:ops\\] queue_dir: cannot use ${queueDir.replaceAll('.', '\\.')} for the event queue: .*ENOTDIR`));
        return true;
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
