/**
 * Events still being written. A writer writes an event under its final name plus `.tmp`, flushes it and only
 * then renames it into place; until then the name alone says the event's time, writer and sequence. The
 * deliverer must not send a later event past one of those (disk-queue.ts): an event another process emitted a
 * moment earlier but is slow to flush goes first once it lands.
 *
 * A temporary stops holding the queue back when it lands (renamed: it is an event), when it is removed, or when
 * it counts as abandoned: seen by this process for `abandonMs` (a minute: a writer that died mid-write, or a
 * disk stalled that long; it is then removed), or written by a process of this host that is gone (a worker
 * killed mid-write, a previous run with the same pid in a container). Writers on other hosts are not checked:
 * their pids mean nothing here. So the queue waits for an event being written a minute at most.
 */
import { hostname } from 'node:os';
import { parseEventFileName, type PendingEvent, type PendingEvents } from './queue-order.js';

export const TEMPORARY = '.tmp';

/** The name an event is written under before it is renamed to `name`. */
export function temporaryFileName(name: string): string {
  return `${name}${TEMPORARY}`;
}

/** The writer ids of queues open in this process (several when a config reload reopens one). */
const liveInThisProcess = new Set<string>();

export function registerLiveWriter(writerId: string): void {
  liveInThisProcess.add(writerId);
}

/** `<host>-<pid>-<8 hex>` as newWriterId makes them; undefined for other ids. */
const WRITER_ID = /^(.+)-(\d+)-[0-9a-f]{8}$/;

export function safeHostName(): string {
  return hostname().replace(/[^A-Za-z0-9-]/g, '-').slice(0, 40) || 'host';
}

/** Whether the writer is a process of this host known to be gone; false when it cannot be told. */
export function writerGone(writerId: string): boolean {
  const match = WRITER_ID.exec(writerId);
  if (!match || match[1] !== safeHostName()) return false;
  const pid = Number(match[2]);
  if (pid === process.pid) return !liveInThisProcess.has(writerId); // a previous run with this pid
  try {
    process.kill(pid, 0); // signal 0: only asks whether the process exists
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH'; // EPERM: it exists, as another user
  }
}

interface Seen {
  readonly since: number;
  /** The event being written; undefined for other temporaries (lease beats, probes, the first layout). */
  readonly event: PendingEvent | undefined;
  gone: boolean;
}

export class Temporaries {
  private readonly seen = new Map<string, Seen>();

  constructor(private readonly abandonMs: number) {}

  /** Takes a directory listing's temporaries at `now` (a monotonic clock); returns those to remove. */
  update(names: ReadonlySet<string>, now: number): string[] {
    for (const name of this.seen.keys()) if (!names.has(name)) this.seen.delete(name);
    const abandoned: string[] = [];
    for (const name of names) {
      const known = this.seen.get(name);
      if (!known) {
        const event = parseEventFileName(name.slice(0, -TEMPORARY.length));
        const current = event && event.writer !== '' ? event : undefined; // the first layout is no longer written
        this.seen.set(name, { since: now, event: current, gone: current ? writerGone(current.writer) : false });
      } else if (now - known.since >= this.abandonMs) {
        abandoned.push(name);
        this.seen.delete(name);
      } else if (known.event && !known.gone) {
        known.gone = writerGone(known.event.writer); // died since it was first seen
      }
    }
    return abandoned;
  }

  /**
   * Milliseconds until `head` may go as far as events being written are concerned: until the earliest one that
   * would go before it is abandoned (0: none). It may land sooner: look again well before that.
   */
  holdBack(head: PendingEvent, pending: PendingEvents, now: number): number {
    let wait = 0;
    for (const { since, event, gone } of this.seen.values()) {
      if (!event || gone || !goesBefore(event, head, pending)) continue;
      wait = Math.max(wait, since + this.abandonMs - now);
    }
    return wait;
  }
}

/**
 * Whether an event being written would go before `head`. Not if it is the head's writer's (a writer's files
 * land in its sequence order, so one of its own left behind is a failed write), nor if its writer has an
 * earlier event waiting: it goes after that one, which goes after the head.
 */
function goesBefore(event: PendingEvent, head: PendingEvent, pending: PendingEvents): boolean {
  if (event.writer === head.writer) return false;
  const first = pending.firstOf(event.writer);
  if (first && first.seq < event.seq) return false;
  if (event.time !== head.time) return event.time < head.time;
  return event.writer < head.writer;
}
