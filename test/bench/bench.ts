/**
 * Throughput benchmark of the quota proxy against Swift alone. Not a test: it prints (and optionally writes)
 * a table, and fails only when it cannot run at all.
 *
 * One real single-node Swift (test/swift/cluster.ts) and two proxies in front of it:
 *   proxy-cached   precise_mode = false, cache_timeout = 30
 *   proxy-precise  precise_mode = true
 * both with ROOMY_QUOTA so that nothing is ever refused. Every request carries the token of qa16:admin, taken
 * straight from Swift's tempauth and used for direct and proxied requests alike (the proxy passes it on).
 *
 * Three cases that need no Swift come first:
 *   passthrough  the one-core pass-through table (passthrough.ts): a GET that needs no quota decision, through
 *                the quota proxy and through reference proxies (nginx, bare Node, Fastify's proxy plugin), each
 *                pinned to one core in front of a static upstream; the proxy's CPU time per request
 *   admitted-put the same table for a 4 KiB object PUT the quota proxy checks and admits from its cache (cached
 *                mode), the upstream answering as much of Swift as that needs: the proxy's cost of a decision
 *   cache-fill   the usage cache filled with BENCH_CACHE_ENTRIES containers' readings (cache-fill.ts): bytes
 *                per entry and the process's RSS
 *
 * Workloads against Swift, each at every concurrency of BENCH_CONNECTIONS:
 *   put   PUT of a 4 KiB object. Every request writes a new, distinct name (autocannon `requests` with a
 *         `setupRequest` that appends a counter: `bench-put/<target>-c<conns>-r<round>-<n>`), so no run
 *         overwrites an object and every PUT is a new object to the quota bookkeeping.
 *   get   GET of one existing 4 KiB object (`bench/obj-4k`).
 *   head  HEAD of that object.
 *
 * Drift on a noisy 2-core machine: for each workload × concurrency, the targets run back to back, and rounds
 * alternate their order (direct, cached, precise, then precise, cached, direct, ...), so a trend over time
 * weighs on every target alike. A cell reports the median over its rounds; proxy/direct is the ratio of
 * those medians. Any error, timeout or non-2xx answer marks the cell INVALID (its numbers are not valid).
 *
 * Where things run: the proxies run as child processes (`node dist/src/main.js --config FILE`, compiled by tsc first, the
 * way the proxy runs in production), and autocannon runs here in the parent. The load generator costs a good
 * share of what the proxy costs per request (a few hundred µs); in one process it would share the proxy's event
 * loop, so the proxied runs would be slowed by autocannon's work in a way the direct runs are not, and
 * autocannon's timing would include the proxy's queueing. As separate processes, the kernel schedules them as
 * it would a client and a proxy on one host. Swift is its own python processes.
 * BENCH_PROXY_IN_PROCESS=1 runs the proxies in this process instead (startProxy), only for comparison.
 *
 * Environment:
 *   BENCH_SECONDS         seconds per run (default 8)
 *   BENCH_CONNECTIONS     comma-separated concurrencies (default 4,16)
 *   BENCH_ROUNDS          rounds per workload × concurrency (default 2: one in each order)
 *   BENCH_WORKLOADS       subset of passthrough,admitted-put,cache-fill,put,get,head (default all)
 *   BENCH_CACHE_ENTRIES   entries the cache-fill case keeps (default 1000000)
 *   BENCH_TARGETS         subset of direct,bare-node,proxy-cached,proxy-precise (default all); bare-node is
 *                         the least a Node proxy does (reference-servers.ts bare-proxy: Node http + undici Pool),
 *                         in the proxy's place: the floor any Node proxy meets on this machine
 *   BENCH_WARMUP_SECONDS  per target and workload before measuring (default 5; 0 = none). At Swift's ~150 PUTs
 *                         a second, 1 s is ~150 requests, while a proxy's code is still being compiled: one run
 *                         each measured the proxy's CPU per PUT at 2,378 µs after 1 s, 1,923 after 10 s (bare
 *                         Node 1,100 and 992)
 *   BENCH_OUT             write results to <BENCH_OUT>.md and <BENCH_OUT>.json (a .md/.json suffix is dropped)
 *   BENCH_CPU_PROF_DIR    run the proxy processes with --cpu-prof, writing profiles into DIR/<target>/
 *                         (the main thread's is the larger file; tsx's loader thread writes one too)
 *   BENCH_PROXY_ENTRY     the proxy's entry module (default src/main.ts), e.g. a modified copy to compare
 *   BENCH_BASELINE_ENTRY  another checkout's entry module: the pass-through and cache-fill cases measure it too,
 *                         in the same run (before/after)
 *   BENCH_PROXY_IN_PROCESS=1  see above
 *   BENCH_LEDGER=redis    the proxies keep usage in a Redis the benchmark starts (ledger = redis://...), as
 *                         several proxies would; default: each its own memory
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import type { EventEmitter } from 'node:events';
import { existsSync, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ROOMY_QUOTA, proxyConfigText, startProxy } from '../helpers/proxy.js';
import { startRedis, type RedisServer } from '../swift/redis.js';
import { startSwift, type SwiftCluster } from '../swift/cluster.js';
import { freePort } from '../helpers/ports.js';
import { passThroughBenchmark, passThroughMarkdown, type OneCoreWorkload } from './passthrough.js';

// ---- settings --------------------------------------------------------------------------------------------

const WORKLOADS = ['passthrough', 'admitted-put', 'cache-fill', 'put', 'get', 'head'] as const;
/** The workloads run against the test Swift (the others need no Swift). */
const SWIFT_WORKLOADS = ['put', 'get', 'head'] as const;
const TARGETS = ['direct', 'bare-node', 'proxy-cached', 'proxy-precise'] as const;
type Workload = (typeof SWIFT_WORKLOADS)[number];
type Target = (typeof TARGETS)[number];
type ProxyTarget = Exclude<Target, 'direct'>;

function envNumber(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) throw new Error(`${name}=${raw}: expected a number >= ${min}`);
  return value;
}

function envList<T extends string>(name: string, allowed: readonly T[]): T[] {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return [...allowed];
  const items = raw.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  for (const item of items) {
    if (!allowed.includes(item as T)) throw new Error(`${name}: unknown "${item}" (allowed: ${allowed.join(', ')})`);
  }
  return allowed.filter((a) => items.includes(a)); // canonical order
}

function envConnections(): number[] {
  const raw = process.env.BENCH_CONNECTIONS?.trim() || '4,16';
  const list = raw.split(',').map((s) => Number(s.trim()));
  if (list.some((n) => !Number.isInteger(n) || n < 1)) throw new Error(`BENCH_CONNECTIONS=${raw}: expected positive integers`);
  return list;
}

const settings = {
  seconds: envNumber('BENCH_SECONDS', 8, 1),
  connections: envConnections(),
  rounds: Math.floor(envNumber('BENCH_ROUNDS', 2, 1)),
  warmupSeconds: envNumber('BENCH_WARMUP_SECONDS', 5, 0),
  workloads: envList('BENCH_WORKLOADS', WORKLOADS).filter((w): w is Workload => (SWIFT_WORKLOADS as readonly string[]).includes(w)),
  oneCore: (['passthrough', 'admitted-put'] as const).filter((w) => envList('BENCH_WORKLOADS', WORKLOADS).includes(w)).map((w): OneCoreWorkload => (w === 'passthrough' ? 'get' : 'put')),
  cacheFill: envList('BENCH_WORKLOADS', WORKLOADS).includes('cache-fill'),
  cacheFillEntries: Math.floor(envNumber('BENCH_CACHE_ENTRIES', 1_000_000, 1000)),
  targets: envList('BENCH_TARGETS', TARGETS),
  out: process.env.BENCH_OUT?.trim() || undefined,
  cpuProfDir: process.env.BENCH_CPU_PROF_DIR?.trim() || undefined,
  proxyInProcess: process.env.BENCH_PROXY_IN_PROCESS === '1',
  proxyEntry: process.env.BENCH_PROXY_ENTRY?.trim() || 'src/main.ts',
  baselineEntry: process.env.BENCH_BASELINE_ENTRY?.trim() || undefined,
  ledger: process.env.BENCH_LEDGER?.trim() === 'redis' ? ('redis' as const) : ('memory' as const),
};
/** The Redis of BENCH_LEDGER=redis, started with Swift. */
let ledgerRedis: RedisServer | undefined;

const OBJECT_SIZE = 4096;
const USER = { name: 'qa16:admin', key: 'qa16pass' };
const READ_CONTAINER = 'bench';
const READ_OBJECT = 'obj-4k';
const PUT_CONTAINER = 'bench-put';
const PAUSE_BETWEEN_RUNS_MS = 500;
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const log = (line: string) => process.stderr.write(`${line}\n`);

// ---- autocannon (CommonJS, no type declarations of its own) ---------------------------------------------

interface AutocannonResult {
  duration: number; // seconds
  errors: number; // connection errors, timeouts included
  timeouts: number;
  non2xx: number;
  resets: number;
  mismatches: number;
  statusCodeStats: Record<string, { count: number }>;
}
type AutocannonRun = EventEmitter & PromiseLike<AutocannonResult>;
type Autocannon = (options: Record<string, unknown>) => AutocannonRun;
interface AutocannonClient {
  parser: Record<number, unknown>;
  pipelinedRequests: { clear(): void };
  _connect(): void;
}

const require = createRequire(import.meta.url);
const autocannon = require('autocannon') as Autocannon;
const { HTTPParser } = require(require.resolve('http-parser-js', { paths: [path.dirname(require.resolve('autocannon'))] })) as {
  HTTPParser: { kOnHeadersComplete: number };
};

/**
 * Two fixes to autocannon's client (9.0.0), installed through its `setupClient` hook, which runs in the
 * client's constructor before it sets up its parser and connects:
 *
 * - HEAD: its response parser (http-parser-js) is never told that a response answers a HEAD, so it waits for
 *   the Content-Length bytes that never come and the connection stalls. For HEAD runs the headers-complete
 *   callback is wrapped to answer "no body follows", as Node's own parser does for HEAD.
 * - A server that closes the connection after a response (`Connection: close`): autocannon has by then written
 *   its next request into the closing socket, reconnects, and sends another one, but keeps the lost request
 *   in its queue, so every later response on that client is timed from the lost request's start (latencies
 *   grow without bound). On reconnect the queue is cleared, as a real client would give up on the lost
 *   request and retry. Reconnects are counted: any at all mean the target does not keep connections alive.
 */
function clientSetup(options: { headRequests: boolean; onReconnect: () => void }) {
  return (client: AutocannonClient): void => {
    if (options.headRequests) {
      const parser = client.parser;
      let wrapped: unknown;
      Object.defineProperty(parser, HTTPParser.kOnHeadersComplete, {
        configurable: true,
        enumerable: true,
        get: () => wrapped,
        set(handler: (...args: unknown[]) => unknown) {
          wrapped = function (this: unknown, ...args: unknown[]) {
            handler.apply(this, args);
            return 1; // skip the body
          };
        },
      });
    }
    const connect = client._connect;
    let connected = false;
    client._connect = function (this: AutocannonClient) {
      if (connected) {
        options.onReconnect();
        this.pipelinedRequests.clear();
      }
      connected = true;
      connect.call(this);
    };
  };
}

// ---- process CPU accounting (/proc), to see who spends the CPU ----------------------------------------------

const CLOCK_TICKS_PER_SECOND = 100; // USER_HZ on Linux

async function cpuSecondsOf(pids: number[]): Promise<number> {
  let ticks = 0;
  await Promise.all(
    pids.map(async (pid) => {
      try {
        const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
      } catch {
        // gone: its CPU time is lost to the sample, which is fine for a rough split
      }
    }),
  );
  return ticks / CLOCK_TICKS_PER_SECOND;
}

/** Swift's servers (and their workers) are the processes whose command line names the cluster's directory. */
async function swiftPids(dir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(dir)) pids.push(Number(entry));
    } catch {
      // exited meanwhile
    }
  }
  return pids;
}

// ---- compiled code ---------------------------------------------------------------------------------------

const compiledRoots = new Map<string, Promise<void>>();

/**
 * The JavaScript `tsc` makes of a module (of this checkout or another one's, e.g. BENCH_BASELINE_ENTRY): the
 * proxy is measured as it ships (`npm run build`, `node dist/src/main.js`), not through tsx, whose
 * transform adds work of its own to every closure it names.
 */
async function compiled(module: string): Promise<string> {
  const absolute = path.resolve(REPO_ROOT, module);
  let root = path.dirname(absolute);
  while (!existsSync(path.join(root, 'tsconfig.json'))) {
    const up = path.dirname(root);
    if (up === root) throw new Error(`no tsconfig.json above ${absolute}`);
    root = up;
  }
  if (!compiledRoots.has(root)) {
    log(`bench: compiling ${root}`);
    compiledRoots.set(root, promisify(execFile)(process.execPath, [path.join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], { cwd: root }).then(() => undefined));
  }
  await compiledRoots.get(root);
  return path.join(root, 'dist', path.relative(root, absolute)).replace(/\.ts$/, '.js');
}

// ---- proxies -------------------------------------------------------------------------------------------

interface ProxyHandle {
  target: ProxyTarget;
  url: string;
  pid: number | undefined;
  logTail(): string;
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();


async function waitForProxy(url: string, child: ChildProcess | undefined, logTail: () => string, anyAnswer = false): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child && (child.exitCode !== null || child.signalCode !== null)) {
      throw new Error(`proxy at ${url} exited (${child.exitCode ?? child.signalCode}) while starting:\n${logTail()}`);
    }
    try {
      const res = await fetch(`${url}/metrics`);
      await res.arrayBuffer();
      if (res.status === 200 || anyAnswer) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`proxy at ${url} not ready after 30 s:\n${logTail()}`);
    await delay(100);
  }
}

async function startProxyProcess(target: ProxyTarget, upstream: string, workDir: string): Promise<ProxyHandle> {
  const preciseMode = target === 'proxy-precise';
  if (settings.proxyInProcess && target !== 'bare-node') {
    const proxy = await startProxy({ upstream, preciseMode, cacheTimeout: 30, quota: ROOMY_QUOTA });
    return { target, url: proxy.url, pid: process.pid, logTail: () => '', stop: () => proxy.close() };
  }
  const port = await freePort();
  const configFile = path.join(workDir, `${target}.conf`);
  const ledgerLines = ledgerRedis ? [`ledger = ${ledgerRedis.url}`, `ledger_prefix = bench-${target}:`] : [];
  await writeFile(configFile, proxyConfigText({ upstream, preciseMode, cacheTimeout: 30, quota: ROOMY_QUOTA, port, extraProxyLines: ledgerLines, shippedCensus: true }));
  const nodeArgs: string[] = [];
  if (settings.cpuProfDir) {
    // One directory per proxy.
    nodeArgs.unshift('--cpu-prof', '--cpu-prof-dir', path.resolve(settings.cpuProfDir, target));
  }
  const args = target === 'bare-node'
    ? [await compiled('test/bench/reference-servers.ts'), 'bare-proxy', upstream, String(port)]
    : [await compiled(settings.proxyEntry), '--config', configFile];
  const child = spawn(process.execPath, [...nodeArgs, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  exited.then(() => children.delete(child), () => {});
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(line);
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const logTail = () => lines.slice(-30).join('\n');
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForProxy(url, child, logTail, target === 'bare-node');
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return {
    target,
    url,
    pid: child.pid,
    logTail,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM'); // main.ts drains and exits (and writes its CPU profile, if asked to)
      const done = await Promise.race([exited.then(() => true), delay(15_000, false)]);
      if (!done) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

// ---- Swift setup ---------------------------------------------------------------------------------------

interface Auth {
  token: string;
  accountPath: string; // '/v1/AUTH_qa16'
}

async function authenticate(swift: SwiftCluster): Promise<Auth> {
  const res = await fetch(swift.authUrl, { headers: { 'x-auth-user': USER.name, 'x-auth-key': USER.key } });
  await res.arrayBuffer();
  const token = res.headers.get('x-auth-token');
  const storageUrl = res.headers.get('x-storage-url');
  if (res.status !== 200 || !token || !storageUrl) throw new Error(`auth as ${USER.name} answered ${res.status}`);
  return { token, accountPath: new URL(storageUrl).pathname };
}

async function expect2xx(method: string, url: string, token: string, body?: Buffer): Promise<void> {
  const res = await fetch(url, {
    method,
    headers: { 'x-auth-token': token, ...(body ? { 'content-type': 'application/octet-stream' } : {}) },
    ...(body ? { body: new Uint8Array(body) } : {}),
  });
  await res.arrayBuffer();
  if (res.status < 200 || res.status >= 300) throw new Error(`${method} ${url} answered ${res.status}`);
}

// ---- one autocannon run --------------------------------------------------------------------------------

interface Sample {
  target: Target;
  round: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  responses: number;
  non2xx: number;
  errors: number; // connection errors and timeouts
  /** Times a client had to open a new connection because the server closed the last one. */
  reconnects: number;
  statusCodes: Record<string, number>;
  durationSec: number;
  /** CPU seconds per request spent by: Swift's servers, the proxy process, the load generator (this process). */
  cpuUsPerReq: { swift: number; proxy: number | null; loadgen: number };
  /** The proxy's own usage HEADs to Swift per request (from its /metrics); null for direct. */
  lookupsPerReq: number | null;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

interface RunSpec {
  workload: Workload;
  connections: number;
  seconds: number;
  baseUrl: string;
  auth: Auth;
  body: Buffer;
  /** Distinct per run, so PUT names never repeat. */
  namePrefix: string;
}

/** The proxy's count of its own usage HEADs to Swift (swift_quota_proxy_usage_lookups_total, all labels). */
async function usageLookups(proxyUrl: string): Promise<number> {
  const res = await fetch(`${proxyUrl}/metrics`);
  const text = await res.text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('swift_quota_proxy_usage_lookups_total')) total += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return total;
}

async function runLoad(spec: RunSpec): Promise<Omit<Sample, 'target' | 'round' | 'cpuUsPerReq' | 'lookupsPerReq'>> {
  const { workload, auth } = spec;
  const headers: Record<string, string> = { 'x-auth-token': auth.token };
  const options: Record<string, unknown> = {
    url: spec.baseUrl,
    connections: spec.connections,
    duration: spec.seconds,
    pipelining: 1,
    timeout: 10,
  };
  if (workload === 'put') {
    let n = 0;
    const base = `${auth.accountPath}/${PUT_CONTAINER}/${spec.namePrefix}-`;
    Object.assign(options, {
      method: 'PUT',
      body: spec.body,
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      requests: [{ setupRequest: (request: Record<string, unknown>) => ({ ...request, path: `${base}${++n}` }) }],
    });
  } else {
    Object.assign(options, {
      method: workload === 'get' ? 'GET' : 'HEAD',
      url: `${spec.baseUrl}${auth.accountPath}/${READ_CONTAINER}/${READ_OBJECT}`,
      headers,
    });
  }
  let reconnects = 0;
  options.setupClient = clientSetup({ headRequests: workload === 'head', onReconnect: () => reconnects++ });

  const latencies: number[] = [];
  let responses = 0;
  let non2xx = 0;
  const statusCodes: Record<string, number> = {};
  const run = autocannon(options);
  run.on('response', (_client: unknown, statusCode: number, _bytes: number, responseTimeMs: number) => {
    responses++;
    statusCodes[statusCode] = (statusCodes[statusCode] ?? 0) + 1;
    if (statusCode >= 200 && statusCode < 300) latencies.push(responseTimeMs);
    else non2xx++;
  });
  const result = await run;
  const sorted = Float64Array.from(latencies).sort();
  return {
    reqPerSec: responses / result.duration,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    responses,
    non2xx,
    errors: result.errors + result.mismatches,
    reconnects,
    statusCodes,
    durationSec: result.duration,
  };
}

// ---- results -------------------------------------------------------------------------------------------

interface Cell {
  workload: Workload;
  connections: number;
  target: Target;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
  reconnects: number;
  valid: boolean;
  ratioToDirect: number | null;
  cpuUsPerReq: { swift: number; proxy: number | null; loadgen: number };
  lookupsPerReq: number | null;
  rounds: Sample[];
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function summarize(workload: Workload, connections: number, samples: Sample[]): Cell[] {
  const cells: Cell[] = [];
  for (const target of settings.targets) {
    const rounds = samples.filter((s) => s.target === target);
    const proxyCpu = rounds.map((s) => s.cpuUsPerReq.proxy).filter((v): v is number => v !== null);
    const non2xx = rounds.reduce((sum, s) => sum + s.non2xx, 0);
    const errors = rounds.reduce((sum, s) => sum + s.errors, 0);
    cells.push({
      workload,
      connections,
      target,
      reqPerSec: median(rounds.map((s) => s.reqPerSec)),
      p50Ms: median(rounds.map((s) => s.p50Ms)),
      p99Ms: median(rounds.map((s) => s.p99Ms)),
      non2xx,
      errors,
      reconnects: rounds.reduce((sum, s) => sum + s.reconnects, 0),
      valid: non2xx === 0 && errors === 0 && rounds.every((s) => s.responses > 0),
      ratioToDirect: null,
      cpuUsPerReq: {
        swift: median(rounds.map((s) => s.cpuUsPerReq.swift)),
        proxy: proxyCpu.length ? median(proxyCpu) : null,
        loadgen: median(rounds.map((s) => s.cpuUsPerReq.loadgen)),
      },
      lookupsPerReq: target === 'direct' || target === 'bare-node' ? null : median(rounds.map((s) => s.lookupsPerReq ?? NaN)),
      rounds,
    });
  }
  const direct = cells.find((c) => c.target === 'direct');
  for (const cell of cells) {
    if (direct && cell.target !== 'direct') cell.ratioToDirect = cell.reqPerSec / direct.reqPerSec;
  }
  return cells;
}

const fmt = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');

/** The targets of issue 11 in front of Swift: PUT (and cached GET, 0.95) through the proxy relative to straight to Swift. */
const PUT_TARGETS: Partial<Record<ProxyTarget, number>> = { 'proxy-cached': 0.95, 'proxy-precise': 0.85 };

function targetSummary(cells: Cell[]): string[] {
  const lines: string[] = [];
  for (const cell of cells) {
    if (cell.target === 'direct' || cell.ratioToDirect === null) continue;
    const direct = cells.find((c) => c.workload === cell.workload && c.connections === cell.connections && c.target === 'direct');
    const goal = cell.workload === 'put' ? PUT_TARGETS[cell.target] : cell.target === 'proxy-cached' ? 0.95 : undefined;
    const valid = cell.valid && (direct?.valid ?? false);
    if (goal === undefined) {
      lines.push(`- ${cell.workload.toUpperCase()} c=${cell.connections} ${cell.target}: ${fmt(cell.ratioToDirect, 3)}× direct` + (direct ? `; CPU-bound ceiling ${fmt(cpuCeiling(direct, cell), 3)}×` : ''));
      continue;
    }
    lines.push(
      `- ${cell.workload.toUpperCase()} c=${cell.connections} ${cell.target}: ${fmt(cell.ratioToDirect, 3)}× direct ` +
        `(target ≥ ${goal}×: ${!valid ? 'not valid, errors' : cell.ratioToDirect >= goal ? 'met' : 'NOT met'})` +
        (direct ? `; CPU-bound ceiling ${fmt(cpuCeiling(direct, cell), 3)}×` : ''),
    );
  }
  if (lines.length > 0) {
    lines.push(
      '- CPU-bound ceiling: Swift, the proxy and the load generator share this machine\'s cores, so throughput is at most ' +
        'what the CPU allows: (direct\'s CPU per request) / (CPU per request through the proxy), each Swift + proxy + ' +
        'load generator as measured in the same run. A ratio near its ceiling is set by what the requests cost (the ' +
        'proxy\'s own CPU, and in precise mode the Swift CPU of its usage HEADs), not by waiting.',
    );
  }
  return lines;
}

/** The proxy/direct ratio the CPU allows when every process shares the machine's cores. */
function cpuCeiling(direct: Cell, proxied: Cell): number {
  const total = (c: Cell) => c.cpuUsPerReq.swift + (c.cpuUsPerReq.proxy ?? 0) + c.cpuUsPerReq.loadgen;
  return total(direct) / total(proxied);
}

function markdownTable(cells: Cell[]): string {
  const rows = [
    '| workload | conns | target | req/s | p50 ms | p99 ms | errors / non-2xx | proxy/direct | req/s per round | reconnects | CPU µs/req swift / proxy / loadgen | usage HEADs/req |',
    '|---|---:|---|---:|---:|---:|---:|---:|---|---:|---|---:|',
  ];
  for (const c of cells) {
    const ratio = c.ratioToDirect === null ? '' : `${fmt(c.ratioToDirect, 3)}×`;
    const problems = `${c.errors} / ${c.non2xx}${c.valid ? '' : ' **INVALID**'}`;
    const perRound = c.rounds.map((s) => fmt(s.reqPerSec, 0)).join(', ');
    const cpu = `${fmt(c.cpuUsPerReq.swift, 0)} / ${c.cpuUsPerReq.proxy === null ? '–' : fmt(c.cpuUsPerReq.proxy, 0)} / ${fmt(c.cpuUsPerReq.loadgen, 0)}`;
    rows.push(
      `| ${c.workload.toUpperCase()} 4 KiB | ${c.connections} | ${c.target} | ${fmt(c.reqPerSec, 0)} | ${fmt(c.p50Ms, 2)} | ${fmt(c.p99Ms, 2)} | ${problems} | ${ratio} | ${perRound} | ${c.reconnects} | ${cpu} | ${c.lookupsPerReq === null ? '' : fmt(c.lookupsPerReq, 2)} |`,
    );
  }
  return rows.join('\n');
}

function commandLine(): string {
  const env = Object.entries(process.env)
    .filter(([name]) => name.startsWith('BENCH_'))
    .map(([name, value]) => `${name}=${value}`)
    .sort();
  const cmd = process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : 'node --import tsx test/bench/bench.ts';
  return [...env, cmd].join(' ');
}

/** Which proxy code ran: the commit, and the files under src/ that differed from it when the proxies started. */
async function sourceState() {
  const git = (...args: string[]) =>
    promisify(execFile)('git', args, { cwd: REPO_ROOT }).then(
      (r) => r.stdout.trim(),
      () => '?',
    );
  const changed = await git('status', '--porcelain', '--', 'src');
  return {
    commit: await git('rev-parse', '--short', 'HEAD'),
    srcChanges: changed ? changed.split('\n').map((l) => l.trim()) : [],
    entry: settings.proxyEntry,
  };
}

async function machine() {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return {
    nproc: os.availableParallelism(),
    cpu: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown',
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
  };
}

// ---- cache fill ----------------------------------------------------------------------------------------

interface CacheFillResult {
  entries: number;
  bytesPerEntry: number;
  rssMiB: number;
  fillSeconds: number;
}

/** Targets of issue 11 for the usage cache. */
const CACHE_BYTES_PER_ENTRY_TARGET = 200;
const CACHE_RSS_TARGET_MIB = 400;

/** Runs cache-fill.ts in its own process (a clean heap, --expose-gc) on the proxy code the benchmark runs. */
async function cacheFill(entry: string, entries: number): Promise<CacheFillResult> {
  const ledgerModule = await compiled(path.join(path.dirname(entry), 'quota', 'ledger', 'memory.ts'));
  const { stdout } = await promisify(execFile)(process.execPath, ['--expose-gc', await compiled('test/bench/cache-fill.ts'), ledgerModule, String(entries)], { cwd: REPO_ROOT, maxBuffer: 1 << 20 });
  const result = JSON.parse(stdout.trim().split('\n').pop()!) as CacheFillResult;
  log(`bench: cache fill (${entry}): ${result.entries} entries, ${fmt(result.bytesPerEntry, 0)} B per entry, RSS ${fmt(result.rssMiB, 0)} MiB`);
  return result;
}

function cacheFillMarkdown(result: CacheFillResult, baseline: CacheFillResult | undefined): string {
  return [
    `${result.entries.toLocaleString('en')} container readings kept in the usage cache of one process (MemoryLedger, filled through read() as the ` +
      `quota checks call it; ${fmt(result.fillSeconds, 1)} s). Bytes per entry: V8 heap plus typed arrays after a full GC, over the ` +
      'first tenth; RSS after 10 s idle.',
    '',
    '| proxy code | entries | bytes per entry | RSS MiB |',
    '|---|---:|---:|---:|',
    ...(baseline ? [`| baseline (${settings.baselineEntry}) | ${baseline.entries} | ${fmt(baseline.bytesPerEntry, 0)} | ${fmt(baseline.rssMiB, 0)} |`] : []),
    `| ${settings.proxyEntry} | ${result.entries} | ${fmt(result.bytesPerEntry, 0)} | ${fmt(result.rssMiB, 0)} |`,
    '',
    `- bytes per entry: ${fmt(result.bytesPerEntry, 0)} (target ≤ ${CACHE_BYTES_PER_ENTRY_TARGET}: ${result.bytesPerEntry <= CACHE_BYTES_PER_ENTRY_TARGET ? 'met' : 'NOT met'})`,
    `- RSS with ${result.entries} entries: ${fmt(result.rssMiB, 0)} MiB (target < ${CACHE_RSS_TARGET_MIB} MiB at 1,000,000: ${result.entries < 1_000_000 ? 'not measured at 1,000,000' : result.rssMiB < CACHE_RSS_TARGET_MIB ? 'met' : 'NOT met'})`,
  ].join('\n');
}

// ---- report --------------------------------------------------------------------------------------------

async function writeReport(parts: { startedAt: Date; loadBefore: number[]; cells: Cell[]; sections: string[]; extra: Record<string, unknown>; source: Awaited<ReturnType<typeof sourceState>> }): Promise<void> {
  const { startedAt, loadBefore, cells: allCells, sections, source } = parts;
  const finishedAt = new Date();
  const report = {
    command: commandLine(),
    startedAt: startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    machine: { ...(await machine()), loadavgBefore: loadBefore, loadavgAfter: os.loadavg() },
    source,
    settings: { ...settings, objectSize: OBJECT_SIZE, user: USER.name, proxiesAs: settings.proxyInProcess ? 'in-process' : 'child processes' },
    ...parts.extra,
    cells: allCells,
  };
  const swiftTable = allCells.length === 0 ? [] : [
    '## Through the proxy vs straight to Swift',
    '',
    `${settings.seconds} s per run, ${settings.rounds} rounds per cell in alternating order; medians over rounds. ` +
      `Proxies as ${report.settings.proxiesAs}; autocannon in the parent process.`,
    '',
    markdownTable(allCells),
    '',
    ...targetSummary(allCells),
    '',
    'req/s: all answers per second (median over rounds); p50/p99: latency of 2xx answers; errors / non-2xx: summed ' +
      'over rounds, any makes the cell INVALID; proxy/direct: ratio of median req/s; reconnects: connections the ' +
      'server closed after an answer (summed; should be 0 with keep-alive); CPU µs/req: CPU time of Swift\'s ' +
      'servers, of the proxy process and of the load generator, per answer (from /proc, 10 ms resolution); usage HEADs/req: HEADs the proxy sent Swift to read usage, per answer.',
    '',
  ];
  const md = [
    '# swift-quota-proxy benchmark',
    '',
    `Command: \`${report.command}\``,
    '',
    `Date: ${report.startedAt} – ${report.finishedAt}; machine: nproc ${report.machine.nproc} (${report.machine.cpu}), ` +
      `node ${report.machine.node}, ${report.machine.kernel}; load average before ${loadBefore.map((l) => l.toFixed(2)).join(' ')}, ` +
      `after ${report.machine.loadavgAfter.map((l) => l.toFixed(2)).join(' ')}.`,
    '',
    `Proxy code: ${source.entry} at commit ${source.commit}` +
      (source.srcChanges.length ? ` with uncommitted changes in src/ (${source.srcChanges.join('; ')})` : ', src/ clean') + '.',
    '',
    ...sections,
    ...swiftTable,
  ].join('\n');
  process.stdout.write(`\n${md}\n`);
  if (settings.out) {
    const base = settings.out.replace(/\.(md|json)$/, '');
    await mkdir(path.dirname(path.resolve(base)), { recursive: true });
    await writeFile(`${base}.md`, md);
    await writeFile(`${base}.json`, `${JSON.stringify(report, null, 2)}\n`);
    log(`bench: wrote ${base}.md and ${base}.json`);
  }
}

// ---- main ----------------------------------------------------------------------------------------------

let workDirToRemove: string | undefined;

/** Synchronous last resort on exit and signals: kill the proxies, remove their config files. */
function killChildrenNow(): void {
  for (const child of children) child.kill('SIGKILL');
  if (workDirToRemove) rmSync(workDirToRemove, { recursive: true, force: true });
}

async function main(): Promise<void> {
  // Registered before startSwift installs its own handlers, so these run first; exiting from here runs the
  // cluster's exit handler, which kills Swift.
  process.on('exit', killChildrenNow);
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      killChildrenNow();
      process.exit(signal === 'SIGINT' ? 130 : 143);
    });
  }

  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'swift-quota-bench-'));
  workDirToRemove = workDir;
  let swift: SwiftCluster | undefined;
  const proxies = new Map<ProxyTarget, ProxyHandle>();
  try {
    log(`bench: ${JSON.stringify({ ...settings })}`);
    const sections: string[] = [];
    const extra: Record<string, unknown> = {};
    for (const workload of settings.oneCore) {
      const oneCoreSettings = { workload, seconds: settings.seconds, rounds: Math.max(settings.rounds, 3), connections: 16, repoRoot: REPO_ROOT, workDir, compiled, proxyEntry: settings.proxyEntry, ...(settings.baselineEntry ? { baselineEntry: settings.baselineEntry } : {}), log };
      const result = await passThroughBenchmark(oneCoreSettings);
      extra[workload === 'get' ? 'passThrough' : 'admittedPut'] = result;
      sections.push(workload === 'get' ? '## Pass-through cost on one core' : '## Admitted PUT cost on one core', '', passThroughMarkdown(result, oneCoreSettings), '');
    }
    if (settings.cacheFill) {
      const result = await cacheFill(settings.proxyEntry, settings.cacheFillEntries);
      const baseline = settings.baselineEntry ? await cacheFill(settings.baselineEntry, settings.cacheFillEntries) : undefined;
      extra.cacheFill = { result, baseline };
      sections.push('## Usage cache filled', '', cacheFillMarkdown(result, baseline), '');
    }
    if (settings.workloads.length === 0) {
      await writeReport({ startedAt, loadBefore, cells: [], sections, extra, source: await sourceState() });
      return;
    }
    swift = await startSwift({ log });
    if (settings.ledger === 'redis') ledgerRedis = await startRedis();
    const auth = await authenticate(swift);
    const swiftProcesses = await swiftPids(swift.dir);

    // The object the reads fetch, and the container the PUTs fill; made directly in Swift.
    const body = Buffer.alloc(OBJECT_SIZE);
    for (let i = 0; i < body.length; i++) body[i] = 97 + (i % 26);
    await expect2xx('PUT', `${swift.url}${auth.accountPath}/${READ_CONTAINER}`, auth.token);
    await expect2xx('PUT', `${swift.url}${auth.accountPath}/${PUT_CONTAINER}`, auth.token);
    await expect2xx('PUT', `${swift.url}${auth.accountPath}/${READ_CONTAINER}/${READ_OBJECT}`, auth.token, body);

    for (const target of settings.targets) {
      if (target === 'direct') continue;
      const proxy = await startProxyProcess(target, swift.url, workDir);
      proxies.set(target, proxy);
      log(`bench: ${target} at ${proxy.url}${proxy.pid ? ` (pid ${proxy.pid})` : ''}`);
      // Sanity: a write and a read through it.
      await expect2xx('PUT', `${proxy.url}${auth.accountPath}/${PUT_CONTAINER}/sanity-${target}`, auth.token, body);
      await expect2xx('GET', `${proxy.url}${auth.accountPath}/${READ_CONTAINER}/${READ_OBJECT}`, auth.token);
    }
    const source = await sourceState();
    log(`bench: proxy code: ${JSON.stringify(source)}`);
    const urlOf = (target: Target) => (target === 'direct' ? swift!.url : proxies.get(target)!.url);

    let runNumber = 0;
    const allCells: Cell[] = [];
    for (const workload of settings.workloads) {
      if (settings.warmupSeconds > 0) {
        for (const target of settings.targets) {
          const warm = await runLoad({
            workload,
            connections: Math.max(...settings.connections),
            seconds: settings.warmupSeconds,
            baseUrl: urlOf(target),
            auth,
            body,
            namePrefix: `warmup-${target}`,
          });
          log(`bench: warm-up ${workload} ${target}: ${fmt(warm.reqPerSec, 0)} req/s, errors ${warm.errors}, non-2xx ${warm.non2xx}, reconnects ${warm.reconnects}`);
        }
      }
      for (const connections of settings.connections) {
        const samples: Sample[] = [];
        for (let round = 0; round < settings.rounds; round++) {
          const order = round % 2 === 0 ? settings.targets : [...settings.targets].reverse();
          for (const target of order) {
            await delay(PAUSE_BETWEEN_RUNS_MS);
            const proxyPid = target === 'direct' || settings.proxyInProcess ? undefined : proxies.get(target)!.pid;
            // The quota proxies' own count of usage HEADs (bare-node has none).
            const proxyUrl = target === 'direct' || target === 'bare-node' ? undefined : proxies.get(target)!.url;
            const lookupsBefore = proxyUrl ? await usageLookups(proxyUrl) : 0;
            const cpuBefore = {
              swift: await cpuSecondsOf(swiftProcesses),
              proxy: proxyPid ? await cpuSecondsOf([proxyPid]) : 0,
              self: process.cpuUsage(),
            };
            const result = await runLoad({
              workload,
              connections,
              seconds: settings.seconds,
              baseUrl: urlOf(target),
              auth,
              body,
              namePrefix: `${target}-c${connections}-r${round}-${++runNumber}`,
            });
            const self = process.cpuUsage(cpuBefore.self);
            const perReq = (seconds: number) => (result.responses ? (seconds * 1e6) / result.responses : NaN);
            const sample: Sample = {
              target,
              round,
              ...result,
              cpuUsPerReq: {
                swift: perReq((await cpuSecondsOf(swiftProcesses)) - cpuBefore.swift),
                proxy: proxyPid ? perReq((await cpuSecondsOf([proxyPid])) - cpuBefore.proxy) : null,
                loadgen: perReq((self.user + self.system) / 1e6),
              },
              lookupsPerReq: proxyUrl && result.responses ? ((await usageLookups(proxyUrl)) - lookupsBefore) / result.responses : null,
            };
            samples.push(sample);
            log(
              `bench: ${workload} c=${connections} round ${round + 1}/${settings.rounds} ${target}: ` +
                `${fmt(sample.reqPerSec, 0)} req/s, p50 ${fmt(sample.p50Ms, 2)} ms, p99 ${fmt(sample.p99Ms, 2)} ms, ` +
                `errors ${sample.errors}, non-2xx ${sample.non2xx}, reconnects ${sample.reconnects}${sample.non2xx ? ` ${JSON.stringify(sample.statusCodes)}` : ''}`,
            );
          }
        }
        allCells.push(...summarize(workload, connections, samples));
      }
    }

    await writeReport({ startedAt, loadBefore, cells: allCells, sections, extra, source });
    const invalid = allCells.filter((c) => !c.valid);
    if (invalid.length > 0) {
      log(`bench: ${invalid.length} cell(s) had errors or non-2xx answers: their numbers are not valid`);
      for (const proxy of proxies.values()) if (proxy.logTail()) log(`--- ${proxy.target} log ---\n${proxy.logTail()}`);
      process.exitCode = 1;
    }
  } finally {
    await Promise.allSettled([...proxies.values()].map((p) => p.stop()));
    await swift?.stop();
    await ledgerRedis?.stop();
    await rm(workDir, { recursive: true, force: true });
  }
}

main().catch((error: unknown) => {
  log(`bench failed: ${(error as Error).stack ?? String(error)}`);
  process.exitCode = 1;
});
