/**
 * A queue of event bodies in a directory that several processes write at once: the workers of one proxy and
 * proxies on other hosts sharing the volume. Each process is a writer with an id of its own (host, pid and a
 * random part) and names its files `<time>.<writer>.<seq>.<bytes>.json`, so no two writers ever pick the same
 * name and none can overwrite another's event. A file is written under a temporary name, flushed to the disk,
 * renamed into place and the directory flushed too, before the event counts as queued: a crash or a power loss
 * leaves a whole event or none, and never loses one that was reported queued.
 *
 * Any process can read the whole queue (`scan`) and take events out in order (`next`, `remove`); which one does
 * is decided outside (queue-lease.ts), so that one process delivers at a time. The order is each event's time
 * across writers and each writer's own sequence within it (order.ts). A file is removed only once delivered.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { eventFileName, parseEventFileName, PendingEvents, type PendingEvent } from './queue-order.js';
import { registerLiveWriter, safeHostName, Temporaries, TEMPORARY, temporaryFileName } from './queue-temporaries.js';

/**
 * A temporary file still there after this long was left by a writer that died while writing it (or a disk
 * stalled that long): it is removed, and no longer holds back the events after it (queue-temporaries.ts).
 */
export const ABANDONED_TEMPORARY_MS = 60_000;
/** How often a head held back by an event still being written looks again (a scan each time). */
const HELD_BACK_POLL_MS = 100;

export interface QueuedEvent {
  readonly name: string;
  readonly body: string;
}

export interface DiskQueueOptions {
  /** This process's writer id (default: host, pid and a random part). */
  readonly writerId?: string;
  /**
   * How long an event waits before it may be taken out, so that one another writer emitted a moment earlier
   * and is still writing can land and go first. 0 for a queue with one writer.
   */
  readonly settleMs?: number;
  /** The wall clock: events' times, and the settle wait measured against them (default Date.now). */
  readonly now?: () => number;
  /**
   * A clock that only goes forward (default performance.now()): since when this process has seen an event (the
   * settle wait's bound when the wall clock steps back) or a temporary file (abandoned after a minute).
   */
  readonly monotonic?: () => number;
}

/** A writer id: the host (as far as it is a safe file name part), the pid and 8 random hex digits. */
export function newWriterId(): string {
  return `${safeHostName()}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export class DiskQueue {
  readonly writerId: string;
  private readonly pending = new PendingEvents();
  /** Bytes of this writer's events accepted but not yet seen on disk by a scan. */
  private writingBytes = 0;
  private nextSeq = 1;
  /** Writes happen one after another, so a writer's files appear in its sequence order. */
  private writing: Promise<unknown> = Promise.resolve();
  private readonly settleMs: number;
  private readonly now: () => number;
  private readonly monotonic: () => number;
  /** When the last scan began, by the wall clock (against events' times) and the monotonic one (against seenAt). */
  private lastScanStart = Number.NEGATIVE_INFINITY;
  private lastScanSteady = Number.NEGATIVE_INFINITY;
  /** Temporary files (events still being written, by any writer), as of the last scan. */
  private readonly temporaries = new Temporaries(ABANDONED_TEMPORARY_MS);

  private constructor(
    readonly dir: string,
    private readonly maxBytes: number,
    options: DiskQueueOptions,
  ) {
    this.writerId = options.writerId ?? newWriterId();
    this.settleMs = options.settleMs ?? 0;
    this.now = options.now ?? Date.now;
    this.monotonic = options.monotonic ?? (() => performance.now());
  }

  /** Opens (creating it if need be) the queue in `dir`; throws when the directory cannot be written. */
  static async open(dir: string, maxBytes: number, options: DiskQueueOptions = {}): Promise<DiskQueue> {
    const queue = new DiskQueue(dir, maxBytes, options);
    if (!/^[A-Za-z0-9-]+$/.test(queue.writerId)) throw new Error(`disk queue: bad writer id ${queue.writerId}`);
    registerLiveWriter(queue.writerId);
    await mkdir(dir, { recursive: true });
    // Found now rather than at the first event: a directory the proxy cannot write to would drop every event.
    const probe = path.join(dir, `probe-${queue.writerId}${TEMPORARY}`);
    await writeDurably(probe, '');
    await unlink(probe);
    await queue.scan();
    return queue;
  }

  /** Events on disk (all writers', as of the last scan, and this writer's since). */
  get depth(): number {
    return this.pending.count;
  }

  /** Bytes on disk as of the last scan plus this writer's since: what queue_max_bytes is checked against. */
  get size(): number {
    return this.pending.bytes + this.writingBytes;
  }

  /** Adds an event at this writer's end; false (and nothing written) when the queue would outgrow its limit. */
  push(body: string, time = this.now()): Promise<boolean> {
    const size = Buffer.byteLength(body);
    if (this.size + size > this.maxBytes) return Promise.resolve(false);
    const name = eventFileName(Number.isFinite(time) ? time : this.now(), this.writerId, this.nextSeq++, size);
    this.writingBytes += size;
    const file = path.join(this.dir, name);
    const done = this.writing.then(async () => {
      const temporary = temporaryFileName(file); // says the event's time, writer and sequence while it is written
      try {
        await writeDurably(temporary, body).catch(async (error: unknown) => {
          await unlink(temporary).catch(() => undefined); // a failed write must not hold the queue back
          throw error;
        });
        await rename(temporary, file);
        await syncDirectory(this.dir); // the rename itself is on disk only once the directory is
        this.pending.add(parseEventFileName(name)!, this.monotonic());
        return true;
      } finally {
        this.writingBytes -= size;
      }
    });
    this.writing = done.catch(() => undefined);
    return done;
  }

  /** Resolves when every push so far is on disk. */
  async flushed(): Promise<void> {
    await this.writing;
  }

  /**
   * Reads the directory: events other writers added since, events another process delivered (gone), events
   * still being written (which hold back later ones), and temporary files a dead writer left (removed after a
   * minute).
   */
  async scan(): Promise<void> {
    const start = this.now();
    const steadyStart = this.monotonic();
    const seen = new Set<string>();
    const found: PendingEvent[] = [];
    const temporaries = new Set<string>();
    for (const entry of await readdir(this.dir)) {
      if (entry.endsWith(TEMPORARY)) temporaries.add(entry);
      const parsed = parseEventFileName(entry);
      if (!parsed) continue;
      seen.add(entry);
      if (this.pending.has(entry)) continue;
      // A file of the first layout (one writer, `<seq>.json`) carries no size in its name.
      if (parsed.bytes < 0) parsed.bytes = await stat(path.join(this.dir, entry)).then((s) => s.size, () => 0);
      found.push(parsed);
    }
    // Gone from the directory: delivered by another process (an own event pushed after the listing stays).
    this.pending.retainOnly((name) => seen.has(name) || this.isOwnRecent(name, steadyStart));
    for (const event of found) this.pending.add(event, steadyStart);
    for (const name of this.temporaries.update(temporaries, steadyStart)) {
      await unlink(path.join(this.dir, name)).catch(() => undefined);
    }
    this.lastScanStart = start;
    this.lastScanSteady = steadyStart;
  }

  /** An own event added by push after the scan listed the directory. */
  private isOwnRecent(name: string, scanStart: number): boolean {
    return this.pending.seenAt(name) >= scanStart;
  }

  /**
   * The next event to deliver: the earliest by time of every writer's oldest. Undefined when the queue is
   * empty or the next one is still settling; then `readyIn` says how long to wait before scanning again.
   */
  async peek(): Promise<QueuedEvent | undefined> {
    const head = this.pending.head();
    if (!head || this.readyIn(head) > 0) return undefined;
    const file = path.join(this.dir, head.name);
    try {
      return { name: head.name, body: await readFile(file, 'utf8') };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      this.pending.delete(head.name); // delivered by another process meanwhile
      return this.peek();
    }
  }

  /** Milliseconds until the next event may go (0: now, or nothing to send). */
  waitMs(): number {
    const head = this.pending.head();
    return head ? this.readyIn(head) : 0;
  }

  /**
   * An event may go once a scan that began `settleMs` after it was emitted (or, for a writer whose clock is
   * ahead, after this process first saw it) found every file written by then, and no event that would go before
   * it still being written (for a minute at most: queue-temporaries.ts); then it looks again every 100 ms.
   */
  private readyIn(head: PendingEvent): number {
    if (this.settleMs <= 0) return 0;
    // Emitted settleMs before the scan by the wall clock, or seen that long before it by the monotonic one (a
    // wall-clock step back here holds nothing back for the length of the step).
    const byTime = head.time + this.settleMs - this.lastScanStart;
    const bySight = this.pending.seenAt(head.name) + this.settleMs - this.lastScanSteady;
    const settling = Math.max(0, Math.min(byTime, bySight));
    if (settling > 0) return settling;
    const heldBack = this.temporaries.holdBack(head, this.pending, this.monotonic());
    return heldBack > 0 ? Math.min(heldBack, HELD_BACK_POLL_MS) : 0;
  }

  async remove(name: string): Promise<void> {
    await unlink(path.join(this.dir, name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    this.pending.delete(name);
  }
}

/** Writes a file and flushes it to the disk before resolving. */
async function writeDurably(file: string, body: string): Promise<void> {
  const handle = await open(file, 'w');
  try {
    await handle.writeFile(body);
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Flushes a directory's entries (names created, renamed or removed) to the disk. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
