#!/usr/bin/env node
/**
 * The command line: `swift-quota-proxy --config FILE [--listen HOST:PORT] [--upstream URL]`.
 * The only module with process side effects: reads the config, listens, drains on SIGTERM/SIGINT and reloads
 * the config on SIGHUP (config/reload.ts: what may change in a running proxy); with
 * `workers` > 1 it is the primary that forks the workers (cluster.ts), each of which runs this again.
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { runPrimary } from './cluster.js';
import type { FastifyBaseLogger } from 'fastify';
import { buildApp, type ProxyApp } from './app.js';
import { ConfigError } from './config/errors.js';
import { loadConfig, type ConfigOverrides } from './config/load.js';
import { loadCheckedConfig } from './config/startup-checks.js';
import { runReport } from './report/cli.js';
import { UpstreamUnavailableError } from './swift/client.js';

const USAGE = `usage: swift-quota-proxy --config FILE [--listen HOST:PORT] [--upstream URL]
       swift-quota-proxy --check-config FILE
       swift-quota-proxy report --config FILE [--account ACCOUNT] [--json] [--upstream URL]

The first form runs the proxy. --check-config loads the file as the proxy would and says what is wrong with it
(exit 2), or "ok" with its warnings (exit 0), without starting anything. "report" prints every tempauth account's (or one account's) usage against
its soft and hard limits, grace state and refusal counts, read from Swift, as a table or as JSON.

Environment (for containers; the flags win over it, it wins over the file):
  SWIFT_QUOTA_PROXY_CONFIG    config file, when --config is not given
  SWIFT_QUOTA_PROXY_LISTEN    HOST:PORT to listen on
  SWIFT_QUOTA_PROXY_UPSTREAM  base URL of the Swift proxy
  SWIFT_QUOTA_PROXY_LEDGER    "memory" or the Redis URL of the shared usage ledger (it may carry a password)`;

/** A log line of the primary, shaped like the workers' (pino's JSON). */
function primaryLog(level: number, msg: string): void {
  process.stdout.write(`${JSON.stringify({ level, time: Date.now(), pid: process.pid, role: 'primary', msg })}\n`);
}

function fail(message: string, code = 2): never {
  process.stderr.write(`swift-quota-proxy: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  const report = argv[0] === 'report';
  let values: { config?: string; 'check-config'?: string; listen?: string; upstream?: string; help?: boolean; account?: string; json?: boolean };
  try {
    ({ values } = parseArgs({
      args: report ? argv.slice(1) : argv,
      options: {
        config: { type: 'string', short: 'c' },
        'check-config': { type: 'string' },
        listen: { type: 'string' },
        upstream: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        account: { type: 'string' },
        json: { type: 'boolean' },
      },
      strict: true,
    }));
    if (!report && (values.account !== undefined || values.json !== undefined)) throw new Error('--account and --json belong to "report"');
  } catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  const env = process.env;
  const overrides = {
    listen: values.listen ?? env.SWIFT_QUOTA_PROXY_LISTEN,
    upstream: values.upstream ?? env.SWIFT_QUOTA_PROXY_UPSTREAM,
    ledger: env.SWIFT_QUOTA_PROXY_LEDGER,
  };
  const check = values['check-config'];
  if (check !== undefined) {
    try {
      // Every check start-up makes (config/startup-checks.ts), and a moment's bind of the ports.
      const checked = await loadCheckedConfig(check, overrides, { probeListeners: true });
      for (const warning of checked.warnings) process.stderr.write(`warning: ${warning}\n`);
      process.stdout.write(`${check}: ok\n`);
      return;
    } catch (error) {
      if (error instanceof ConfigError) fail(`bad config: ${error.message}`);
      throw error;
    }
  }
  const configFile = values.config ?? env.SWIFT_QUOTA_PROXY_CONFIG;
  if (!configFile) fail(`--config is required\n${USAGE}`);

  // SIGHUP reloads the file (its default would end the process, cutting every request in flight). Until the
  // proxy is up, one that comes is remembered and acted on once it is.
  let onReload: (() => void) | undefined;
  let reloadMissed = false;
  if (!report) {
    process.on('SIGHUP', () => {
      if (onReload) onReload();
      else reloadMissed = true;
    });
  }

  let config;
  try {
    config = report ? loadConfig(configFile, overrides) : await loadCheckedConfig(configFile, overrides);
  } catch (error) {
    if (error instanceof ConfigError) fail(`bad config: ${error.message}`);
    throw error;
  }

  if (report) {
    try {
      process.stdout.write(await runReport(config, { ...(values.account ? { account: values.account } : {}), json: values.json === true }));
    } catch (error) {
      if (error instanceof UpstreamUnavailableError) fail(`report: ${error.message}`, 1);
      throw error;
    }
    return;
  }

  if (config.workers > 1 && cluster.isPrimary) {
    // The primary only supervises: the workers load the same config, listen and answer.
    for (const warning of config.warnings) primaryLog(40, warning);
    const code = await runPrimary(config.workers, { info: (m) => primaryLog(30, m), warn: (m) => primaryLog(40, m), error: (m) => primaryLog(50, m) });
    process.exit(code);
  }

  let built;
  try {
    built = await buildApp(config);
  } catch (error) {
    if (error instanceof ConfigError) fail(`bad config: ${error.message}`);
    throw error;
  }
  const { app } = built;
  for (const warning of config.warnings) app.log.warn(warning);

  // One reload at a time, in the order the signals came.
  let reloading = Promise.resolve();
  onReload = () => {
    reloading = reloading.then(() => reloadConfig(configFile, overrides, built.reload, app.log));
  };
  if (reloadMissed) onReload();

  let closing = false;
  const shutdown = (signal: string) => {
    if (closing) {
      app.log.warn(`${signal} again: exiting without waiting for in-flight requests`);
      process.exit(1);
    }
    closing = true;
    app.log.info(`${signal}: no new connections; draining in-flight requests`);
    app.close().then(
      () => process.exit(0),
      (error: unknown) => {
        app.log.error({ err: error }, 'error while closing');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));

  const listening = (address: string) =>
    `swift-quota-proxy listening on ${address}, upstream ${config.upstream.origin}, ` +
    `${config.quota.preciseMode ? 'precise mode' : `cached mode (cache_timeout ${config.quota.cacheTimeoutSeconds} s)`}`;
  let address: string;
  try {
    address = await app.listen({ host: config.bindIp, port: config.bindPort, listenTextResolver: listening });
  } catch (error) {
    // A port taken or not ours to bind: one line saying so, not a stack trace (exit 2 tells a primary not to retry).
    // Node's error names the address: the client port's or the ops listener's (ops_bind_ip/ops_bind_port).
    const { code, message, address, port } = error as NodeJS.ErrnoException & { address?: string; port?: number };
    const where = address !== undefined && port !== undefined ? `${address}:${port}` : `${config.bindIp}:${config.bindPort}`;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') fail(`cannot listen on ${where}: ${message}`);
    throw error;
  }
  // Fastify logs that line at info; tools that start us wait for it, so it is written whatever log_level says.
  if (!['trace', 'debug', 'info'].includes(app.log.level)) app.log.child({}, { level: 'info' }).info(listening(address));
}

/** One reload: the new file's settings, or one error line and the running configuration kept. */
async function reloadConfig(file: string, overrides: ConfigOverrides, reload: ProxyApp['reload'], log: FastifyBaseLogger): Promise<void> {
  try {
    const plan = await reload(loadConfig(file, overrides));
    for (const warning of plan.config.warnings) log.warn(warning);
    if (plan.needRestart.length > 0) {
      log.warn({ settings: plan.needRestart }, `SIGHUP: ${plan.needRestart.join(', ')} changed in ${file} but take effect only at a restart; running with the old values`);
    }
    // Like the listening line, written whatever log_level says: whoever sent the signal looks for it.
    const notice = ['trace', 'debug', 'info'].includes(log.level) ? log : log.child({}, { level: 'info' });
    notice.info({ settings: plan.applied }, plan.applied.length > 0 ? `SIGHUP: configuration reloaded from ${file}: ${plan.applied.join(', ')} changed` : `SIGHUP: configuration reloaded from ${file}: nothing to change`);
  } catch (error) {
    const reason = error instanceof ConfigError ? error.message : String((error as Error).message ?? error);
    log.error(`SIGHUP: configuration not reloaded, the running one stays: ${reason}`);
  }
}

main(process.argv.slice(2)).catch((error: unknown) => fail((error as Error).stack ?? String(error), 1));
