/**
 * The one-core pass-through benchmark: what a GET that needs no quota decision costs the proxy, next to what
 * the same job costs nginx, a bare Node proxy and Fastify's own proxy plugin.
 *
 * Every proxy runs pinned to CPU 0 (`taskset -c 0`, all its threads); the static upstream and the load
 * generator share CPU 1. The upstream answers every GET with the same 4 KiB (nginx from Debian when installed,
 * else a small Node server), and /info with a Swift /info of the middlewares the test Swift runs, so the quota
 * proxy reads requests as it would in front of that Swift. The load is `wrk` (Debian) when installed, else
 * autocannon in its own process, 16 connections. The figure that matters is the proxy's CPU time per answer (from
 * /proc): it does not depend on how fast the load generator is, where req/s does.
 *
 * Rows: direct to the upstream (no proxy: the load generator's and upstream's own ceiling), nginx `proxy_pass`
 * (when installed), bare Node `http` + undici Pool, Fastify + @fastify/http-proxy defaults, and the quota
 * proxy (`access_log = false`) with a token on an object GET.
 *
 * The same table for an admitted write (`workload: 'put'`): a 4 KiB object PUT, each to a new name, which the
 * quota proxy (cached mode) checks and admits. The upstream then also answers as much of Swift as that needs:
 * a tempauth login for the proxy's service user, HEADs of the account and container with their usage, 201 to a
 * PUT (body read and dropped) and 404 to the POST the proxy asks whether the caller may write with. So the row
 * is the proxy's own cost of a decision made from its cache, without Swift's.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { ROOMY_QUOTA, proxyConfigText } from '../helpers/proxy.js';
import { freePort } from '../helpers/ports.js';

const NGINX = '/usr/sbin/nginx';
const WRK = '/usr/bin/wrk';
const TASKSET = '/usr/bin/taskset';
const CLOCK_TICKS_PER_SECOND = 100;
/** Load before the measured rounds, per row: JIT compilation and connection pools, off the record. */
const WARMUP_SECONDS = 2;
/** The object path every run reads: an object GET, which the quota proxy passes without a quota decision. */
const OBJECT_PATH = '/v1/AUTH_bench/bench/obj-4k';
/** Where the PUTs go: `<prefix><n>`, a new object every time (wrk); autocannon, if it is the load, PUTs one name. */
const PUT_PREFIX = '/v1/AUTH_bench/bench/put-';
const TOKEN = 'AUTH_tk0123456789abcdef0123456789abcdef';

/** Swift /info as the test Swift answers it (its middlewares decide how the quota proxy reads requests). */
const SWIFT_INFO = {
  swift: { version: '2.30.1', max_file_size: 5368709122 },
  tempauth: { account_acls: true },
  bulk_upload: { max_containers_per_extraction: 10000, max_failed_extractions: 1000 },
  bulk_delete: { max_deletes_per_request: 10000, max_failed_deletes: 1000 },
  s3api: {},
  formpost: {},
  tempurl: { methods: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'] },
  slo: { max_manifest_segments: 1000 },
  dlo: {},
  versioned_writes: {},
  object_versioning: {},
  container_quotas: {},
  account_quotas: {},
};

/** `get`: an object GET, which needs no decision; `put`: a 4 KiB object PUT, checked and admitted. */
export type OneCoreWorkload = 'get' | 'put';

/** What the upstream answers to HEADs of an account and of a container (paths as nginx regular expressions). */
const STUB_USAGE: Record<string, Record<string, number>> = {
  '^/v1/[^/]+/?$': { 'X-Account-Container-Count': 1, 'X-Account-Object-Count': 0, 'X-Account-Bytes-Used': 0 },
  '^/v1/[^/]+/[^/]+/?$': { 'X-Container-Object-Count': 0, 'X-Container-Bytes-Used': 0 },
};

export interface PassThroughSettings {
  workload: OneCoreWorkload;
  seconds: number;
  rounds: number;
  connections: number;
  repoRoot: string;
  workDir: string;
  /** The JavaScript tsc makes of a TypeScript module (relative to repoRoot or absolute). */
  compiled(module: string): Promise<string>;
  /** The quota proxy's entry module, relative to repoRoot. */
  proxyEntry: string;
  /** Another checkout's entry module, measured in the same run as a row of its own (before/after). */
  baselineEntry?: string;
  log(line: string): void;
}

export interface PassThroughRow {
  name: string;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of the proxy process per answer, µs (median over rounds); null for the direct row. */
  cpuUsPerReq: number | null;
  non2xx: number;
  errors: number;
  rounds: Array<{ reqPerSec: number; cpuUsPerReq: number | null }>;
  /**
   * CPU per request relative to Fastify + @fastify/http-proxy's defaults, both loaded at once on the same core
   * (median over rounds): the machine's changes of speed from one run to the next weigh on both alike.
   */
  pairedToFastify?: { median: number; rounds: number[] };
}

interface Server {
  name: string;
  url: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

const run = promisify(execFile);

function spawnPinned(cpu: number, command: string, args: string[], cwd: string): ChildProcess {
  const child = spawn(TASKSET, ['-c', String(cpu), command, ...args], { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  let errors = '';
  child.stderr!.on('data', (chunk: Buffer) => {
    errors = (errors + chunk.toString()).slice(-2000);
  });
  child.once('exit', (code, signal) => {
    if (code !== 0 && signal === null && errors) process.stderr.write(`${command} ${args.join(' ')} exited ${code}: ${errors}\n`);
  });
  return child;
}

/** taskset execs the command, so the child's pid is the server's. */
function serverOf(name: string, url: string, child: ChildProcess): Server {
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name,
    url,
    pid: child.pid,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      if (!(await Promise.race([exited.then(() => true), delay(10_000, false)]))) {
        child.kill('SIGKILL');
        await exited;
      }
    },
  };
}

async function waitUntilAnswering(url: string, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const res = await fetch(`${url}${OBJECT_PATH}`, { headers: { 'x-auth-token': TOKEN } });
      const body = await res.arrayBuffer();
      const put = await fetch(`${url}${PUT_PREFIX}probe`, { method: 'PUT', headers: { 'x-auth-token': TOKEN }, body: Buffer.alloc(4096, 'x') });
      await put.arrayBuffer();
      if (res.status === 200 && body.byteLength === 4096 && put.status === 201) return;
      throw new Error(`${what} answered ${res.status} with ${body.byteLength} bytes to a GET, ${put.status} to a PUT`);
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what} at ${url} not answering after 30 s: ${(error as Error).message}`);
      await delay(100);
    }
  }
}

function nginxConfig(dir: string, name: string, body: string): string {
  return [
    'daemon off;',
    'master_process off;',
    'worker_processes 1;',
    'user root;',
    `pid ${path.join(dir, `${name}.pid`)};`,
    `error_log ${path.join(dir, `${name}.error.log`)} error;`,
    'events { worker_connections 4096; }',
    'http {',
    '  access_log off;',
    `  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir}; uwsgi_temp_path ${dir}; scgi_temp_path ${dir};`,
    '  keepalive_requests 10000000;',
    body,
    '}',
  ].join('\n');
}

async function startUpstream(settings: PassThroughSettings): Promise<Server> {
  const port = await freePort();
  const infoFile = path.join(settings.workDir, 'info.json');
  await writeFile(infoFile, JSON.stringify(SWIFT_INFO));
  if (existsSync(NGINX)) {
    await writeFile(path.join(settings.workDir, 'obj-4k'), Buffer.alloc(4096, 'x'));
    const file = path.join(settings.workDir, 'upstream.conf');
    await writeFile(file, nginxConfig(settings.workDir, 'upstream', [
      `  server { listen 127.0.0.1:${port}; root ${settings.workDir};`,
      '    location = /info { default_type application/json; try_files /info.json =404; }',
      `    location = /auth/v1.0 { add_header X-Auth-Token ${TOKEN}; add_header X-Storage-Url http://127.0.0.1:${port}/v1/AUTH_bench; add_header X-Auth-Token-Expires 86400; return 200; }`,
      ...Object.entries(STUB_USAGE).map(([pattern, headers]) => `    location ~ ${pattern} { ${Object.entries(headers).map(([name, value]) => `add_header ${name} ${value};`).join(' ')} return 204; }`),
      '    location / { if ($request_method = PUT) { return 201; } if ($request_method = POST) { return 404; } default_type application/octet-stream; try_files /obj-4k =404; }',
      '  }',
    ].join('\n')));
    const child = spawnPinned(1, NGINX, ['-c', file, '-e', path.join(settings.workDir, 'upstream.stderr.log')], settings.workDir);
    const server = serverOf('nginx static', `http://127.0.0.1:${port}`, child);
    await waitUntilAnswering(server.url, 'nginx upstream');
    return server;
  }
  const child = spawnPinned(1, process.execPath, [await settings.compiled('test/bench/reference-servers.ts'), 'static', String(port), infoFile, TOKEN], settings.repoRoot);
  const server = serverOf('node static', `http://127.0.0.1:${port}`, child);
  await waitUntilAnswering(server.url, 'node upstream');
  return server;
}

async function startNginxProxy(settings: PassThroughSettings, upstream: string): Promise<Server> {
  const port = await freePort();
  const file = path.join(settings.workDir, 'nginx-proxy.conf');
  const text = nginxConfig(settings.workDir, 'nginx-proxy', [
    `  upstream swift { server ${new URL(upstream).host}; keepalive 64; }`,
    `  server { listen 127.0.0.1:${port};`,
    '    location / { proxy_pass http://swift; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_buffering off; proxy_request_buffering off; }',
    '  }',
  ].join('\n'));
  await writeFile(file, text);
  const child = spawnPinned(0, NGINX, ['-c', file, '-e', path.join(settings.workDir, 'nginx-proxy.stderr.log')], settings.workDir);
  const server = serverOf('nginx 1.22 proxy_pass (keepalive, no buffering)', `http://127.0.0.1:${port}`, child);
  await waitUntilAnswering(server.url, 'nginx proxy');
  return server;
}

async function startNodeReference(settings: PassThroughSettings, mode: 'bare-proxy' | 'fastify-proxy', upstream: string): Promise<Server> {
  const port = await freePort();
  const child = spawnPinned(0, process.execPath, [await settings.compiled('test/bench/reference-servers.ts'), mode, upstream, String(port)], settings.repoRoot);
  const name = mode === 'bare-proxy' ? `bare Node ${process.version} http + undici Pool` : 'Fastify 5 + @fastify/http-proxy, defaults';
  const server = serverOf(name, `http://127.0.0.1:${port}`, child);
  await waitUntilAnswering(server.url, name);
  return server;
}

async function startQuotaProxy(settings: PassThroughSettings, upstream: string, entry: string, name: string): Promise<Server> {
  const port = await freePort();
  const file = path.join(settings.workDir, `quota-proxy-${port}.conf`);
  await writeFile(file, proxyConfigText({ upstream, port, quota: ROOMY_QUOTA, extraProxyLines: ['access_log = false'], shippedCensus: true }));
  const child = spawnPinned(0, process.execPath, [await settings.compiled(entry), '--config', file], settings.repoRoot);
  const server = serverOf(name, `http://127.0.0.1:${port}`, child);
  await waitUntilAnswering(server.url, 'swift-quota-proxy');
  return server;
}

async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}

interface LoadResult {
  responses: number;
  seconds: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

/** wrk's latency figures: `50%  123.00us`, `99%    1.20ms`. */
function wrkDuration(text: string, label: string): number {
  const match = new RegExp(`^\\s*${label}\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(text);
  if (!match) return NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 'ms' ? value : value * 1000;
}

/** wrk's script for the PUT workload: 4 KiB to a new name each time. */
function wrkPutScript(): string {
  return [
    'wrk.method = "PUT"',
    'wrk.body = string.rep("x", 4096)',
    `wrk.headers["X-Auth-Token"] = "${TOKEN}"`,
    'wrk.headers["Content-Type"] = "application/octet-stream"',
    'local n = 0',
    `request = function() n = n + 1; return wrk.format(nil, "${PUT_PREFIX}" .. n) end`,
    '',
  ].join('\n');
}

async function load(url: string, connections: number, seconds: number, settings: Pick<PassThroughSettings, 'workload' | 'repoRoot' | 'workDir'>): Promise<LoadResult> {
  const put = settings.workload === 'put';
  if (existsSync(WRK)) {
    const script = path.join(settings.workDir, 'put.lua');
    if (put && !existsSync(script)) await writeFile(script, wrkPutScript());
    const request = put ? ['-s', script, url] : ['-H', `X-Auth-Token: ${TOKEN}`, `${url}${OBJECT_PATH}`];
    const { stdout } = await run(TASKSET, ['-c', '1', WRK, '-t1', `-c${connections}`, `-d${seconds}s`, '--latency', ...request], { maxBuffer: 1 << 20 });
    const total = /(\d+) requests in ([\d.]+)(ms|s|m)/.exec(stdout);
    if (!total) throw new Error(`cannot read wrk's output:\n${stdout}`);
    const duration = Number(total[2]) * (total[3] === 'ms' ? 0.001 : total[3] === 'm' ? 60 : 1);
    const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    return {
      responses: Number(total[1]),
      seconds: duration,
      p50Ms: wrkDuration(stdout, '50%'),
      p99Ms: wrkDuration(stdout, '99%'),
      non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0),
      errors: socketErrors ? socketErrors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    };
  }
  const bin = path.join(path.dirname(createRequire(import.meta.url).resolve('autocannon/package.json')), 'autocannon.js');
  const request = put ? ['-m', 'PUT', '-b', 'x'.repeat(4096), `${url}${PUT_PREFIX}0`] : [`${url}${OBJECT_PATH}`];
  const { stdout } = await run(TASKSET, ['-c', '1', process.execPath, bin, '-j', '-c', String(connections), '-d', String(seconds), '-H', `X-Auth-Token=${TOKEN}`, ...request], { cwd: settings.repoRoot, maxBuffer: 16 << 20 });
  const result = JSON.parse(stdout) as { requests: { total: number }; duration: number; latency: { p50: number; p99: number }; non2xx: number; errors: number; timeouts: number };
  return { responses: result.requests.total, seconds: result.duration, p50Ms: result.latency.p50, p99Ms: result.latency.p99, non2xx: result.non2xx, errors: result.errors };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Runs every row, rounds in alternating order, and returns the rows in table order. */
export async function passThroughBenchmark(settings: PassThroughSettings): Promise<{ rows: PassThroughRow[]; loadGenerator: string; upstream: string }> {
  if (!existsSync(TASKSET)) throw new Error('pass-through benchmark: taskset (util-linux) is needed to pin processes to one core');
  const upstream = await startUpstream(settings);
  const servers: Server[] = [];
  try {
    const direct: Server = { name: `direct to the upstream (${upstream.name}, no proxy)`, url: upstream.url, pid: undefined, stop: async () => {} };
    servers.push(direct);
    if (existsSync(NGINX)) servers.push(await startNginxProxy(settings, upstream.url));
    servers.push(await startNodeReference(settings, 'bare-proxy', upstream.url));
    servers.push(await startNodeReference(settings, 'fastify-proxy', upstream.url));
    if (settings.baselineEntry) servers.push(await startQuotaProxy(settings, upstream.url, settings.baselineEntry, `swift-quota-proxy, baseline (${settings.baselineEntry})`));
    // Last: the row the targets are read from.
    const what = settings.workload === 'get' ? 'object GET' : 'object PUT admitted, cached mode';
    servers.push(await startQuotaProxy(settings, upstream.url, settings.proxyEntry, `**swift-quota-proxy** (\`access_log = false\`, ${what})`));
    for (const server of servers) await load(server.url, settings.connections, WARMUP_SECONDS, settings);
    const samples = new Map<Server, Array<LoadResult & { cpuUsPerReq: number | null }>>(servers.map((s) => [s, []]));
    for (let round = 0; round < settings.rounds; round++) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
        await delay(300);
        const before = server.pid ? await cpuSeconds(server.pid) : 0;
        const result = await load(server.url, settings.connections, settings.seconds, settings);
        const cpu = server.pid ? ((await cpuSeconds(server.pid)) - before) * 1e6 / result.responses : null;
        samples.get(server)!.push({ ...result, cpuUsPerReq: cpu });
        settings.log(`bench: one-core ${settings.workload} round ${round + 1}/${settings.rounds} ${server.name}: ${(result.responses / result.seconds).toFixed(0)} req/s, ${cpu === null ? '' : `${cpu.toFixed(1)} µs CPU/req, `}p99 ${result.p99Ms.toFixed(2)} ms`);
      }
    }
    const rows = servers.map((server): PassThroughRow => {
      const rounds = samples.get(server)!;
      const cpus = rounds.map((r) => r.cpuUsPerReq).filter((c): c is number => c !== null);
      return {
        name: server.name,
        reqPerSec: median(rounds.map((r) => r.responses / r.seconds)),
        p50Ms: median(rounds.map((r) => r.p50Ms)),
        p99Ms: median(rounds.map((r) => r.p99Ms)),
        cpuUsPerReq: cpus.length ? median(cpus) : null,
        non2xx: rounds.reduce((sum, r) => sum + r.non2xx, 0),
        errors: rounds.reduce((sum, r) => sum + r.errors, 0),
        rounds: rounds.map((r) => ({ reqPerSec: r.responses / r.seconds, cpuUsPerReq: r.cpuUsPerReq })),
      };
    });
    // Paired rounds: each Node proxy and Fastify's defaults loaded at the same time, half the connections each.
    const fastify = servers.find((server) => server.name.startsWith('Fastify'))!;
    for (const [index, server] of servers.entries()) {
      if (server === fastify || !server.pid || server.name.startsWith('nginx')) continue;
      const ratios: number[] = [];
      for (let round = 0; round < settings.rounds; round++) {
        await delay(300);
        const before = [await cpuSeconds(server.pid), await cpuSeconds(fastify.pid!)];
        const [mine, theirs] = await Promise.all([
          load(server.url, settings.connections / 2, settings.seconds, settings),
          load(fastify.url, settings.connections / 2, settings.seconds, settings),
        ]);
        const cpuMine = ((await cpuSeconds(server.pid)) - before[0]!) / mine.responses;
        const cpuTheirs = ((await cpuSeconds(fastify.pid!)) - before[1]!) / theirs.responses;
        ratios.push(cpuMine / cpuTheirs);
        settings.log(`bench: one-core ${settings.workload} paired round ${round + 1}/${settings.rounds} ${server.name}: ${(cpuMine / cpuTheirs).toFixed(3)}× Fastify's CPU per request`);
      }
      rows[index]!.pairedToFastify = { median: median(ratios), rounds: ratios };
    }

    return { rows, loadGenerator: existsSync(WRK) ? 'wrk (Debian), 1 thread' : 'autocannon, own process', upstream: upstream.name };
  } finally {
    await Promise.allSettled(servers.map((s) => s.stop()));
    await upstream.stop();
  }
}

/** The pass-through target of issue 11: the quota proxy's CPU per pass-through GET on one core. */
export const PASS_THROUGH_CPU_TARGET_US = 70;

export function passThroughMarkdown(result: { rows: PassThroughRow[]; loadGenerator: string; upstream: string }, settings: Pick<PassThroughSettings, 'workload' | 'seconds' | 'rounds' | 'connections'>): string {
  const fmt = (value: number, digits: number) => (Number.isFinite(value) ? value.toFixed(digits) : '–');
  const get = settings.workload === 'get';
  const request = get ? 'pass-through GET' : 'admitted PUT';
  const lines = [
    `Each proxy pinned to CPU 0; upstream (${result.upstream}) and load generator (${result.loadGenerator}, ${settings.connections} connections) on CPU 1. ` +
      `${get ? '4 KiB object GET' : '4 KiB object PUT, a new name each time (the upstream answers 201 and the usage HEADs the quota proxy reads)'}, ${settings.seconds} s per run, ${settings.rounds} rounds in alternating order, medians.`,
    'Paired: the proxy and Fastify + @fastify/http-proxy (defaults) loaded at the same time on CPU 0, ' + `${settings.connections / 2} connections each: the ratio of their CPU per request, which the speed changes of a shared machine do not move.`,
    '',
    `| ${request}, one core | req/s | p50 ms | p99 ms | proxy CPU µs/req | per round (req/s; µs) | errors / non-2xx | CPU/req vs Fastify, paired (rounds) |`,
    '|---|---:|---:|---:|---:|---|---:|---|',
  ];
  for (const row of result.rows) {
    const perRound = row.rounds.map((r) => `${fmt(r.reqPerSec, 0)}; ${r.cpuUsPerReq === null ? '–' : fmt(r.cpuUsPerReq, 1)}`).join(' / ');
    const paired = row.pairedToFastify ? `${fmt(row.pairedToFastify.median, 2)}× (${row.pairedToFastify.rounds.map((r) => fmt(r, 2)).join(', ')})` : row.name.startsWith('Fastify') ? '1×' : '';
    lines.push(`| ${row.name} | ${fmt(row.reqPerSec, 0)} | ${fmt(row.p50Ms, 3)} | ${fmt(row.p99Ms, 3)} | ${row.cpuUsPerReq === null ? '–' : fmt(row.cpuUsPerReq, 1)} | ${perRound} | ${row.errors} / ${row.non2xx} | ${paired} |`);
  }
  const ours = result.rows[result.rows.length - 1]!;
  const fastify = result.rows.find((row) => row.name.startsWith('Fastify'));
  const baseline = result.rows.find((row) => row.name.startsWith('swift-quota-proxy, baseline'));
  const bare = result.rows.find((row) => row.name.startsWith('bare Node'));
  lines.push('');
  if (baseline?.pairedToFastify && ours.pairedToFastify) {
    lines.push(`- swift-quota-proxy CPU per ${request}, paired with Fastify's defaults: ${fmt(ours.pairedToFastify.median, 2)}× (baseline: ${fmt(baseline.pairedToFastify.median, 2)}×)`);
  }
  if (ours.pairedToFastify) {
    lines.push(`- at or below Fastify + @fastify/http-proxy's defaults (paired): ${ours.pairedToFastify.median <= 1 ? 'met' : 'NOT met'}`);
  }
  if (fastify?.cpuUsPerReq && bare?.cpuUsPerReq && ours.cpuUsPerReq) {
    lines.push(
      `- swift-quota-proxy CPU per ${request}: ${fmt(ours.cpuUsPerReq / fastify.cpuUsPerReq, 2)}× Fastify + @fastify/http-proxy's defaults, ` +
        `${fmt(ours.cpuUsPerReq / bare.cpuUsPerReq, 2)}× bare Node` + (get ? ' (the target: at or below Fastify\'s defaults, near bare Node)' : ''),
    );
  }
  if (get) {
    lines.push(
      `- swift-quota-proxy pass-through GET: ${fmt(ours.cpuUsPerReq ?? NaN, 1)} µs CPU per request on one core ` +
        `(target ≤ ${PASS_THROUGH_CPU_TARGET_US} µs: ${ours.errors + ours.non2xx > 0 ? 'not valid, errors' : (ours.cpuUsPerReq ?? Infinity) <= PASS_THROUGH_CPU_TARGET_US ? 'met' : 'NOT met'})`,
    );
  } else if (ours.errors + ours.non2xx > 0) {
    lines.push('- not valid: errors or non-2xx answers');
  }
  return lines.join('\n');
}
