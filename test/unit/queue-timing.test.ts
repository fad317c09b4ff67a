/**
 * The webhook queue's clocks, at the millisecond where each wait ends, with the production timing
 * (QUEUE_TIMING, ABANDONED_TEMPORARY_MS): the deliverer's lease taken over after 5 s of an unchanged file on
 * the waiting process's own monotonic clock, its heartbeat every second, an event's 500 ms settle wait, a
 * temporary file abandoned after 60 s. Every clock is passed in: nothing sleeps, and the ends are exact.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ABANDONED_TEMPORARY_MS, DiskQueue } from '../../src/notify/disk-queue.js';
import { DelivererLease } from '../../src/notify/queue-lease.js';
import { eventFileName, parseEventFileName, PendingEvents } from '../../src/notify/queue-order.js';
import { safeHostName, Temporaries, temporaryFileName } from '../../src/notify/queue-temporaries.js';
import { QUEUE_TIMING } from '../../src/notify/webhook.js';

const MB = 1024 * 1024;
const WALL = 1_800_000_000_000;

async function withDir(work: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sqp-queue-timing-'));
  try {
    await work(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('the delivery lease (queue-lease.ts) with QUEUE_TIMING', () => {
  test('an unchanged lease file is taken over 5 s after this process first saw it unchanged: not at 4,999 ms', async () => {
    await withDir(async (dir) => {
      let steady = 0;
      const holder = new DelivererLease(dir, 'h', { ...QUEUE_TIMING, monotonic: () => steady });
      const waiting = new DelivererLease(dir, 'w', { ...QUEUE_TIMING, monotonic: () => 1_000_000 + steady }); // its own clock
      assert.equal(await holder.check(), true);
      steady = 300;
      assert.equal(await waiting.check(), false, 'first seen: the 5 s start now');
      // The holder stops (killed, frozen): its file no longer changes.
      steady = 300 + 4_999;
      assert.equal(await waiting.check(), false, 'at 4,999 ms');
      steady = 300 + 5_000;
      assert.equal(await waiting.check(), true, 'at 5,000 ms');
      assert.equal(await holder.check(), false, 'the holder, back, finds the next generation and steps down');
    });
  });

  test('a heartbeat restarts the wait: a live holder beating every second is never taken over', async () => {
    await withDir(async (dir) => {
      let steady = 0;
      const holder = new DelivererLease(dir, 'h', { ...QUEUE_TIMING, monotonic: () => steady });
      const waiting = new DelivererLease(dir, 'w', { ...QUEUE_TIMING, monotonic: () => steady });
      await holder.check();
      await waiting.check();
      for (let beat = 1; beat <= 30; beat++) {
        steady = beat * 1_000;
        assert.equal(await holder.check(), true);
        steady = beat * 1_000 + 999;
        assert.equal(await waiting.check(), false, `beat ${beat}`);
      }
      // The last beat was at 30 s, seen at 30.999 s: taken over 5 s after that sight.
      steady = 30_999 + 4_999;
      assert.equal(await waiting.check(), false);
      steady = 30_999 + 5_000;
      assert.equal(await waiting.check(), true);
    });
  });

  test('the holder writes a beat when half a period (500 ms) has passed since the last, not before', async () => {
    await withDir(async (dir) => {
      let steady = 0;
      const holder = new DelivererLease(dir, 'h', { ...QUEUE_TIMING, monotonic: () => steady, now: () => WALL + steady });
      await holder.check();
      const file = path.join(dir, 'deliverer.0000000001.lock');
      const beat = async () => (JSON.parse(await readFile(file, 'utf8')) as { beat: number }).beat;
      assert.equal(await beat(), 1);
      steady = 499;
      await holder.check();
      assert.equal(await beat(), 1, 'no beat at 499 ms');
      steady = 500;
      await holder.check();
      assert.equal(await beat(), 2, 'a beat at 500 ms');
      steady = 999;
      await holder.check();
      assert.equal(await beat(), 2, 'the next one 500 ms after that one');
    });
  });
});

describe('the settle wait (disk-queue.ts) with QUEUE_TIMING', () => {
  test('an event may go once a scan began 500 ms after it was emitted: not at 499 ms', async () => {
    await withDir(async (dir) => {
      let now = WALL;
      const queue = await DiskQueue.open(dir, MB, { writerId: 'd', settleMs: QUEUE_TIMING.settleMs, now: () => now, monotonic: () => now - WALL });
      await queue.push('event', now);
      now += 499;
      await queue.scan();
      assert.equal(await queue.peek(), undefined);
      assert.equal(queue.waitMs(), 1);
      now += 1;
      await queue.scan();
      assert.equal((await queue.peek())?.body, 'event');
      assert.equal(queue.waitMs(), 0);
    });
  });

  test('an event from a writer whose clock is ahead goes 500 ms after this process first saw it', async () => {
    await withDir(async (dir) => {
      let steady = 0;
      const queue = await DiskQueue.open(dir, MB, { writerId: 'd', settleMs: QUEUE_TIMING.settleMs, now: () => WALL + steady, monotonic: () => steady });
      await writeFile(path.join(dir, eventFileName(WALL + 3_600_000, 'ahead', 1, 5)), 'ahead'); // an hour ahead
      steady = 100;
      await queue.scan(); // first seen at 100
      steady = 599;
      await queue.scan();
      assert.equal(await queue.peek(), undefined);
      assert.equal(queue.waitMs(), 1);
      steady = 600;
      await queue.scan();
      assert.equal((await queue.peek())?.body, 'ahead');
    });
  });
});

describe('temporary files (queue-temporaries.ts) with ABANDONED_TEMPORARY_MS', () => {
  /** An event of writer `writer` (a writer on another host: its pid cannot be checked) being written. */
  const writing = (time: number, writer = 'other', seq = 1) => temporaryFileName(eventFileName(time, writer, seq, 4));

  test('a temporary is abandoned (to be removed) 60 s after this process first saw it: not at 59,999 ms', () => {
    assert.equal(ABANDONED_TEMPORARY_MS, 60_000);
    const temporaries = new Temporaries(ABANDONED_TEMPORARY_MS);
    const names = new Set([writing(WALL)]);
    assert.deepEqual(temporaries.update(names, 1_000), []);
    assert.deepEqual(temporaries.update(names, 1_000 + 59_999), []);
    assert.deepEqual(temporaries.update(names, 1_000 + 60_000), [writing(WALL)]);
  });

  test('an earlier event being written holds the head back for what is left of its minute, then not at all', () => {
    const temporaries = new Temporaries(ABANDONED_TEMPORARY_MS);
    const pending = new PendingEvents();
    const head = parseEventFileName(eventFileName(WALL, 'd', 1, 4))!;
    pending.add(head, 0);
    temporaries.update(new Set([writing(WALL - 100)]), 1_000);
    assert.equal(temporaries.holdBack(head, pending, 1_000), 60_000);
    assert.equal(temporaries.holdBack(head, pending, 1_000 + 59_999), 1);
    assert.equal(temporaries.holdBack(head, pending, 1_000 + 60_000), 0);
  });

  test('a temporary that lands (or goes) and another that appears later: the minute runs from the later sight', () => {
    const temporaries = new Temporaries(ABANDONED_TEMPORARY_MS);
    const name = writing(WALL);
    temporaries.update(new Set([name]), 0);
    temporaries.update(new Set(), 30_000); // gone: landed, or removed
    assert.deepEqual(temporaries.update(new Set([name]), 40_000), []);
    assert.deepEqual(temporaries.update(new Set([name]), 60_000), [], 'not a minute since it was seen again');
    assert.deepEqual(temporaries.update(new Set([name]), 100_000), [name]);
  });

  test('an event being written after the head, or by a writer of this process that is no longer open, holds nothing back', () => {
    const temporaries = new Temporaries(ABANDONED_TEMPORARY_MS);
    const pending = new PendingEvents();
    const head = parseEventFileName(eventFileName(WALL, 'd', 1, 4))!;
    pending.add(head, 0);
    const gone = `${safeHostName()}-${process.pid}-0badc0de`; // this pid, never opened here: a previous run's
    temporaries.update(new Set([writing(WALL + 1), writing(WALL - 100, gone)]), 0);
    assert.equal(temporaries.holdBack(head, pending, 0), 0);
  });
});
