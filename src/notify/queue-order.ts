/**
 * The names of queued event files and the order events leave the queue in. A name carries everything the
 * order needs, so one directory listing orders the whole queue without opening a file:
 * `<time ms, 13+ digits>.<writer id>.<writer's sequence, 12+ digits>.<bytes>.json`.
 *
 * Order: every writer's events in its own sequence (a writer never overtakes itself, even if its clock steps
 * back), and between writers the earliest time first (ties: writer id, then sequence). Files of the first
 * layout (`<16-digit sequence>.json`, one writer) come first, in their sequence.
 */

export interface PendingEvent {
  readonly name: string;
  readonly time: number;
  readonly writer: string;
  readonly seq: number;
  /** -1 when the name does not say (the first layout). */
  bytes: number;
}

const NAME = /^(\d{13,})\.([A-Za-z0-9-]+)\.(\d{12,})\.(\d+)\.json$/;
const FIRST_LAYOUT = /^(\d{16})\.json$/;

export function eventFileName(time: number, writer: string, seq: number, bytes: number): string {
  const ms = String(Math.max(0, Math.floor(time))).padStart(13, '0');
  return `${ms}.${writer}.${String(seq).padStart(12, '0')}.${bytes}.json`;
}

export function parseEventFileName(name: string): PendingEvent | undefined {
  const match = NAME.exec(name);
  if (match) return { name, time: Number(match[1]), writer: match[2]!, seq: Number(match[3]), bytes: Number(match[4]) };
  const first = FIRST_LAYOUT.exec(name);
  if (first) return { name, time: 0, writer: '', seq: Number(first[1]), bytes: -1 };
  return undefined;
}

function before(a: PendingEvent, b: PendingEvent): boolean {
  if (a.time !== b.time) return a.time < b.time;
  if (a.writer !== b.writer) return a.writer < b.writer;
  return a.seq < b.seq;
}

/** The events waiting, by writer, each writer's in sequence order. */
export class PendingEvents {
  private readonly byWriter = new Map<string, PendingEvent[]>();
  private readonly byName = new Map<string, { event: PendingEvent; seenAt: number }>();
  private total = 0;

  get count(): number {
    return this.byName.size;
  }

  get bytes(): number {
    return this.total;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  /** When this process first saw the event (pushed it, or found it in a scan; its monotonic clock); +Infinity if not pending. */
  seenAt(name: string): number {
    return this.byName.get(name)?.seenAt ?? Number.POSITIVE_INFINITY;
  }

  /** A writer's next event (its lowest sequence waiting), if any. */
  firstOf(writer: string): PendingEvent | undefined {
    return this.byWriter.get(writer)?.[0];
  }

  /** Adds an event (again: no change). */
  add(event: PendingEvent, seenAt: number): void {
    if (this.byName.has(event.name)) return;
    this.byName.set(event.name, { event, seenAt });
    this.total += Math.max(0, event.bytes);
    let list = this.byWriter.get(event.writer);
    if (!list) this.byWriter.set(event.writer, (list = []));
    let at = list.length; // nearly always the end: a writer's files appear in sequence order
    while (at > 0 && list[at - 1]!.seq > event.seq) at--;
    list.splice(at, 0, event);
  }

  delete(name: string): void {
    const entry = this.byName.get(name);
    if (!entry) return;
    this.byName.delete(name);
    this.total -= Math.max(0, entry.event.bytes);
    const list = this.byWriter.get(entry.event.writer)!;
    const at = list.indexOf(entry.event); // nearly always 0: events leave from the front
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.byWriter.delete(entry.event.writer);
  }

  /** Keeps only the events `keep` says yes to. */
  retainOnly(keep: (name: string) => boolean): void {
    for (const name of [...this.byName.keys()]) if (!keep(name)) this.delete(name);
  }

  /** The next event in the queue's order: the earliest of every writer's oldest. */
  head(): PendingEvent | undefined {
    let best: PendingEvent | undefined;
    for (const list of this.byWriter.values()) {
      const first = list[0];
      if (first && (!best || before(first, best))) best = first;
    }
    return best;
  }
}
