/**
 * The newest usage reading of each key this process knows, in a compact form: the usage cache of
 * `cache_timeout` and the ledger's "newest reading" are the same entries, not two copies.
 *
 * lru-cache indexes the keys and picks which one goes when the store is full; each key's value there is only
 * a slot number, and the slot's numbers live in typed arrays (no object per entry). The rare parts of a reading
 * (an account's level and quota state, tempurl keys, versioning, a key that does not exist) are kept in a
 * side map by slot; a container's storage policy (every container has one, a cluster few) is an index into a
 * short list of names. A reading is handed out as a frozen Snapshot made on demand.
 */
import { LRUCache } from 'lru-cache';
import type { Snapshot, SnapshotData } from './ledger.js';

type Extras = Pick<SnapshotData, 'level' | 'persisted' | 'tempUrlKeys' | 'versioning' | 'overrides' | 'ownerLimits'>;

const INITIAL_SLOTS = 1024;

/** A slot's flags. */
const MISSING = 1; // the key does not exist in Swift
/**
 * The reading predates a decrease of unknown size (a delete finished after it was sent): it is still the
 * newest reading of the key, for projections, but neither served from the cache nor settled usage.
 */
const STALE = 2;
/** The slot has rare parts in `extras`. */
const HAS_EXTRAS = 4;

/**
 * The key as one flat string of its own, copied through bytes (latin-1 where it fits, else UTF-16, both
 * lossless). Keys are built by concatenation (`c/${account}/${container}`), which V8 keeps as a rope of the
 * parts. Measured with 1,000,000 keys (the benchmark's cache fill): kept as they come, 131 B per entry and
 * 560 MiB RSS; internalised (`Object.keys({ [key]: 0 })`), 126 B but 550 MiB, as every distinct key leaves a
 * hidden class behind in old space between the strings; copied, 126 B and 290–350 MiB.
 */
function flat(key: string): string {
  // eslint-disable-next-line no-control-regex
  const encoding = /[^\u0000-\u00ff]/.test(key) ? 'utf16le' : 'latin1';
  return Buffer.from(key, encoding).toString(encoding);
}

/** A reading's rare parts, only those it has (undefined when it has none). */
function extrasOf({ level, persisted, tempUrlKeys, versioning, overrides, ownerLimits }: Snapshot): Extras | undefined {
  if (level === undefined && persisted === undefined && tempUrlKeys === undefined && versioning === undefined && overrides === undefined && ownerLimits === undefined) return undefined;
  return {
    ...(level !== undefined ? { level } : {}),
    ...(persisted !== undefined ? { persisted } : {}),
    ...(tempUrlKeys !== undefined ? { tempUrlKeys } : {}),
    ...(versioning !== undefined ? { versioning } : {}),
    ...(overrides !== undefined ? { overrides } : {}),
    ...(ownerLimits !== undefined ? { ownerLimits } : {}),
  };
}

export class SnapshotStore {
  private readonly index: LRUCache<string, number>;
  private readonly free: number[] = [];
  private used = 0;
  private capacity = 0;
  private count = new Float64Array(0);
  private bytes = new Float64Array(0);
  private seq = new Float64Array(0);
  private sent = new Float64Array(0);
  /** When the reading arrived (ms, Date.now()), for cache_timeout. */
  private at = new Float64Array(0);
  private flags = new Uint8Array(0);
  /** Index into `gens`: a ledger has one generation at a time, so a handful of strings serve every slot. */
  private gen = new Uint16Array(0);
  private readonly gens: string[] = [];
  /** Index into `policies`, 0 for a reading with no policy. */
  private policy = new Uint16Array(0);
  private readonly policies: Array<string | undefined> = [undefined];
  private readonly extras = new Map<number, Extras>();

  constructor(maxEntries: number) {
    this.index = new LRUCache<string, number>({
      max: maxEntries,
      dispose: (slot) => {
        this.extras.delete(slot);
        this.free.push(slot);
      },
    });
  }

  get size(): number {
    return this.index.size;
  }

  /**
   * Keeps `snapshot` as the key's newest reading unless the key already has a newer one (by `sent`). `stale`:
   * a decrease finished while it was under way.
   */
  record(key: string, snapshot: Snapshot, stale: boolean, now = Date.now()): boolean {
    let slot = this.index.peek(key);
    if (slot !== undefined && this.sent[slot]! > snapshot.sent) return false;
    if (slot === undefined) {
      slot = this.allocate();
      this.index.set(flat(key), slot);
    } else {
      this.index.get(key); // most recently used
    }
    this.count[slot] = snapshot.count;
    this.bytes[slot] = snapshot.bytes;
    this.seq[slot] = snapshot.seq;
    this.sent[slot] = snapshot.sent;
    this.at[slot] = now;
    const extras = extrasOf(snapshot);
    this.flags[slot] = (snapshot.exists ? 0 : MISSING) | (stale ? STALE : 0) | (extras ? HAS_EXTRAS : 0);
    this.gen[slot] = this.genIndex(snapshot.gen);
    this.policy[slot] = this.policyIndex(snapshot.policy);
    if (extras) this.extras.set(slot, extras);
    else this.extras.delete(slot);
    return true;
  }

  /** The key's newest reading, stale or not (nothing counts as a use). */
  newest(key: string): Snapshot | undefined {
    const slot = this.index.peek(key);
    return slot === undefined ? undefined : this.snapshotAt(slot);
  }

  /** Whether a decrease finished after the key's newest reading was sent. */
  isStale(key: string): boolean {
    const slot = this.index.peek(key);
    return slot === undefined || (this.flags[slot]! & STALE) !== 0;
  }

  /** The key's reading if it may be served from the cache: not stale, younger than `ttlMs`. */
  fresh(key: string, ttlMs: number, now = Date.now()): Snapshot | undefined {
    const slot = this.index.get(key);
    if (slot === undefined || (this.flags[slot]! & STALE) !== 0 || now - this.at[slot]! >= ttlMs) return undefined;
    return this.snapshotAt(slot);
  }

  /** A decrease finished: the key's reading is no longer served, nor taken as settled usage. */
  markStale(key: string): void {
    const slot = this.index.peek(key);
    if (slot !== undefined) this.flags[slot]! |= STALE;
  }

  /** Every reading becomes stale (the ledger lost its data). */
  markAllStale(): void {
    for (const slot of this.index.values()) this.flags[slot]! |= STALE;
  }

  private snapshotAt(slot: number): Snapshot {
    const snapshot = {
      count: this.count[slot]!,
      bytes: this.bytes[slot]!,
      exists: (this.flags[slot]! & MISSING) === 0,
      seq: this.seq[slot]!,
      gen: this.gens[this.gen[slot]!]!,
      sent: this.sent[slot]!,
    };
    const policy = this.policy[slot]!;
    if (policy !== 0) Object.assign(snapshot, { policy: this.policies[policy] });
    // Most readings have no rare parts: the map is asked only when the slot has some.
    return Object.freeze(this.flags[slot]! & HAS_EXTRAS ? Object.assign(snapshot, this.extras.get(slot)) : snapshot);
  }

  private genIndex(gen: string): number {
    const last = this.gens.length - 1;
    if (last >= 0 && this.gens[last] === gen) return last;
    const known = this.gens.indexOf(gen);
    if (known >= 0) return known;
    // A new generation: older ones may still be named by some slots; a ledger sees few in its life.
    if (this.gens.length === 0xffff) throw new Error('snapshot store: too many ledger generations');
    this.gens.push(gen);
    return this.gens.length - 1;
  }

  private policyIndex(policy: string | undefined): number {
    if (policy === undefined) return 0;
    const known = this.policies.indexOf(policy);
    if (known > 0) return known;
    if (this.policies.length === 0xffff) throw new Error('snapshot store: too many storage policies');
    this.policies.push(policy);
    return this.policies.length - 1;
  }

  private allocate(): number {
    const reused = this.free.pop();
    if (reused !== undefined) return reused;
    if (this.used === this.capacity) this.grow();
    return this.used++;
  }

  /** Doubles the arrays (up to what the index can hold), so a small cache costs little. */
  private grow(): void {
    const capacity = Math.min(Math.max(INITIAL_SLOTS, this.capacity * 2), this.index.max + 1);
    const grown = <T extends Float64Array | Uint8Array | Uint16Array>(old: T, make: (n: number) => T): T => {
      const next = make(capacity);
      next.set(old);
      return next;
    };
    this.count = grown(this.count, (n) => new Float64Array(n));
    this.bytes = grown(this.bytes, (n) => new Float64Array(n));
    this.seq = grown(this.seq, (n) => new Float64Array(n));
    this.sent = grown(this.sent, (n) => new Float64Array(n));
    this.at = grown(this.at, (n) => new Float64Array(n));
    this.flags = grown(this.flags, (n) => new Uint8Array(n));
    this.gen = grown(this.gen, (n) => new Uint16Array(n));
    this.policy = grown(this.policy, (n) => new Uint16Array(n));
    this.capacity = capacity;
  }
}
