/**
 * Pins that hold in every process sharing a Redis ledger (`workers` > 1, or several proxies): the in-process
 * pins (pins.ts) order the requests of this process, as before, and the same promises are kept against the
 * other processes through Redis (ledger/redis-pins.ts):
 * - writes of one name take turns (`exclusive`): a turn is a pin in Redis, taken once no other process holds one;
 * - a manifest's segments (`pin`) are pinned in Redis before they are read, and read once the writes to them on
 *   their way through other processes have been answered (`drained`);
 * - a write reaches Swift only when no other process pins its object (`enter`): checked in the ledger's own
 *   reservation where the write holds one (no round trip more), else (metadata POSTs, writes in scopes without
 *   limits) in one round trip of its own; deletes are not checked (they make nothing a pin holds larger);
 * - a versioning change (`versioningChange`) is marked in Redis, then waits for every write into the container
 *   on its way that frees what it replaces (their reservations) and every delete (marked as it begins, unless a
 *   change is under way: then it waits for that change, `deleteSteady`); a write decided on the versioning as it was
 *   before a change began is refused by the ledger as it reserves (503, Retry-After: 1), its retry reads it anew.
 * Waits for other processes poll (5 ms, doubling to 100 ms) for at most `waitMs` (upstream_timeout): a pin is
 * held by a request on its way to Swift, and one held longer is taken for a cycle of waits across processes
 * (which in-process detection cannot see), answered 503 with Retry-After: 1.
 */
import { ObjectPins, type PinBoard } from './pins.js';
import { PinWaitExpired, type RedisPinStore } from './ledger/redis-pins.js';

export class SharedPins implements PinBoard {
  constructor(
    private readonly local: ObjectPins,
    private readonly store: RedisPinStore,
    private readonly waitMs: number,
  ) {}

  /** In this process: other processes' pins are checked as the write is reserved or enters (below). */
  waitFor(key: string): Promise<void> | undefined {
    return this.local.waitFor(key);
  }

  /** In this process: across processes, a write's reservation holds the versioning still (redis-pins.ts). */
  versioningSteady(account: string, container: string): (() => void) | Promise<() => void> {
    return this.local.versioningSteady(account, container);
  }

  /** In this process, then marked in Redis once no change is under way in any (a change waits for the mark). */
  async deleteSteady(account: string, container: string): Promise<() => void> {
    const holding = this.local.versioningSteady(account, container);
    const local = typeof holding === 'function' ? holding : await holding;
    return alongside(local, () => this.taken(() => this.store.deleting(account, container)));
  }

  async versioningChange(account: string, container: string): Promise<() => void> {
    const local = await this.local.versioningChange(account, container);
    return alongside(local, async () => {
      const shared = await this.store.beginVersioningChange(account, container);
      try {
        await this.poll(async () => !(await this.store.versioningBusy(account, container)));
      } catch (error) {
        shared();
        throw error;
      }
      return shared;
    });
  }

  async exclusive(key: string, owner?: object): Promise<() => void> {
    const local = await this.local.exclusive(key, owner);
    return alongside(local, () => this.taken(() => this.store.turn(key)));
  }

  async pin(keys: Iterable<string>, prefixes: Iterable<string> = [], owner?: object): Promise<() => void> {
    const exact = [...keys];
    const starts = [...prefixes];
    const local = this.local.pin(exact, starts, owner);
    return alongside(local, () => this.store.pin(exact, starts));
  }

  /**
   * A write holding a reservation of its object was checked against other processes' pins as it reserved; a
   * delete needs no check (it makes nothing a pin holds larger). Others take one round trip: the mark is the
   * write's until it is answered (`drained`).
   */
  enter(key: string, owner: object, checked = false): (() => void) | Promise<() => void> {
    const local = this.local.enter(key, owner);
    return checked ? local : this.enterShared(local, key);
  }

  private async enterShared(local: (() => void) | Promise<() => void>, key: string): Promise<() => void> {
    const leave = typeof local === 'function' ? local : await local;
    return alongside(leave, () => this.taken(() => this.store.enter(key)));
  }

  drained(keys: Iterable<string>): Promise<void> {
    const list = [...keys];
    const local = this.local.drained(list);
    return (async () => {
      if (local) await local;
      await this.poll(async () => !(await this.store.busy(list)));
    })();
  }

  get size(): number {
    return this.local.size;
  }

  /** Tries `take` until it takes (polling), for at most waitMs. */
  private async taken(take: () => Promise<(() => void) | undefined>): Promise<() => void> {
    let release: (() => void) | undefined;
    await this.poll(async () => (release = await take()) !== undefined);
    return release!;
  }

  /** Waits until `done` answers true: asked at once, then after 5 ms, doubling to 100 ms, for at most waitMs. */
  private async poll(done: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + this.waitMs;
    for (let pause = 5; !(await done()); pause = Math.min(pause * 2, 100)) {
      if (Date.now() + pause > deadline) throw new PinWaitExpired();
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }
}

/** Takes the shared hold once the local one is held: releases both (shared first), or the local one if taking fails. */
async function alongside(local: () => void, takeShared: () => Promise<() => void>): Promise<() => void> {
  try {
    const shared = await takeShared();
    return () => {
      shared();
      local();
    };
  } catch (error) {
    local();
    throw error;
  }
}
