/**
 * A first-in first-out queue of event bodies in a directory, one file per event named by a sequence number,
 * so that events wait out a receiver that is down and a proxy restart. A file is written under a temporary
 * name, flushed to the disk, renamed into place and the directory flushed too, before the event counts as
 * queued: a crash or a power loss leaves a whole event or none, and never loses one that was reported queued.
 * A file is removed only once delivered.
 */
import { mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import path from 'node:path';

const NAME = /^(\d{16})\.json$/;
const TEMPORARY = '.tmp';

export interface QueuedEvent {
  readonly name: string;
  readonly body: string;
}

export class DiskQueue {
  private names: string[] = [];
  private sizes = new Map<string, number>();
  private bytes = 0;
  private nextSeq = 1;
  /** Writes happen one after another, so files appear in sequence order. */
  private writing: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    private readonly maxBytes: number,
  ) {}

  /** Opens (creating it if need be) the queue in `dir`; throws when the directory cannot be written. */
  static async open(dir: string, maxBytes: number): Promise<DiskQueue> {
    const queue = new DiskQueue(dir, maxBytes);
    await mkdir(dir, { recursive: true });
    // Found now rather than at the first event: a directory the proxy cannot write to would drop every event.
    const probe = path.join(dir, `probe${TEMPORARY}`);
    await writeDurably(probe, '');
    await unlink(probe);
    for (const entry of (await readdir(dir)).sort()) {
      if (entry.endsWith(TEMPORARY)) {
        await unlink(path.join(dir, entry)).catch(() => undefined); // an event half written by a crash
        continue;
      }
      const match = NAME.exec(entry);
      if (!match) continue;
      const { size } = await stat(path.join(dir, entry));
      queue.names.push(entry);
      queue.sizes.set(entry, size);
      queue.bytes += size;
      queue.nextSeq = Number(match[1]) + 1;
    }
    return queue;
  }

  get depth(): number {
    return this.names.length;
  }

  get size(): number {
    return this.bytes;
  }

  /** Adds an event at the end; false (and nothing written) when the queue would outgrow its limit. */
  push(body: string): Promise<boolean> {
    const size = Buffer.byteLength(body);
    if (this.bytes + size > this.maxBytes) return Promise.resolve(false);
    const name = `${String(this.nextSeq++).padStart(16, '0')}.json`;
    this.bytes += size;
    const file = path.join(this.dir, name);
    const done = this.writing.then(async () => {
      await writeDurably(file + TEMPORARY, body);
      await rename(file + TEMPORARY, file);
      await syncDirectory(this.dir); // the rename itself is on disk only once the directory is
      this.names.push(name);
      this.sizes.set(name, size);
      return true;
    });
    this.writing = done.catch(() => {
      this.bytes -= size;
    });
    return done;
  }

  /** Resolves when every push so far is on disk. */
  async flushed(): Promise<void> {
    await this.writing;
  }

  async peek(): Promise<QueuedEvent | undefined> {
    const name = this.names[0];
    if (name === undefined) return undefined;
    return { name, body: await readFile(path.join(this.dir, name), 'utf8') };
  }

  async remove(name: string): Promise<void> {
    if (this.names[0] !== name) throw new Error(`disk queue: ${name} is not the oldest event`);
    await unlink(path.join(this.dir, name)).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
    });
    this.names.shift();
    this.bytes -= this.sizes.get(name) ?? 0;
    this.sizes.delete(name);
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
