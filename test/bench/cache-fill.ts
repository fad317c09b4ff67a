/**
 * The cache-fill case of the benchmark: the memory one process needs to keep N containers' usage readings
 * (cached mode, `cache_max_entries` ≥ N). Run as its own process with --expose-gc (bench.ts runs it compiled):
 *
 *   node --expose-gc dist/test/bench/cache-fill.js <ledger module> <entries>
 *
 * Fills a MemoryLedger (the ledger the proxy uses without Redis, through the same read() the quota checks
 * call) with one reading per container, then prints JSON: bytes per entry (V8 heap plus typed-array
 * memory, after a full GC, over the first tenth of the entries) and the process's RSS. `<ledger module>` is
 * src/quota/ledger/memory of the checkout measured (the benchmark can measure another one the same way).
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [ledgerModule, entriesText] = process.argv.slice(2);
const entries = Number(entriesText);
if (!ledgerModule || !Number.isInteger(entries) || entries <= 0) throw new Error('usage: cache-fill <ledger module> <entries>');
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('cache-fill.ts needs --expose-gc');

type Ledger = { read(key: string): Promise<unknown> };
const { MemoryLedger } = (await import(pathToFileURL(path.resolve(ledgerModule)).href)) as {
  MemoryLedger: new (options: { ttlMs: number; maxEntries: number; read(key: string): Promise<object> }) => Ledger;
};

const memory = () => {
  gc();
  gc();
  const usage = process.memoryUsage();
  return { heap: usage.heapUsed + usage.arrayBuffers, rss: usage.rss };
};

let n = 0;
const ledger = new MemoryLedger({
  ttlMs: 3_600_000,
  maxEntries: entries,
  // A container's reading as swift/usage.ts makes it from a HEAD: exists, object count, bytes.
  read: async () => ({ exists: true, count: ++n % 50_000, bytes: (n % 50_000) * 4096 + 17 }),
});
// Keys as the quota checks make them: one account per thousand containers.
const BATCH = 100; // reads at a time: a busy proxy has a few hundred HEADs in flight, not the whole fill
async function fill(from: number, to: number): Promise<void> {
  for (let i = from; i < to; i += BATCH) {
    const reads: Promise<unknown>[] = [];
    for (let j = i; j < Math.min(to, i + BATCH); j++) reads.push(ledger.read(`c/AUTH_tenant${String(j % 1000).padStart(4, '0')}/container-${String(j).padStart(7, '0')}`));
    await Promise.all(reads);
  }
}
// The first tenth settles what loading and the first reads leave behind; the rest is measured.
const warm = Math.ceil(entries / 10);
await fill(0, warm);
const before = memory();
const started = Date.now();
await fill(warm, entries);
const fillSeconds = (Date.now() - started) / 1000;
// V8 gives freed old-space pages back to the system when idle: RSS is read after a pause, as a proxy that
// filled its cache over hours would be.
await new Promise((resolve) => setTimeout(resolve, 10_000));
const after = memory();
if (n !== entries) throw new Error(`expected ${entries} reads of Swift, made ${n}`);
process.stdout.write(`${JSON.stringify({ entries, bytesPerEntry: (after.heap - before.heap) / (entries - warm), rssMiB: after.rss / 2 ** 20, fillSeconds })}\n`);
