/**
 * The pins of every proxy sharing a Redis ledger (the Redis half of shared-pins.ts), kept beside the ledger's
 * keys, per container (`<ck>` is the ledger's container key, `c/<account>/<container>`):
 *
 *   <prefix>p:<ck>   pins on objects of the container: id -> "<deadline>:x<object>" (one object) or
 *                    "<deadline>:p<prefix>" (every object whose name starts with it)
 *   <prefix>m:<ck>   writes on their way to Swift that hold no reservation (metadata POSTs, writes in scopes
 *                    without limits; not deletes): id -> "<deadline>:<object>". A write that holds a reservation is
 *                    marked by it (<prefix>r:<ck>, redis.ts): its reservation is checked against the pins as it is
 *                    made, in the ledger's own round trip
 *   <prefix>v:<ck>   versioning changes under way: id -> "<deadline>:"
 *   <prefix>n:<ck>   (the ledger's) field `vchg`: the sequence number taken when the last change began and ended
 *
 * Every id is "<process>:<n>", the process's id being the ledger's: a process skips its own entries, which its
 * in-process pins (pins.ts) already order. Entries are leases, renewed every third of `ledger_lease` while held:
 * a proxy that dies holding one blocks nobody for longer than that. A Redis that lost its data, or a replica
 * promoted that missed the last ones, lacks pins of requests then in flight: each process puts back what it holds
 * as it joins the new generation of the ledger (restore), so until then a write through another process may pass
 * them.
 */
import type { Redis } from 'ioredis';
import { LedgerUnavailableError } from './ledger.js';
import { PinCycle } from '../pins.js';
import { PIN_SCRIPTS, type PinScripts } from './redis-pins-scripts.js';

/**
 * The versioning a write was decided on changed since it was read (a change through another proxy under way or
 * ended): refused with 503 and Retry-After: 1, its retry decides on the versioning as it is now.
 */
export class VersioningMoved extends PinCycle {
  override readonly refusal = "the container's versioning is being changed (through another quota proxy); try again.";
}

/** Another process's pin outlasted the wait (pinWaitMs): what a cycle of waits across processes ends in. */
export class PinWaitExpired extends PinCycle {
  override readonly refusal = 'another write through the quota proxy holds this object for longer than a write may wait; try again.';
}

/**
 * Runs `attempt` again while it answers {2} (another process pins the object), polling: 5 ms at first, doubling up
 * to 100 ms, for at most `boundMs`.
 */
export async function waitWhilePinned(attempt: () => Promise<number[]>, boundMs: number): Promise<number[]> {
  const deadline = Date.now() + boundMs;
  for (let pause = 5; ; pause = Math.min(pause * 2, 100)) {
    const reply = await attempt();
    if (reply[0] !== 2) return reply;
    if (Date.now() + pause > deadline) throw new PinWaitExpired();
    await new Promise((resolve) => setTimeout(resolve, pause));
  }
}

export interface RedisPinStoreOptions {
  redis: Redis;
  prefix: string;
  /** This process's id: the prefix of its reservations' ids. */
  process: string;
  leaseMs: number;
  keyTtlMs: number;
  onError?(error: unknown, what: string): void;
}

/** An object key of pins.ts (`<account>/<container>/<object>`), split. */
export function splitObjectKey(key: string): { account: string; container: string; object: string } {
  const first = key.indexOf('/');
  const second = key.indexOf('/', first + 1);
  return { account: key.slice(0, first), container: key.slice(first + 1, second), object: key.slice(second + 1) };
}

export class RedisPinStore {
  private readonly scripts: PinScripts;
  private nextId = 0;
  /** Entries this process holds, per hash: renewed until released. */
  private readonly held = new Map<string, Map<string, string>>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly options: RedisPinStoreOptions) {
    for (const [name, [numberOfKeys, lua]] of Object.entries(PIN_SCRIPTS)) options.redis.defineCommand(name, { numberOfKeys, lua });
    this.scripts = options.redis as unknown as PinScripts;
    this.timer = setInterval(() => void this.renew(), Math.max(options.leaseMs / 3, 100));
    this.timer.unref();
  }

  /** The ledger's hash `kind` of a container (`kind` p, m, v, r, n, or d: deletes on their way). */
  hash(kind: 'p' | 'm' | 'v' | 'r' | 'n' | 'd', account: string, container: string): string {
    return `${this.options.prefix}${kind}:c/${account}/${container}`;
  }

  /** Pins objects and prefixes (object keys of pins.ts) for every process; the function returned lets them go. */
  async pin(keys: Iterable<string>, prefixes: Iterable<string>): Promise<() => void> {
    const entries = new Map<string, Array<[string, string]>>();
    const add = (key: string, kind: 'x' | 'p') => {
      const { account, container, object } = splitObjectKey(key);
      const hash = this.hash('p', account, container);
      if (!entries.has(hash)) entries.set(hash, []);
      entries.get(hash)!.push([this.newId(), `${kind}${object}`]);
    };
    for (const key of keys) add(key, 'x');
    for (const key of prefixes) add(key, 'p');
    const releases = [...entries].map(([hash, pairs]) => this.track(hash, pairs));
    try {
      await this.call(() => Promise.all([...entries].map(([hash, pairs]) => this.scripts.pinsHold(hash, this.options.leaseMs, this.options.keyTtlMs, ...pairs.flat()))));
    } catch (error) {
      for (const release of releases) release();
      throw error;
    }
    return once(() => releases.forEach((release) => release()));
  }

  /** Pins `key` for this process unless another pins it (a turn): the release, or undefined (taken). */
  turn(key: string): Promise<(() => void) | undefined> {
    return this.holdIfFree(key, 'p', 'x');
  }

  /** Marks a write to `key` on its way unless another process pins it: the release, or undefined (pinned). */
  enter(key: string): Promise<(() => void) | undefined> {
    return this.holdIfFree(key, 'm', '');
  }

  /** Whether another process has a write to one of `keys` on its way to Swift. */
  async busy(keys: Iterable<string>): Promise<boolean> {
    const byContainer = new Map<string, { account: string; container: string; objects: string[] }>();
    for (const key of keys) {
      const { account, container, object } = splitObjectKey(key);
      const id = `${account}/${container}`;
      if (!byContainer.has(id)) byContainer.set(id, { account, container, objects: [] });
      byContainer.get(id)!.objects.push(object);
    }
    const answers = await this.call(() =>
      Promise.all([...byContainer.values()].map(({ account, container, objects }) =>
        this.scripts.pinsBusy(this.hash('r', account, container), this.hash('m', account, container), this.options.process, ...objects))),
    );
    return answers.some((answer) => answer === 1);
  }

  /** Begins a change of a container's versioning: writes deciding on it now are refused; the function returned ends it. */
  async beginVersioningChange(account: string, container: string): Promise<() => void> {
    const id = this.newId();
    const keys = [this.hash('v', account, container), this.hash('n', account, container), `${this.options.prefix}seq`] as const;
    const untrack = this.track(keys[0], [[id, '']], false);
    await this.call(() => this.scripts.pinsVersioningMark(...keys, id, this.options.leaseMs, this.options.keyTtlMs)).catch((error: unknown) => {
      untrack();
      throw error;
    });
    return once(() => {
      untrack();
      // Lost, the lease runs out and the next write into the container ends the change (PINS_LUA, redis-pins-scripts.ts).
      this.scripts.pinsVersioningMark(...keys, id, '', this.options.keyTtlMs).catch((error: unknown) => this.options.onError?.(error, 'versioning change end'));
    });
  }

  /** Whether a write into the container that frees what it replaces, or a delete, is on its way (any process). */
  async versioningBusy(account: string, container: string): Promise<boolean> {
    return (await this.call(() => this.scripts.pinsVersioningBusy(this.hash('r', account, container), this.hash('d', account, container)))) === 1;
  }

  /**
   * Marks a delete on its way into the container, until the function returned is called, unless a change of the
   * container's versioning is under way (then undefined: try again once it has ended).
   */
  async deleting(account: string, container: string): Promise<(() => void) | undefined> {
    const id = this.newId();
    const hash = this.hash('d', account, container);
    const added = await this.call(() => this.scripts.pinsDeleteMark(this.hash('v', account, container), hash, id, this.options.leaseMs, this.options.keyTtlMs));
    return added === 1 ? once(this.track(hash, [[id, '']])) : undefined;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private async holdIfFree(key: string, into: 'p' | 'm', kind: string): Promise<(() => void) | undefined> {
    const { account, container, object } = splitObjectKey(key);
    const hash = this.hash(into, account, container);
    const id = this.newId();
    const rest = `${kind}${object}`;
    const added = await this.call(() =>
      this.scripts.pinsHoldIfFree(this.hash('p', account, container), hash, this.options.process, object, id, rest, this.options.leaseMs, this.options.keyTtlMs),
    );
    return added === 1 ? once(this.track(hash, [[id, rest]])) : undefined;
  }

  private newId(): string {
    return `${this.options.process}:p${++this.nextId}`;
  }

  /** Remembers entries to renew; the function returned forgets them and (unless `remove` is false) deletes them. */
  private track(hash: string, pairs: Array<[string, string]>, remove = true): () => void {
    let entries = this.held.get(hash);
    if (!entries) this.held.set(hash, (entries = new Map()));
    for (const [id, rest] of pairs) entries.set(id, rest);
    const held = entries;
    return () => {
      for (const [id] of pairs) held.delete(id);
      if (held.size === 0 && this.held.get(hash) === held) this.held.delete(hash);
      if (!remove) return;
      // Lost, the lease runs out.
      this.options.redis.hdel(hash, ...pairs.map(([id]) => id)).catch((error: unknown) => this.options.onError?.(error, 'unpin'));
    };
  }

  /** A new generation of the ledger (Redis lost its data, or a failover): every entry held is set again. */
  async restore(): Promise<void> {
    const batches = [...this.held].map(([hash, entries]) => [hash, [...entries].flat()] as const);
    await Promise.all(batches.map(([hash, pairs]) => this.scripts.pinsHold(hash, this.options.leaseMs, this.options.keyTtlMs, ...pairs)));
  }

  /** Every third of a lease: what this process still holds is held for another lease. */
  private async renew(): Promise<void> {
    const batches = [...this.held].map(([hash, entries]) => [hash, [...entries].flat()] as const);
    if (batches.length === 0) return;
    try {
      await Promise.all(batches.map(([hash, pairs]) => this.scripts.pinsRenew(hash, this.options.leaseMs, this.options.keyTtlMs, ...pairs)));
    } catch (error) {
      this.options.onError?.(error, 'renew pins');
    }
  }

  private async call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw new LedgerUnavailableError(`the usage ledger (Redis) did not answer: ${(error as Error)?.message ?? String(error)}`, { cause: error });
    }
  }
}

function once(run: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    run();
  };
}
