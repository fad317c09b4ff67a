/**
 * Which of the processes sharing a queue directory delivers its events: the holder of a lease, so that one
 * process sends them, in one order, and two never race each other through the same events.
 *
 * The lease is a file `deliverer.<generation>.lock`; the highest generation is the current one. Its holder
 * rewrites it every `beatMs` (a heartbeat: a counter in the file). A process that sees the file's content
 * unchanged for `leaseMs` by its own monotonic clock (no comparison of clocks between hosts, no wall clock), or marked released by a
 * holder that stopped, takes the lease by creating the next generation's file with O_EXCL: of several trying,
 * exactly one succeeds, on a local disk as on NFS. A holder that finds a higher generation stops delivering.
 * Node has no flock, and an flock would not cover processes on other hosts anyway.
 *
 * A holder that stalls longer than `leaseMs` (a frozen VM) and resumes may send the event it was sending
 * while the new holder sends it too: a repeat, never a loss (receivers drop repeats by id).
 */
import { open, readdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import path from 'node:path';

const LOCK = /^deliverer\.(\d{10})\.lock$/;
const RELEASED = 'released';

export interface LeaseOptions {
  readonly beatMs: number;
  readonly leaseMs: number;
  /**
   * Milliseconds by a clock that only goes forward at a steady rate (default performance.now()): what beats and
   * expiry are measured with, within this process. Not the wall clock: an NTP step forward on a waiting process
   * would make a live holder's lease look expired, and a step back on the holder would stop its beats.
   */
  readonly monotonic?: () => number;
  /** The wall clock (default Date.now), only for the time written in the lease for people reading it. */
  readonly now?: () => number;
  /** A fingerprint of the provider's settings, written in the lease: processes sharing a queue should agree. */
  readonly settings?: string;
  /** Called once when the holder's fingerprint differs: it sends this process's events with its settings. */
  readonly onOtherSettings?: (holder: { writer: string; host: string; pid: number }) => void;
}

export class DelivererLease {
  private generation = 0;
  private beats = 0;
  private lastBeat = Number.NEGATIVE_INFINITY;
  /** The other holder's lease as last read, and since when (this process's monotonic clock) it has not changed. */
  private observed: { generation: number; content: string; since: number } | undefined;
  private readonly now: () => number;
  private readonly monotonic: () => number;
  private checking: Promise<boolean> | undefined;
  private stopped = false;
  private warnedOtherSettings = false;

  constructor(
    readonly dir: string,
    readonly writerId: string,
    private readonly options: LeaseOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.monotonic = options.monotonic ?? (() => performance.now());
  }

  /** Whether this process holds the lease (as of the last check). */
  get held(): boolean {
    return this.generation > 0 && !this.stopped;
  }

  /** Who holds the lease, for logs: this process's generation or undefined. */
  get heldGeneration(): number | undefined {
    return this.held ? this.generation : undefined;
  }

  /** Reads the lease files and heartbeats, steps down or takes over as they say; true if this process holds it. */
  check(): Promise<boolean> {
    this.checking ??= this.checkOnce().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async checkOnce(): Promise<boolean> {
    if (this.stopped) return false;
    const generations = await this.generations();
    const current = generations.at(-1) ?? 0;
    if (this.generation > 0 && current > this.generation) this.generation = 0; // another process took over
    if (this.generation > 0) {
      await this.beat();
      await this.removeOlder(generations);
      return this.held;
    }
    if (current === 0 || (await this.expired(current))) await this.take(current + 1, generations);
    return this.held;
  }

  private async generations(): Promise<number[]> {
    const found: number[] = [];
    for (const entry of await readdir(this.dir)) {
      const match = LOCK.exec(entry);
      if (match) found.push(Number(match[1]));
    }
    return found.sort((a, b) => a - b);
  }

  /** Whether the current holder has stopped: released, or no heartbeat seen for leaseMs. */
  private async expired(generation: number): Promise<boolean> {
    const content = await readFile(this.file(generation), 'utf8').catch(() => undefined);
    if (content === undefined) return false; // replaced meanwhile: look again at the next check
    if (content.trim() === RELEASED) return true;
    this.compareSettings(content);
    const now = this.monotonic();
    if (!this.observed || this.observed.generation !== generation || this.observed.content !== content) {
      this.observed = { generation, content, since: now };
      return false;
    }
    return now - this.observed.since >= this.options.leaseMs;
  }

  private compareSettings(content: string): void {
    if (this.warnedOtherSettings || !this.options.settings || !this.options.onOtherSettings) return;
    let holder: { writer: string; host: string; pid: number; settings?: string };
    try {
      holder = JSON.parse(content) as typeof holder;
    } catch {
      return; // being written: read again at the next check
    }
    if (holder.settings === undefined || holder.settings === this.options.settings) return;
    this.warnedOtherSettings = true;
    this.options.onOtherSettings({ writer: holder.writer, host: holder.host, pid: holder.pid });
  }

  private async take(generation: number, older: number[]): Promise<void> {
    let handle;
    try {
      handle = await open(this.file(generation), 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') return; // another process was first
      throw error;
    }
    try {
      await handle.writeFile(this.content());
    } finally {
      await handle.close();
    }
    this.generation = generation;
    this.lastBeat = this.monotonic();
    this.observed = undefined;
    await this.removeOlder(older);
  }

  private async beat(): Promise<void> {
    // Half a period: a timer firing a little early must not skip a beat (two periods between beats).
    if (this.monotonic() - this.lastBeat < this.options.beatMs / 2) return;
    // Written beside and renamed over: a reader sees the old beat or the new one, never half of one.
    const content = this.content();
    const temporary = `${this.file(this.generation)}.${this.writerId}.${this.beats}.tmp`;
    await writeFile(temporary, content);
    await rename(temporary, this.file(this.generation));
    this.lastBeat = this.monotonic();
  }

  private content(): string {
    const { settings } = this.options;
    return `${JSON.stringify({ writer: this.writerId, host: hostname(), pid: process.pid, beat: ++this.beats, at: new Date(this.now()).toISOString(), ...(settings ? { settings } : {}) })}\n`;
  }

  private async removeOlder(generations: number[]): Promise<void> {
    for (const generation of generations) {
      if (generation < this.generation) await unlink(this.file(generation)).catch(() => undefined);
    }
  }

  private file(generation: number): string {
    return path.join(this.dir, `deliverer.${String(generation).padStart(10, '0')}.lock`);
  }

  /** Stops taking part; a holder marks its lease released so that another process takes over at once. */
  async release(): Promise<void> {
    await this.checking?.catch(() => undefined);
    const held = this.held;
    this.stopped = true;
    if (!held) return;
    const current = (await this.generations()).at(-1) ?? 0;
    if (current !== this.generation) return; // taken over meanwhile
    await writeFile(this.file(this.generation), `${RELEASED}\n`).catch(() => undefined);
  }
}
