/**
 * Objects a decision rests on, held still until Swift has acted on it. An SLO manifest's stored size depends
 * on its segments as Swift finds them when it validates the manifest (their sizes, ETags, content types); the
 * proxy reads them first and decides on what it read. While such a manifest is on its way, writes, metadata
 * changes and deletes of its segments that come through this proxy wait for it to be answered, so what was
 * read is what Swift finds.
 */
interface Pin {
  count: number;
  released: Promise<void>;
  release(): void;
}

export class ObjectPins {
  private readonly pins = new Map<string, Pin>();
  /** Pins of every object whose key starts with a prefix (the parts of a multipart upload being completed). */
  private readonly prefixes = new Map<string, Pin>();

  static key(account: string, container: string, object: string): string {
    return `${account}/${container}/${object}`;
  }

  /** A container's versioning, held still while writes rest on what an overwrite frees (versioning.ts). */
  static versioningKey(account: string, container: string): string {
    return `${account}/${container}\u0000versioning`;
  }

  /**
   * Waits until `key` is not pinned, then pins it: writes that take it one at a time (writes and deletes of an
   * object whose replaced version Swift archives: what is archived is what was read).
   */
  async exclusive(key: string): Promise<() => void> {
    for (let wait = this.waitFor(key); wait; wait = this.waitFor(key)) await wait;
    return this.pin([key]);
  }

  /** Pins every key; the function returned releases them (once). */
  pin(keys: Iterable<string>, prefixes: Iterable<string> = []): () => void {
    const held = [...new Set(keys)];
    const heldPrefixes = [...new Set(prefixes)];
    for (const [map, key] of [...held.map((k) => [this.pins, k] as const), ...heldPrefixes.map((k) => [this.prefixes, k] as const)]) {
      let pin = map.get(key);
      if (!pin) {
        let release: () => void = () => {};
        const released = new Promise<void>((resolve) => {
          release = resolve;
        });
        pin = { count: 0, released, release };
        map.set(key, pin);
      }
      pin.count++;
    }
    let done = false;
    return () => {
      if (done) return;
      done = true;
      for (const [map, key] of [...held.map((k) => [this.pins, k] as const), ...heldPrefixes.map((k) => [this.prefixes, k] as const)]) {
        const pin = map.get(key);
        if (!pin || --pin.count > 0) continue;
        map.delete(key);
        pin.release();
      }
    };
  }

  private pinOf(key: string): Pin | undefined {
    const exact = this.pins.get(key);
    if (exact) return exact;
    for (const [prefix, pin] of this.prefixes) if (key.startsWith(prefix)) return pin;
    return undefined;
  }

  /** Resolves once `key` is not pinned (undefined when it is not pinned now). */
  waitFor(key: string): Promise<void> | undefined {
    if (!this.pinOf(key)) return undefined;
    return (async () => {
      for (let current = this.pinOf(key); current; current = this.pinOf(key)) await current.released;
    })();
  }

  get size(): number {
    return this.pins.size;
  }
}
