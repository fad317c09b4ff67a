/**
 * A loopback Redis Sentinel group for the shared ledger (Debian's redis-server and redis-sentinel, installed
 * by cluster.ts): a primary, one replica and three Sentinels (quorum 2), each on its own port and directory,
 * no persistence, stopped with the process that started them. Failure detection is quick for the tests
 * (down-after-milliseconds 1000, failover-timeout 3000); production values are in docs/operations.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePorts } from '../helpers/ports.js';
import { installMissingPackages } from './cluster.js';

const START_TIMEOUT_MS = 15_000;
export const MASTER_NAME = 'ledger';
export const DOWN_AFTER_MS = 1_000;
export const FAILOVER_TIMEOUT_MS = 3_000;

export interface SentinelGroup {
  /** `redis+sentinel://127.0.0.1:<p1>,127.0.0.1:<p2>,127.0.0.1:<p3>/ledger` */
  readonly url: string;
  readonly sentinelPorts: readonly number[];
  /** The port of the Redis the Sentinels name as primary now. */
  primaryPort(): Promise<number>;
  /** Kills (SIGKILL) the Redis on `port`: its data is gone, it stays down. */
  kill(port: number): Promise<void>;
  /** Waits until the Sentinels name a primary other than `port`, and it answers as one; the new port. */
  failedOver(from: number, timeoutMs: number): Promise<number>;
  stop(): Promise<void>;
}

export async function startSentinelGroup(): Promise<SentinelGroup> {
  await installMissingPackages([{ pkg: 'redis-server', file: '/usr/bin/redis-server' }, { pkg: 'redis-sentinel', file: '/usr/bin/redis-sentinel' }], 'Redis Sentinel group');
  const [primary, replica, ...sentinelPorts] = (await freePorts(5)) as [number, number, number, number, number];
  const dir = mkdtempSync(join(tmpdir(), 'quota-proxy-sentinel-'));
  const children = new Map<number, ChildProcess>();
  const onExit = () => {
    for (const child of children.values()) child.kill('SIGKILL');
  };
  process.once('exit', onExit);

  const launch = async (port: number, binary: string, args: string[]) => {
    const child = spawn(binary, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.unref(); // never what keeps a test process alive
    children.set(port, child);
    await answers(port, child);
  };
  const redisArgs = (port: number) => {
    const own = join(dir, String(port));
    mkdirSync(own);
    return ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', own, '--protected-mode', 'yes'];
  };
  try {
    await launch(primary, '/usr/bin/redis-server', redisArgs(primary));
    await launch(replica, '/usr/bin/redis-server', [...redisArgs(replica), '--replicaof', '127.0.0.1', String(primary)]);
    await Promise.all(
      sentinelPorts.map((port) => {
        // Sentinel rewrites its file as it learns the group: one each, in the group's directory.
        const file = join(dir, `sentinel-${port}.conf`);
        writeFileSync(file, [
          `port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primary} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} ${DOWN_AFTER_MS}`,
          `sentinel failover-timeout ${MASTER_NAME} ${FAILOVER_TIMEOUT_MS}`,
          `sentinel parallel-syncs ${MASTER_NAME} 1`,
          '',
        ].join('\n'));
        return launch(port, '/usr/bin/redis-sentinel', [file]);
      }),
    );
    await untilTrue(async () => (await replicaInSync(replica)) && (await sentinelsKnowReplica(sentinelPorts, replica)), 'the replica in sync and known to every Sentinel');
  } catch (error) {
    onExit();
    process.off('exit', onExit);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }

  const primaryPort = async () => {
    const sentinel = new Redis({ port: sentinelPorts[0], host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 });
    try {
      const [, port] = (await sentinel.call('SENTINEL', 'get-master-addr-by-name', MASTER_NAME)) as [string, string];
      return Number(port);
    } finally {
      sentinel.disconnect();
    }
  };
  const kill = async (port: number) => {
    const child = children.get(port);
    children.delete(port);
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.ref(); // waited for now
    child.kill('SIGKILL');
    await exited;
  };
  return {
    url: `redis+sentinel://${sentinelPorts.map((port) => `127.0.0.1:${port}`).join(',')}/${MASTER_NAME}`,
    sentinelPorts,
    primaryPort,
    kill,
    failedOver: async (from, timeoutMs) => {
      let now = from;
      await untilTrue(async () => (now = await primaryPort()) !== from && (await role(now)) === 'master', 'a new primary', timeoutMs);
      return now;
    },
    stop: async () => {
      await Promise.all([...children.keys()].map(kill));
      process.off('exit', onExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function withClient<T>(port: number, use: (client: Redis) => Promise<T>): Promise<T | undefined> {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await use(client);
  } catch {
    return undefined;
  } finally {
    client.disconnect();
  }
}

async function role(port: number): Promise<string | undefined> {
  return withClient(port, async (client) => ((await client.call('ROLE')) as [string])[0]);
}

async function replicaInSync(port: number): Promise<boolean> {
  const info = await withClient(port, (client) => client.info('replication'));
  return info !== undefined && /master_link_status:up/.test(info);
}

async function sentinelsKnowReplica(ports: readonly number[], replica: number): Promise<boolean> {
  const known = await Promise.all(
    ports.map((port) => withClient(port, async (client) => {
      const replicas = (await client.call('SENTINEL', 'replicas', MASTER_NAME)) as string[][];
      const sentinels = (await client.call('SENTINEL', 'sentinels', MASTER_NAME)) as string[][];
      return replicas.some((fields) => fields.includes(String(replica))) && sentinels.length === ports.length - 1;
    })),
  );
  return known.every(Boolean);
}

/** Whether something answers PING on the port (a Redis or a Sentinel). */
async function answers(port: number, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  while ((await withClient(port, (client) => client.ping())) !== 'PONG') {
    if (child.exitCode !== null) throw new Error(`redis on port ${port} exited with ${child.exitCode}`);
    if (Date.now() > deadline) throw new Error(`redis on port ${port} did not answer within ${START_TIMEOUT_MS} ms`);
    await sleep(50);
  }
}

async function untilTrue(check: () => Promise<boolean>, what: string, timeoutMs = START_TIMEOUT_MS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Sentinel group: no ${what} within ${timeoutMs} ms`);
    await sleep(50);
  }
}
