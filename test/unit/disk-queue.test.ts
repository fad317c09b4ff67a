/**
 * The disk queue shared by several writers (the workers of a proxy, proxies on one volume) and the lease that
 * decides which process delivers: real files in a temporary directory, clocks passed in.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { watch } from 'node:fs';
import { mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DiskQueue } from '../../src/notify/disk-queue.js';
import { spawnSync } from 'node:child_process';
import { DelivererLease } from '../../src/notify/queue-lease.js';
import { eventFileName, parseEventFileName } from '../../src/notify/queue-order.js';

async function withDir(work: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sqp-shared-queue-'));
  try {
    await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Takes everything out of `queue` in its order. */
async function drain(queue: DiskQueue): Promise<string[]> {
  const bodies: string[] = [];
  await queue.scan();
  for (let next = await queue.peek(); next; next = await queue.peek()) {
    bodies.push(next.body);
    await queue.remove(next.name);
  }
  return bodies;
}

const MB = 1024 * 1024;

describe('a queue directory written by several processes', () => {
  test('file names carry time, writer, sequence and size, and read back', () => {
    const name = eventFileName(1796565769664, 'vm-123-0a1b2c3d', 7, 512);
    assert.equal(name, '1796565769664.vm-123-0a1b2c3d.000000000007.512.json');
    assert.deepEqual(parseEventFileName(name), { name, time: 1796565769664, writer: 'vm-123-0a1b2c3d', seq: 7, bytes: 512 });
    assert.deepEqual(parseEventFileName('0000000000000042.json'), { name: '0000000000000042.json', time: 0, writer: '', seq: 42, bytes: -1 });
    assert.equal(parseEventFileName('deliverer.0000000001.lock'), undefined);
  });

  test('two writers pushing at once: every event kept (none overwrites another), all of them seen by either', async () => {
    await withDir(async (dir) => {
      const a = await DiskQueue.open(dir, MB);
      const b = await DiskQueue.open(dir, MB);
      assert.notEqual(a.writerId, b.writerId);
      const pushed = await Promise.all(Array.from({ length: 200 }, (_, i) => [a.push(`a${i}`), b.push(`b${i}`)]).flat());
      assert.ok(pushed.every(Boolean));
      assert.equal((await readdir(dir)).filter((name) => name.endsWith('.json')).length, 400);
      const bodies = await drain(a);
      assert.equal(bodies.length, 400);
      assert.equal(new Set(bodies).size, 400);
      // Each writer's events in its own order.
      for (const writer of ['a', 'b']) {
        const own = bodies.filter((body) => body.startsWith(writer)).map((body) => Number(body.slice(1)));
        assert.deepEqual(own, [...own].sort((x, y) => x - y), `${writer} in order`);
      }
      await b.scan();
      assert.equal(b.depth, 0, 'what another process delivered leaves the depth too');
      assert.equal(b.size, 0);
    });
  });

  test('order: the earliest time first across writers, a writer\'s own sequence within it (even if its clock stepped back)', async () => {
    await withDir(async (dir) => {
      const a = await DiskQueue.open(dir, MB, { writerId: 'a' });
      const b = await DiskQueue.open(dir, MB, { writerId: 'b' });
      await a.push('a@10', 10);
      await b.push('b@20', 20);
      await b.push('b@15', 15); // b's clock stepped back: still after b@20
      await a.push('a@30', 30);
      await b.push('b@30', 30); // a tie: writer id decides
      await a.push('a@40', 40);
      assert.deepEqual(await drain(b), ['a@10', 'b@20', 'b@15', 'a@30', 'b@30', 'a@40']);
    });
  });

  test('an event waits settleMs for one another writer emitted a moment earlier and is still writing', async () => {
    await withDir(async (dir) => {
      let now = 1_000_000;
      const clock = () => now;
      const deliverer = await DiskQueue.open(dir, MB, { writerId: 'd', settleMs: 500, now: clock, monotonic: clock });
      const slow = await DiskQueue.open(dir, MB, { writerId: 's', now: clock });
      await deliverer.push('later', now);
      await deliverer.scan();
      assert.equal(await deliverer.peek(), undefined, 'not before the settle time');
      assert.equal(deliverer.waitMs(), 500);
      await slow.push('earlier', now - 100); // emitted before, landed after
      now += 500;
      await deliverer.scan();
      assert.deepEqual(await drain(deliverer), ['earlier', 'later']);
    });
  });

  test('a wall-clock step back on the deliverer does not hold back events it has already seen for the length of the step', async () => {
    await withDir(async (dir) => {
      let now = 1_800_000_000_000;
      let steady = 0;
      const deliverer = await DiskQueue.open(dir, MB, { writerId: 'd', settleMs: 500, now: () => now, monotonic: () => steady });
      await deliverer.push('event', now);
      await deliverer.scan();
      now -= 3_600_000; // NTP steps the clock an hour back
      now += 600;
      steady += 600;
      await deliverer.scan();
      assert.equal(deliverer.waitMs(), 0);
      assert.deepEqual(await drain(deliverer), ['event'], 'sent 500 ms after it was seen, not in an hour');
    });
  });

  test('an event is written under its final name plus .tmp, which says its time, writer and sequence', async () => {
    await withDir(async (dir) => {
      const created: string[] = [];
      const watcher = watch(dir, (_, name) => name && created.push(String(name)));
      try {
        const queue = await DiskQueue.open(dir, MB, { writerId: 'w' });
        await queue.push('body', 1_800_000_000_123);
        await new Promise((resolve) => setTimeout(resolve, 50)); // the watcher's last notices
      } finally {
        watcher.close();
      }
      assert.ok(created.includes(`${eventFileName(1_800_000_000_123, 'w', 1, 4)}.tmp`), created.join(' '));
    });
  });

  test('an earlier event another writer is still writing (only its .tmp on disk) holds back later ones until it lands', async () => {
    await withDir(async (dir) => {
      let now = 1_800_000_000_000;
      let steady = 0;
      const deliverer = await DiskQueue.open(dir, MB, { writerId: 'd', settleMs: 500, now: () => now, monotonic: () => steady });
      // Writer b emitted at t0 - 100 and is slow to flush it: only its temporary file exists.
      const slow = path.join(dir, eventFileName(now - 100, 'b', 1, 7));
      await writeFile(`${slow}.tmp`, 'earl');
      await deliverer.push('later', now);
      now += 600;
      steady += 600;
      await deliverer.scan();
      assert.equal(await deliverer.peek(), undefined, 'past the settle time, but an earlier event is still being written');
      assert.ok(deliverer.waitMs() > 0 && deliverer.waitMs() <= 100, `look again soon (${deliverer.waitMs()} ms)`);
      await writeFile(`${slow}.tmp`, 'earlier');
      await rename(`${slow}.tmp`, slow); // b's write completes
      now += 100;
      steady += 100;
      await deliverer.scan();
      assert.deepEqual(await drain(deliverer), ['earlier', 'later']);
    });
  });

  test('a temporary that never lands holds the queue back a minute at most (from when the deliverer first saw it), then is removed', async () => {
    await withDir(async (dir) => {
      let now = 1_800_000_000_000;
      let steady = 0;
      await writeFile(`${path.join(dir, eventFileName(now - 100, 'b', 1, 7))}.tmp`, 'half');
      const deliverer = await DiskQueue.open(dir, MB, { writerId: 'd', settleMs: 500, now: () => now, monotonic: () => steady });
      await deliverer.push('later', now);
      now += 59_000;
      steady += 59_000;
      await deliverer.scan();
      assert.equal(await deliverer.peek(), undefined, 'held back at 59 s');
      now += 1000;
      steady += 1000;
      await deliverer.scan();
      assert.deepEqual(await drain(deliverer), ['later'], 'abandoned at 60 s');
      assert.deepEqual((await readdir(dir)).filter((name) => name.endsWith('.tmp')), []);
    });
  });

  test('a temporary holds nothing back when its writer is a process of this host that is gone, or when it goes after the head anyway', async () => {
    await withDir(async (dir) => {
      const now = 1_800_000_000_000;
      let steady = 0;
      const deliverer = await DiskQueue.open(dir, MB, { settleMs: 500, now: () => now + steady, monotonic: () => steady });
      const host = deliverer.writerId.replace(/-\d+-[0-9a-f]{8}$/, '');
      const exited = spawnSync(process.execPath, ['-e', '']).pid!;
      const gone = [`${host}-${process.pid}-0badc0de`, `${host}-${exited}-0badc0de`]; // a previous process with this pid; an exited one
      for (const writer of gone) await writeFile(`${path.join(dir, eventFileName(now - 100, writer, 1, 4))}.tmp`, 'half');
      // Writer c stepped its clock back: its event being written goes after its first, which goes after the head.
      await writeFile(path.join(dir, eventFileName(now + 50, 'c', 1, 7)), 'c-first');
      await writeFile(`${path.join(dir, eventFileName(now - 200, 'c', 2, 8))}.tmp`, 'c-second');
      await deliverer.push('head', now);
      steady += 600;
      await deliverer.scan();
      assert.equal((await deliverer.peek())?.body, 'head');
    });
  });

  test('queue_max_bytes counts every writer\'s events', async () => {
    await withDir(async (dir) => {
      const a = await DiskQueue.open(dir, 20);
      const b = await DiskQueue.open(dir, 20);
      assert.equal(await a.push('0123456789'), true);
      await b.scan();
      assert.equal(b.size, 10);
      assert.equal(await b.push('0123456789'), true);
      assert.equal(await b.push('x'), false, 'full: 20 bytes on disk');
    });
  });

  test('a dead writer\'s events are delivered by a process started later (none stranded)', async () => {
    await withDir(async (dir) => {
      const dead = await DiskQueue.open(dir, MB, { writerId: 'gone-1-aaaaaaaa' });
      for (const body of ['one', 'two', 'three']) await dead.push(body);
      const survivor = await DiskQueue.open(dir, MB);
      await survivor.push('four');
      assert.deepEqual(await drain(survivor), ['one', 'two', 'three', 'four']);
      assert.deepEqual((await readdir(dir)).filter((name) => name.endsWith('.json')), []);
    });
  });
});

describe('the delivery lease', () => {
  const timing = { beatMs: 1000, leaseMs: 5000 };

  test('one process holds it; another takes over once the holder\'s heartbeat stops for leaseMs, and the old holder steps down', async () => {
    await withDir(async (dir) => {
      let now = 0;
      const a = new DelivererLease(dir, 'a', { ...timing, monotonic: () => now });
      const b = new DelivererLease(dir, 'b', { ...timing, monotonic: () => now });
      assert.equal(await a.check(), true);
      assert.equal(await b.check(), false);
      for (let i = 0; i < 10; i++) {
        now += 1000;
        assert.equal(await a.check(), true, 'a heartbeats');
        assert.equal(await b.check(), false, 'b sees the heartbeat');
      }
      // a stops (killed, frozen): its file no longer changes.
      for (let i = 0; i < 4; i++) {
        now += 1000;
        assert.equal(await b.check(), false, `not before leaseMs (${i})`);
      }
      now += 1000;
      assert.equal(await b.check(), true, 'b takes over after leaseMs');
      assert.equal(await a.check(), false, 'a, back, finds a newer lease and stops delivering');
      assert.deepEqual((await readdir(dir)).filter((name) => name.endsWith('.lock')), ['deliverer.0000000002.lock']);
      assert.match(await readFile(path.join(dir, 'deliverer.0000000002.lock'), 'utf8'), /"writer":"b"/);
    });
  });

  test('of several processes finding the lease expired, exactly one takes it', async () => {
    await withDir(async (dir) => {
      let now = 0;
      const holder = new DelivererLease(dir, 'h', { ...timing, monotonic: () => now });
      assert.equal(await holder.check(), true);
      const others = Array.from({ length: 8 }, (_, i) => new DelivererLease(dir, `o${i}`, { ...timing, monotonic: () => now }));
      await Promise.all(others.map((lease) => lease.check()));
      now += 6000;
      const taken = await Promise.all(others.map((lease) => lease.check()));
      assert.equal(taken.filter(Boolean).length, 1);
    });
  });

  test('a holder that stops releases it: the next process takes over at once', async () => {
    await withDir(async (dir) => {
      const now = 0;
      const a = new DelivererLease(dir, 'a', { ...timing, monotonic: () => now });
      const b = new DelivererLease(dir, 'b', { ...timing, monotonic: () => now });
      assert.equal(await a.check(), true);
      assert.equal(await b.check(), false);
      await a.release();
      assert.equal(a.held, false);
      assert.equal(await b.check(), true, 'no wait for leaseMs');
    });
  });
  test('a wall-clock step forward on a waiting process (NTP) does not make a live holder\'s lease look expired', async () => {
    await withDir(async (dir) => {
      let steady = 0; // both processes' monotonic clock (performance.now())
      let wallB = 1_800_000_000_000;
      const a = new DelivererLease(dir, 'a', { ...timing, monotonic: () => steady, now: () => 1_800_000_000_000 + steady });
      const b = new DelivererLease(dir, 'b', { ...timing, monotonic: () => steady, now: () => wallB });
      assert.equal(await a.check(), true);
      for (let i = 0; i < 3; i++) {
        steady += 1000;
        wallB += 1000;
        assert.equal(await a.check(), true);
        assert.equal(await b.check(), false);
      }
      // b's wall clock is stepped 10 s forward, and b looks at the lease again 10 ms later, before a's next beat.
      steady += 10;
      wallB += 10_000;
      assert.equal(await b.check(), false, 'a beat 10 ms ago by any steady clock: no takeover');
      steady += 990;
      assert.equal(await a.check(), true, 'a still holds the lease');
    });
  });

  test('a wall-clock step back on the holder does not stop its heartbeat (no takeover while it runs)', async () => {
    await withDir(async (dir) => {
      let steady = 0;
      let wallA = 1_800_000_000_000;
      const a = new DelivererLease(dir, 'a', { ...timing, monotonic: () => steady, now: () => wallA });
      const b = new DelivererLease(dir, 'b', { ...timing, monotonic: () => steady, now: () => 1_800_000_000_000 + steady });
      assert.equal(await a.check(), true);
      assert.equal(await b.check(), false);
      wallA -= 3_600_000; // a's clock is stepped an hour back
      const lock = path.join(dir, 'deliverer.0000000001.lock');
      for (let i = 0; i < 10; i++) {
        steady += 1000;
        wallA += 1000;
        const before = await readFile(lock, 'utf8');
        assert.equal(await a.check(), true, `a holds (${i})`);
        assert.notEqual(await readFile(lock, 'utf8'), before, `a beat (${i})`);
        assert.equal(await b.check(), false, `b sees a's heartbeat (${i})`);
      }
    });
  });

  test('a process whose provider settings differ from the holder\'s is told once (the holder sends its events)', async () => {
    await withDir(async (dir) => {
      const now = 0;
      const told: string[] = [];
      const holder = new DelivererLease(dir, 'h', { ...timing, now: () => now, settings: 'aaaa' });
      const same = new DelivererLease(dir, 's', { ...timing, now: () => now, settings: 'aaaa', onOtherSettings: () => told.push('same') });
      const other = new DelivererLease(dir, 'o', { ...timing, now: () => now, settings: 'bbbb', onOtherSettings: (h) => told.push(`other saw ${h.writer}`) });
      assert.equal(await holder.check(), true);
      for (let i = 0; i < 3; i++) await Promise.all([same.check(), other.check()]);
      assert.deepEqual(told, ['other saw h']);
    });
  });
});
