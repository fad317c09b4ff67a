/**
 * Objects a decision rests on, held still until Swift has acted on it. An SLO manifest's stored size depends
 * on its segments as Swift finds them when it validates the manifest (their sizes, ETags, content types); the
 * proxy reads them first and decides on what it read. While such a manifest is on its way, writes, metadata
 * changes and deletes of its segments that come through this proxy wait for it to be answered, so what was
 * read is what Swift finds. The other way round, a manifest reads its segments only once the writes to them
 * already on their way to Swift have been answered: a POST sent just before the manifest was checked would
 * otherwise change a segment between the proxy's read and Swift's.
 */
interface Pin {
  count: number;
  /** Requests holding it (a request waits for pins of others, never for its own). */
  owners: Map<object, number>;
  released: Promise<void>;
  release(): void;
  /** Resolves at the next release by any holder (a request waiting for others' holds looks again then). */
  changed: Promise<void>;
  signal(): void;
}

/** Whether `promise` settles within `ms` (false once the time is up; the promise is left to settle). */
async function settlesWithin(promise: Promise<void>, ms: number): Promise<boolean> {
  if (ms === Number.POSITIVE_INFINITY) return promise.then(() => true);
  if (ms <= 0) return false;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([promise.then(() => true), expired]);
  } finally {
    clearTimeout(timer);
  }
}

function signalled(): { promise: Promise<void>; resolve: () => void } {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

function newPin(): Pin {
  const released = signalled();
  const pin: Pin = {
    count: 0,
    owners: new Map(),
    released: released.promise,
    release: released.resolve,
    changed: Promise.resolve(),
    signal: () => {},
  };
  const renew = () => {
    const next = signalled();
    pin.changed = next.promise;
    pin.signal = () => {
      next.resolve();
      renew();
    };
  };
  renew();
  return pin;
}

/**
 * Going on would wait for ever: the pin this write waits for is held by a request that waits (directly or through
 * others) for a pin this write holds, as two copies of several ranges do when each copies the other's target
 * (A into B, B into A). The write that closes the circle gives up (the door answers 503), which lets the others go.
 */
export class PinCycle extends Error {
  /** What the client is told (503, Retry-After: 1). */
  readonly refusal: string = 'another write through the quota proxy waits for this one, and this one for it; try again.';
}

/**
 * A versioning change waited as long as a change may (upstream_timeout) for writes into its container that are
 * still on their way to Swift (a client may hold an upload's body open): refused, so that neither it nor the
 * writes that queue behind it wait without end.
 */
export class VersioningChangeWaited extends PinCycle {
  override readonly refusal = 'writes into this container are still on their way to Swift, and a change of its versioning waits for them; try again.';
}

/**
 * What the doors ask of the pins: ObjectPins holds them in this process; SharedPins (shared-pins.ts) holds them
 * in every process sharing a Redis ledger too. Each method answers at once (no promise) when nothing is pinned
 * in this process; the shared board may make `pin` and `enter` ask Redis.
 */
export interface PinBoard {
  versioningSteady(account: string, container: string): (() => void) | Promise<() => void>;
  /**
   * The same for an object delete (legacy versioning stores on deletes); held in every process sharing a ledger
   * (deletes hold no reservation there to be seen by).
   */
  deleteSteady(account: string, container: string): (() => void) | Promise<() => void>;
  versioningChange(account: string, container: string): Promise<() => void>;
  exclusive(key: string, owner?: object): Promise<() => void>;
  pin(keys: Iterable<string>, prefixes?: Iterable<string>, owner?: object): (() => void) | Promise<() => void>;
  /**
   * `checked`: other processes' pins need no check of their own (the write holds a reservation of the object,
   * which the shared ledger checks and marks as in flight, or it is a delete).
   */
  enter(key: string, owner: object, checked?: boolean): (() => void) | Promise<() => void>;
  drained(keys: Iterable<string>): Promise<void> | undefined;
  waitFor(key: string): Promise<void> | undefined;
  readonly size: number;
}

export class ObjectPins implements PinBoard {
  /** `changeWaitMs`: how long a versioning change waits for the writes holding the versioning still. */
  constructor(private readonly changeWaitMs = Number.POSITIVE_INFINITY) {}

  private readonly pins = new Map<string, Pin>();
  /** Requests waiting in enter() for others' pins, and the object each waits for. */
  private readonly entering = new Map<object, string>();
  /** Pins of every object whose key starts with a prefix (the parts of a multipart upload being completed). */
  private readonly prefixes = new Map<string, Pin>();
  /** Writes admitted and on their way to Swift, until it answers; `landed` made only when a manifest waits. */
  private readonly inFlight = new Map<string, { count: number; landed?: { promise: Promise<void>; resolve: () => void } }>();
  /** Object writes holding a container's versioning still (versioningSteady); `drained` made only when a change waits. */
  private readonly versioningHolds = new Map<string, { count: number; drained?: { promise: Promise<void>; resolve: () => void } }>();

  static key(account: string, container: string, object: string): string {
    return `${account}/${container}/${object}`;
  }

  /** A container's versioning, held still while writes rest on what an overwrite frees (versioning.ts). */
  static versioningKey(account: string, container: string): string {
    return `${account}/${container}\u0000versioning`;
  }

  /** A change of a container's versioning under way: object writes wait for it before they read versioning. */
  static versioningChangeKey(account: string, container: string): string {
    return `${account}/${container}\u0000versioning-change`;
  }

  /**
   * Holds a container's versioning still for an object write about to read it (and decide on it): once no change
   * of it is under way through this proxy, held in the same tick, so a change that comes later waits for it.
   * Every object write takes this hold: without a change under way (nearly always) it is a count, made at once,
   * with no promise to wait for.
   */
  versioningSteady(account: string, container: string): (() => void) | Promise<() => void> {
    const wait = this.waitFor(ObjectPins.versioningChangeKey(account, container));
    return wait ? this.steadyAfter(wait, account, container) : this.holdVersioning(ObjectPins.versioningKey(account, container));
  }

  deleteSteady(account: string, container: string): (() => void) | Promise<() => void> {
    return this.versioningSteady(account, container);
  }

  private async steadyAfter(first: Promise<void>, account: string, container: string): Promise<() => void> {
    const change = ObjectPins.versioningChangeKey(account, container);
    for (let wait: Promise<void> | undefined = first; wait; wait = this.waitFor(change)) await wait;
    return this.holdVersioning(ObjectPins.versioningKey(account, container));
  }

  private holdVersioning(key: string): () => void {
    let hold = this.versioningHolds.get(key);
    if (!hold) this.versioningHolds.set(key, (hold = { count: 0 }));
    const held = hold;
    held.count++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--held.count > 0) return;
      this.versioningHolds.delete(key);
      held.drained?.resolve();
    };
  }

  /**
   * A change of a container's versioning: object writes that have not read it yet wait from now on, and this
   * waits for those that hold it still (deciding, or on their way to Swift). The function returned ends the change.
   */
  async versioningChange(account: string, container: string): Promise<() => void> {
    const release = this.pin([ObjectPins.versioningChangeKey(account, container)]);
    const key = ObjectPins.versioningKey(account, container);
    const deadline = Date.now() + this.changeWaitMs;
    for (let hold = this.versioningHolds.get(key); hold; hold = this.versioningHolds.get(key)) {
      hold.drained ??= signalled();
      if (!(await settlesWithin(hold.drained.promise, deadline - Date.now()))) {
        release();
        throw new VersioningChangeWaited();
      }
    }
    return release;
  }

  /**
   * Waits until `key` is not pinned, then pins it: writes that take it one at a time (writes and deletes of an
   * object whose replaced version Swift archives: what is archived is what was read).
   */
  async exclusive(key: string, owner?: object): Promise<() => void> {
    for (let wait = this.waitFor(key); wait; wait = this.waitFor(key)) await wait;
    return this.pin([key], [], owner);
  }

  /** Pins every key (held by `owner`, when given); the function returned releases them (once). */
  pin(keys: Iterable<string>, prefixes: Iterable<string> = [], owner?: object): () => void {
    const held = [...new Set(keys)];
    const heldPrefixes = [...new Set(prefixes)];
    const entries = [...held.map((k) => [this.pins, k] as const), ...heldPrefixes.map((k) => [this.prefixes, k] as const)];
    for (const [map, key] of entries) {
      let pin = map.get(key);
      if (!pin) map.set(key, (pin = newPin()));
      pin.count++;
      if (owner) pin.owners.set(owner, (pin.owners.get(owner) ?? 0) + 1);
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const [map, key] of entries) {
        const pin = map.get(key);
        if (!pin) continue;
        if (owner) {
          const held = (pin.owners.get(owner) ?? 1) - 1;
          if (held > 0) pin.owners.set(owner, held);
          else pin.owners.delete(owner);
        }
        pin.signal();
        if (--pin.count > 0) continue;
        map.delete(key);
        pin.release();
      }
    };
  }

  /**
   * Marks a write to `key` as on its way to Swift, once no other request's pin is on it (a manifest resting on
   * it, another write taking its turn); the function returned ends it (when Swift has answered). Without such a
   * pin (nearly always) the mark is made at once, with no promise to wait for.
   */
  enter(key: string, owner: object): (() => void) | Promise<() => void> {
    const wait = this.waitForOthers(key, owner);
    return wait ? this.enterAfter(wait, key, owner) : this.mark(key);
  }

  private async enterAfter(first: Promise<void>, key: string, owner: object): Promise<() => void> {
    try {
      for (let wait: Promise<void> | undefined = first; wait; wait = this.waitForOthers(key, owner)) {
        if (this.waitsOnItself(key, owner)) throw new PinCycle('two writes through the proxy wait for each other');
        this.entering.set(owner, key);
        await wait;
      }
    } finally {
      this.entering.delete(owner);
    }
    return this.mark(key);
  }

  /** Whether a holder of `key`'s pin waits, directly or through other waiting holders, for a pin `owner` holds. */
  private waitsOnItself(key: string, owner: object): boolean {
    const seen = new Set<object>();
    const keys = [key];
    for (let next = keys.pop(); next !== undefined; next = keys.pop()) {
      for (const holder of this.holdersOf(next)) {
        if (holder === owner) {
          if (next !== key) return true;
          continue;
        }
        if (seen.has(holder)) continue;
        seen.add(holder);
        const awaited = this.entering.get(holder);
        if (awaited !== undefined) keys.push(awaited);
      }
    }
    return false;
  }

  /** The requests holding a pin on `key` (exact or by prefix). */
  private holdersOf(key: string): object[] {
    const pins = [this.pins.get(key), ...[...this.prefixes].filter(([prefix]) => key.startsWith(prefix)).map(([, pin]) => pin)];
    return pins.flatMap((pin) => (pin ? [...pin.owners.keys()] : []));
  }

  private mark(key: string): () => void {
    let entry = this.inFlight.get(key);
    if (!entry) this.inFlight.set(key, (entry = { count: 0 }));
    entry.count++;
    const held = entry;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--held.count > 0) return;
      this.inFlight.delete(key);
      held.landed?.resolve();
    };
  }

  /** Resolves once no write to any of `keys` is on its way to Swift (undefined when none is now). */
  drained(keys: Iterable<string>): Promise<void> | undefined {
    const pending = [...keys].flatMap((key) => {
      const entry = this.inFlight.get(key);
      if (!entry) return [];
      entry.landed ??= signalled();
      return [entry.landed.promise];
    });
    return pending.length === 0 ? undefined : Promise.all(pending).then(() => this.drained(keys));
  }

  private pinOf(key: string): Pin | undefined {
    const exact = this.pins.get(key);
    if (exact) return exact;
    for (const [prefix, pin] of this.prefixes) if (key.startsWith(prefix)) return pin;
    return undefined;
  }

  /** A pin on `key` held (also) by a request other than `owner`. */
  private othersPinOf(key: string, owner: object): Pin | undefined {
    const held = (pin: Pin | undefined) => pin !== undefined && pin.count > (pin.owners.get(owner) ?? 0);
    const exact = this.pins.get(key);
    if (held(exact)) return exact;
    for (const [prefix, pin] of this.prefixes) if (key.startsWith(prefix) && held(pin)) return pin;
    return undefined;
  }

  private waitForOthers(key: string, owner: object): Promise<void> | undefined {
    return this.othersPinOf(key, owner)?.changed;
  }

  /** Resolves once `key` is not pinned (undefined when it is not pinned now). */
  waitFor(key: string): Promise<void> | undefined {
    if (!this.pinOf(key)) return undefined;
    return (async () => {
      for (let current = this.pinOf(key); current; current = this.pinOf(key)) await current.released;
    })();
  }

  /** Keys pinned, and containers whose versioning is held still. */
  get size(): number {
    return this.pins.size + this.versioningHolds.size;
  }
}
