/**
 * What clients without credentials can take of the proxy (issue 22, "bounded resources"), measured: a real
 * Swift and the proxy as a process of its own (like `npm run bench`), a victim tenant doing PUTs and GETs, and
 *
 *   quiet   the victim alone;
 *   idle    1,000 connections that send `POST /v1/AUTH_x/c/o` with `Content-Length: 10` and no body, held;
 *   heads   20,000 connections that each send 250 KB of request head and never finish it.
 *
 * For each: the proxy up or down at the end, its peak RSS (VmRSS sampled every 100 ms), what the attackers were
 * answered, and the victim's p50/p99 and failures (a request taking more than 10 s counts as 10 s and a failure).
 *
 *   node --import tsx test/bench/exhaustion.ts             # this checkout (npm run bench:exhaustion)
 *   EXHAUSTION_ENTRY=../main/src/main.ts node --import tsx test/bench/exhaustion.ts   # another checkout
 *
 * Environment: EXHAUSTION_ENTRY (the proxy's entry module, default src/main.ts), EXHAUSTION_IDLE (1000),
 * EXHAUSTION_HEADS (20000), EXHAUSTION_HEAD_KB (250), EXHAUSTION_ADDRESSES (40: the attackers connect from
 * 127.0.0.2 on, spread over this many loopback addresses; the victim from 127.0.0.1), EXHAUSTION_SECONDS (20,
 * the victim's run under each attack), EXHAUSTION_PROXY_LINES (extra [quota-proxy] lines, `;`-separated).
 *
 * File descriptors: `ulimit -n` caps each process (20,000 on the machine this was written on, soft and hard),
 * so the attack connections are opened by child processes of at most 5,000 connections each; the proxy has
 * the same limit as any process.
 *
 * Not part of `npm test`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { ROOMY_QUOTA, proxyConfigText } from '../helpers/proxy.js';
import { freePort } from '../helpers/ports.js';
import { startSwift } from '../swift/cluster.js';

const THIS_FILE = fileURLToPath(import.meta.url);
const REPO_ROOT = path.resolve(path.dirname(THIS_FILE), '../..');
const log = (line: string) => process.stderr.write(`${line}\n`);
const num = (name: string, fallback: number) => (process.env[name] ? Number(process.env[name]) : fallback);

const PER_PROCESS = 5000;
const VICTIM_TIMEOUT_MS = 10_000;

// ---- the attacker processes ----------------------------------------------------------------------------

/** Child mode: opens `count` connections from the given addresses and reports what they were answered. */
async function attacker(kind: string, port: number, count: number, firstAddress: number, addresses: number, headKb: number): Promise<void> {
  const statuses: Record<string, number> = {};
  let opened = 0;
  let closed = 0;
  let failed = 0;
  const report = () => process.stdout.write(`${JSON.stringify({ opened, closed, failed, statuses })}\n`);
  const head = kind === 'idle'
    ? Buffer.from(`POST /v1/AUTH_x/c/o HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 10\r\n\r\n`)
    : Buffer.from(`GET /v1/AUTH_x/c/o HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n${Array.from({ length: Math.ceil((headKb * 1000) / 8016) }, (_, i) => `X-Pad-${String(i).padStart(4, '0')}: ${'a'.repeat(8000)}\r\n`).join('')}`);
  const sockets: net.Socket[] = [];
  const timer = setInterval(report, 1000);
  for (let i = 0; i < count; i++) {
    const localAddress = `127.0.0.${firstAddress + (i % addresses)}`;
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    sockets.push(socket);
    let answered = false;
    socket.on('connect', () => {
      opened++;
      socket.write(head);
    });
    socket.on('data', (chunk: Buffer) => {
      if (answered) return;
      answered = true;
      const status = chunk.toString('latin1', 0, 12).split(' ')[1] ?? '?';
      statuses[status] = (statuses[status] ?? 0) + 1;
    });
    socket.on('error', () => {
      failed++;
    });
    socket.on('close', () => {
      closed++;
    });
    // Batches, so that the proxy's listen backlog is not what refuses them.
    if (i % 100 === 99) await delay(20);
  }
  report();
  process.on('SIGTERM', () => {
    clearInterval(timer);
    report();
    for (const socket of sockets) socket.destroy();
    process.exit(0);
  });
}

interface AttackReport {
  opened: number;
  closed: number;
  failed: number;
  statuses: Record<string, number>;
}

class Attack {
  private readonly children: ChildProcess[] = [];
  private readonly latest = new Map<ChildProcess, AttackReport>();

  constructor(kind: 'idle' | 'heads', port: number, total: number, addresses: number, headKb: number) {
    const processes = Math.ceil(total / PER_PROCESS);
    for (let p = 0; p < processes; p++) {
      const count = Math.min(PER_PROCESS, total - p * PER_PROCESS);
      // Each process its own addresses, so that together they spread over `addresses`.
      const mine = Math.max(1, Math.floor(addresses / processes));
      const child = spawn(process.execPath, ['--import', 'tsx', THIS_FILE, 'attacker', kind, String(port), String(count), String(2 + p * mine), String(mine), String(headKb)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
      this.children.push(child);
      let buffered = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const lines = buffered.split('\n');
        buffered = lines.pop()!;
        for (const line of lines) if (line.trim()) this.latest.set(child, JSON.parse(line) as AttackReport);
      });
    }
  }

  summary(): AttackReport {
    const sum: AttackReport = { opened: 0, closed: 0, failed: 0, statuses: {} };
    for (const report of this.latest.values()) {
      sum.opened += report.opened;
      sum.closed += report.closed;
      sum.failed += report.failed;
      for (const [status, n] of Object.entries(report.statuses)) sum.statuses[status] = (sum.statuses[status] ?? 0) + n;
    }
    return sum;
  }

  async stop(): Promise<AttackReport> {
    await Promise.all(this.children.map((child) => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    })));
    return this.summary();
  }
}

// ---- the proxy -----------------------------------------------------------------------------------------

interface Proxy {
  url: string;
  child: ChildProcess;
  rssPeakMiB: number;
  sampleRss(): Promise<void>;
  alive(): Promise<boolean>;
  stop(): Promise<void>;
  logTail(): string;
}

async function startProxyProcess(entry: string, upstream: string, dir: string, extraLines: string[]): Promise<Proxy> {
  const port = await freePort();
  const file = path.join(dir, 'proxy.conf');
  await writeFile(file, proxyConfigText({ upstream, quota: ROOMY_QUOTA, preciseMode: false, cacheTimeout: 30, port, extraProxyLines: ['log_level = error', 'access_log = false', ...extraLines] }));
  let root = path.dirname(path.resolve(entry));
  while (!existsSync(path.join(root, 'package.json'))) root = path.dirname(root);
  const child = spawn(process.execPath, ['--import', 'tsx', path.resolve(entry), '--config', file], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const keep = (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(line.slice(0, 400));
    if (lines.length > 50) lines.splice(0, lines.length - 50);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`proxy exited while starting:\n${lines.join('\n')}`);
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) break;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error('proxy not ready after 60 s');
    await delay(200);
  }
  const proxy: Proxy = {
    url,
    child,
    rssPeakMiB: 0,
    async sampleRss() {
      try {
        const status = await readFile(`/proc/${child.pid}/status`, 'utf8');
        const rss = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) / 1024;
        proxy.rssPeakMiB = Math.max(proxy.rssPeakMiB, rss);
      } catch {
        // gone
      }
    },
    async alive() {
      if (child.exitCode !== null || child.signalCode !== null) return false;
      try {
        const answer = await request(`${url}/healthz`, { headersTimeout: 5000, bodyTimeout: 5000 });
        await answer.body.dump();
        return answer.statusCode === 200;
      } catch {
        return false;
      }
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
    },
    logTail: () => lines.slice(-5).join('\n'),
  };
  return proxy;
}

// ---- the victim ----------------------------------------------------------------------------------------

interface VictimResult {
  requests: number;
  failures: number;
  p50: number;
  p99: number;
}

/** Four clients each PUTting a 4 KB object and GETting it back, for `seconds`. */
async function victim(proxyUrl: string, accountPath: string, token: string, seconds: number): Promise<VictimResult> {
  const agent = new Agent({ connections: 8, headersTimeout: VICTIM_TIMEOUT_MS, bodyTimeout: VICTIM_TIMEOUT_MS });
  const latencies: number[] = [];
  let failures = 0;
  const body = Buffer.alloc(4096, 'v');
  const end = Date.now() + seconds * 1000;
  const timed = async (method: 'PUT' | 'GET', name: string) => {
    const started = performance.now();
    try {
      const answer = await request(`${proxyUrl}${accountPath}/victim/${name}`, { method, dispatcher: agent, headers: { 'x-auth-token': token }, body: method === 'PUT' ? body : undefined, signal: AbortSignal.timeout(VICTIM_TIMEOUT_MS) });
      await answer.body.dump();
      if (answer.statusCode >= 300) failures++;
      latencies.push(performance.now() - started);
    } catch {
      failures++;
      latencies.push(VICTIM_TIMEOUT_MS);
    }
  };
  await Promise.all(Array.from({ length: 4 }, async (_, worker) => {
    for (let i = 0; Date.now() < end; i++) {
      await timed('PUT', `w${worker}-${i % 50}`);
      await timed('GET', `w${worker}-${i % 50}`);
    }
  }));
  await agent.close();
  latencies.sort((a, b) => a - b);
  const at = (p: number) => Math.round((latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0) * 10) / 10;
  return { requests: latencies.length, failures, p50: at(0.5), p99: at(0.99) };
}

// ---- the run -------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const entry = path.resolve(REPO_ROOT, process.env.EXHAUSTION_ENTRY ?? 'src/main.ts');
  const seconds = num('EXHAUSTION_SECONDS', 20);
  const addresses = num('EXHAUSTION_ADDRESSES', 40);
  const extraLines = (process.env.EXHAUSTION_PROXY_LINES ?? '').split(';').map((line) => line.trim()).filter(Boolean);
  const swift = await startSwift({ log });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'exhaustion-'));
  const auth = await fetch(swift.authUrl, { headers: { 'x-auth-user': 'adv251:admin', 'x-auth-key': 'adv251pass' } });
  const token = auth.headers.get('x-auth-token')!;
  const accountPath = new URL(auth.headers.get('x-storage-url')!).pathname;
  await (await fetch(`${swift.url}${accountPath}/victim`, { method: 'PUT', headers: { 'x-auth-token': token } })).arrayBuffer();
  const results: Record<string, unknown> = { entry: path.relative(REPO_ROOT, entry) || entry, node: process.version, ulimitN: 20000 };

  const scenarios: Array<{ name: string; attack?: (port: number) => Attack }> = [
    { name: 'quiet' },
    { name: `idle: ${num('EXHAUSTION_IDLE', 1000)} held bodies`, attack: (port) => new Attack('idle', port, num('EXHAUSTION_IDLE', 1000), addresses, 0) },
    { name: `heads: ${num('EXHAUSTION_HEADS', 20000)} x ${num('EXHAUSTION_HEAD_KB', 250)} KB unfinished`, attack: (port) => new Attack('heads', port, num('EXHAUSTION_HEADS', 20000), addresses, num('EXHAUSTION_HEAD_KB', 250)) },
  ];
  for (const scenario of scenarios) {
    // A proxy of its own for each, so that one scenario's leftovers do not weigh on the next.
    const proxy = await startProxyProcess(entry, swift.url, dir, extraLines);
    const sampler = setInterval(() => void proxy.sampleRss(), 100);
    await victim(proxy.url, accountPath, token, 2); // warm-up
    const port = Number(new URL(proxy.url).port);
    const attack = scenario.attack?.(port);
    if (attack) await delay(3000); // the attack under way
    const load = await victim(proxy.url, accountPath, token, seconds);
    const answered = await attack?.stop();
    const up = await proxy.alive();
    clearInterval(sampler);
    await proxy.sampleRss();
    const result = { up, rssPeakMiB: Math.round(proxy.rssPeakMiB), victim: load, attackers: answered };
    results[scenario.name] = result;
    log(`${scenario.name}: ${JSON.stringify(result)}${up ? '' : `\n${proxy.logTail()}`}`);
    await proxy.stop();
  }
  process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
  await swift.stop();
}

if (process.argv[2] === 'attacker') {
  const [kind, port, count, first, addresses, headKb] = process.argv.slice(3);
  void attacker(kind!, Number(port), Number(count), Number(first), Number(addresses), Number(headKb));
} else {
  main().then(() => process.exit(0), (error: unknown) => {
    log(String((error as Error).stack ?? error));
    process.exit(1);
  });
}
