/**
 * Starts the quota proxy in-process in front of a Swift, on a free loopback port, for tests and benchmarks.
 */
import type { AddressInfo } from 'node:net';
import { buildApp, type ProxyApp } from '../../src/app.js';
import { configFromText } from '../../src/config/load.js';
import { tempauthConfigLines, type TempauthUser } from '../swift/cluster.js';

/** Generous levels, so that Swift's own functional tests are never limited by quotas. */
export const ROOMY_QUOTA = {
  container_count: { default: 100_000 },
  object_count: { default: 10_000_000 },
  container_usage: { default: 1024 ** 4 },
};

export interface ProxyOptions {
  upstream: string;
  quota?: object;
  preciseMode?: boolean;
  cacheTimeout?: number;
  failMode?: 'closed' | 'open';
  /** Extra `key = value` lines for [filter:quota] and [quota-proxy]. */
  extraQuotaLines?: string[];
  extraProxyLines?: string[];
  /** The [filter:quota] lines naming the service identity (default: the tempauth reseller of the test Swift). */
  serviceLines?: string[];
  /** Whole extra sections, such as [notify:<name>]. */
  extraSections?: string[];
  /**
   * Leave census_interval and record_accounts out (their defaults): benchmarks give the same file to builds from
   * before the keys existed, and measure for seconds, well inside one interval (and with one account).
   */
  shippedCensus?: boolean;
  /** The [filter:tempauth] users (default: every user of the test Swift); commands that read every known account take fewer. */
  tempauthUsers?: TempauthUser[];
  /** Where the proxy's JSON log lines go (default: stdout, at PROXY_LOG_LEVEL or warn). */
  logStream?: { write(line: string): void };
}

export interface RunningProxy extends ProxyApp {
  url: string;
  port: number;
  configText: string;
  close(): Promise<void>;
}

export function proxyConfigText(options: ProxyOptions & { port?: number }): string {
  return [
    '[quota-proxy]',
    'bind_ip = 127.0.0.1',
    `bind_port = ${options.port ?? 0}`,
    `upstream = ${options.upstream}`,
    'log_level = warn',
    // A test that stops a proxy has no load balancer to wait for (the default drain_delay is 5 s); restarts.test.ts sets its own.
    ...((options.extraProxyLines ?? []).some((line) => line.startsWith('drain_delay')) ? [] : ['drain_delay = 0']),
    ...(options.extraProxyLines ?? []),
    '',
    '[filter:quota]',
    `cache_timeout = ${options.cacheTimeout ?? 30}`,
    `precise_mode = ${options.preciseMode ? 'true' : 'false'}`,
    `fail_mode = ${options.failMode ?? 'closed'}`,
    'retry_after = 3',
    ...(options.serviceLines ?? ['service_user = reseller:reseller']),
    ...(options.extraQuotaLines ?? []),
    // The near-quota census reads every known account (hundreds in the test Swift): off unless a test turns it on.
    ...(options.shippedCensus || (options.extraQuotaLines ?? []).some((line) => line.startsWith('census_interval')) ? [] : ['census_interval = 0']),
    // Recording every account a test writes to would fill the shared test Swift's registry, which the tests of
    // `accounts list` and the census read: off unless a test turns it on.
    ...(options.shippedCensus || (options.extraQuotaLines ?? []).some((line) => line.startsWith('record_accounts')) ? [] : ['record_accounts = false']),
    `quota = ${JSON.stringify(options.quota ?? ROOMY_QUOTA, null, 2)}`,
    '',
    '[filter:tempauth]',
    ...tempauthConfigLines(options.tempauthUsers),
    '',
    ...(options.extraSections ?? []),
    '',
  ].join('\n');
}

export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const configText = proxyConfigText(options);
  const config = configFromText(configText, 'test-proxy.conf');
  const logger = options.logStream
    ? { level: 'info', stream: options.logStream }
    : { level: process.env.PROXY_LOG_LEVEL ?? 'warn' };
  const proxy = await buildApp(config, { logger });
  await proxy.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = proxy.app.server.address() as AddressInfo;
  return { ...proxy, url: `http://127.0.0.1:${port}`, port, configText, close: () => proxy.app.close() };
}
