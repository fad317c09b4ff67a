#!/usr/bin/env node
/**
 * The command line: `swift-quota-proxy --config FILE [--listen HOST:PORT] [--upstream URL]`.
 * The only module with process side effects: reads the config, listens, drains on SIGTERM/SIGINT
 * (lifecycle/drain.ts) and reloads the config on SIGHUP (config/reload.ts: what may change in a running proxy);
 * with `workers` > 1 it is the primary that forks the workers (cluster.ts), each of which runs this again, and
 * SIGUSR1 restarts them one at a time.
 */
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { announceListenersClosed, announceListening, onRetire, runPrimary, sendFinalMetrics } from './cluster.js';
import type { FastifyBaseLogger } from 'fastify';
import { buildApp, type ProxyApp } from './app.js';
import { ConfigError } from './config/errors.js';
import { loadConfig, type Config, type ConfigOverrides } from './config/load.js';
import { loadCheckedConfig } from './config/startup-checks.js';
import { drain, takesReusePort } from './lifecycle/drain.js';
import { buildRevision, packageVersion } from './metrics.js';
import { runReport } from './report/cli.js';
import { ACCOUNTS_USAGE, AccountsUsageError, runAccountsCli, withServiceClient } from './admin/cli.js';
import { droppedLevels, droppedMessage } from './admin/dropped.js';
import { UpstreamUnavailableError } from './swift/client.js';

const USAGE = `usage: swift-quota-proxy --config FILE [--listen HOST:PORT] [--upstream URL]
       swift-quota-proxy --check-config FILE
       swift-quota-proxy --version
       swift-quota-proxy report --config FILE [--account ACCOUNT] [--json] [--upstream URL]
       swift-quota-proxy --config FILE accounts show|set|copy|list ... (accounts --help for its forms)

The first form runs the proxy. --check-config loads the file as the proxy would and says what is wrong with it
(exit 2), or "ok" with its warnings (exit 0), without starting anything. "report" prints every tempauth account's (or one account's) usage against
its soft and hard limits, grace state and refusal counts, read from Swift, as a table or as JSON. --version prints
the version and the git commit it was built from.

Signals: SIGTERM drains (readiness 503, drain_delay, drain_timeout) and exits, a second one exits at once;
SIGHUP reloads the config file; SIGUSR1 (workers > 1) starts new workers and retires the old ones one at a time.

Environment (for containers; the flags win over it, it wins over the file):
  SWIFT_QUOTA_PROXY_CONFIG    config file, when --config is not given
  SWIFT_QUOTA_PROXY_LISTEN    HOST:PORT to listen on
  SWIFT_QUOTA_PROXY_UPSTREAM  base URL of the Swift proxy
  SWIFT_QUOTA_PROXY_LEDGER    "memory" or the redis://, rediss:// or redis+sentinel:// URL of the shared usage
                              ledger (it may carry a password)`;

/** A log line of the primary, shaped like the workers' (pino's JSON). */
function primaryLog(level: number, msg: string): void {
  process.stdout.write(`${JSON.stringify({ level, time: Date.now(), pid: process.pid, role: 'primary', msg })}\n`);
}

function fail(message: string, code = 2): never {
  process.stderr.write(`swift-quota-proxy: ${message}\n`);
  process.exit(code);
}

/** What the command line asks for; `overrides` are the flags and the environment that win over the file. */
type Command =
  | { readonly command: 'help' }
  | { readonly command: 'version' }
  | { readonly command: 'check-config'; readonly file: string; readonly overrides: ConfigOverrides }
  | { readonly command: 'report'; readonly configFile: string; readonly overrides: ConfigOverrides; readonly account?: string; readonly json: boolean }
  | { readonly command: 'serve'; readonly configFile: string; readonly overrides: ConfigOverrides }
  | { readonly command: 'accounts'; readonly configFile: string; readonly overrides: ConfigOverrides; readonly argv: string[] };

async function main(argv: string[]): Promise<void> {
  let command: Command;
  try {
    command = parseCommandLine(argv, process.env);
  } catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`);
  }
  switch (command.command) {
    case 'help':
      process.stdout.write(`${USAGE}\n`);
      return;
    case 'version':
      process.stdout.write(`swift-quota-proxy ${packageVersion()} (revision ${buildRevision()}, Node.js ${process.version})\n`);
      return;
    case 'check-config':
      return checkConfig(command.file, command.overrides);
    case 'report':
      return runReportCommand(command);
    case 'serve':
      return serve(command.configFile, command.overrides);
    case 'accounts':
      return runAccountsCommand(command);
  }
}

/**
 * The command the arguments ask for, the first that applies: --help, --version, --check-config, report, the
 * proxy. Throws, with the line to print above the usage, on arguments it does not take.
 */
function parseCommandLine(argv: string[], env: NodeJS.ProcessEnv): Command {
  if (argv[0] === 'accounts') return accountsCommandLine(argv.slice(1), env);
  const report = argv[0] === 'report';
  const { values } = parseArgs({
    args: report ? argv.slice(1) : argv,
    options: {
      config: { type: 'string', short: 'c' },
      'check-config': { type: 'string' },
      listen: { type: 'string' },
      upstream: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
      account: { type: 'string' },
      json: { type: 'boolean' },
    },
    strict: true,
  });
  if (!report && (values.account !== undefined || values.json !== undefined)) throw new Error('--account and --json belong to "report"');
  if (values.help) return { command: 'help' };
  if (values.version) return { command: 'version' };
  const overrides = {
    listen: values.listen ?? env.SWIFT_QUOTA_PROXY_LISTEN,
    upstream: values.upstream ?? env.SWIFT_QUOTA_PROXY_UPSTREAM,
    ledger: env.SWIFT_QUOTA_PROXY_LEDGER,
  };
  const check = values['check-config'];
  if (check !== undefined) return { command: 'check-config', file: check, overrides };
  const configFile = values.config ?? env.SWIFT_QUOTA_PROXY_CONFIG;
  if (!configFile) throw new Error('--config is required');
  if (report) return { command: 'report', configFile, overrides, ...(values.account ? { account: values.account } : {}), json: values.json === true };
  return { command: 'serve', configFile, overrides };
}

/** `accounts …`: --config and --upstream are the proxy's (anywhere on the line); the rest is the subcommand's. */
function accountsCommandLine(argv: string[], env: NodeJS.ProcessEnv): Command {
  const taken: Record<string, string> = {};
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const match = /^(?:--(config|upstream)|-(c))(?:=(.*))?$/.exec(argv[i]!);
    if (!match) rest.push(argv[i]!);
    else taken[match[1] ?? 'config'] = match[3] ?? argv[++i] ?? '';
  }
  const configFile = taken.config || env.SWIFT_QUOTA_PROXY_CONFIG;
  if (!configFile) throw new Error('--config is required');
  const overrides = { listen: undefined, upstream: taken.upstream ?? env.SWIFT_QUOTA_PROXY_UPSTREAM, ledger: env.SWIFT_QUOTA_PROXY_LEDGER };
  return { command: 'accounts', configFile, overrides, argv: rest };
}

/** `accounts …`: quota administration (admin/cli.ts); exit 2 on a mistake in the line, 1 when Swift cannot be reached. */
async function runAccountsCommand(command: Extract<Command, { command: 'accounts' }>): Promise<void> {
  const config = await orBadConfig(() => loadConfig(command.configFile, command.overrides));
  try {
    process.stdout.write(await runAccountsCli(config, command.argv));
  } catch (error) {
    if (error instanceof AccountsUsageError) fail(`accounts: ${error.message}\nusage: swift-quota-proxy --config FILE ${ACCOUNTS_USAGE}`);
    if (error instanceof UpstreamUnavailableError) fail(`accounts: ${error.message}`, 1);
    throw error;
  }
}

/** `load()`, or on a ConfigError one line and exit 2. */
async function orBadConfig<T>(load: () => T | Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (error) {
    if (error instanceof ConfigError) fail(`bad config: ${error.message}`);
    throw error;
  }
}

/** --check-config: every check start-up makes (config/startup-checks.ts), and a moment's bind of the ports. */
async function checkConfig(file: string, overrides: ConfigOverrides): Promise<void> {
  const checked = await orBadConfig(() => loadCheckedConfig(file, overrides, { probeListeners: true }));
  for (const warning of checked.warnings) process.stderr.write(`warning: ${warning}\n`);
  // The levels known accounts hold, as a reload would check them (when Swift can be asked).
  const dropped = await withServiceClient(checked, (swift) => droppedLevels(checked, swift)).catch((error: unknown) => {
    process.stderr.write(`warning: the levels accounts hold could not be checked: ${(error as Error).message}\n`);
    return undefined;
  });
  if (dropped?.size && !checked.quota.allowDroppedLevels) fail(`${file}: ${droppedMessage(dropped)}`);
  if (dropped?.size) process.stderr.write(`warning: ${droppedMessage(dropped)} (allowed by allow_dropped_levels)\n`);
  process.stdout.write(`${file}: ok\n`);
}

/** `report`: the usage report, read from Swift (exit 1 when Swift cannot be reached). */
async function runReportCommand(command: Extract<Command, { command: 'report' }>): Promise<void> {
  const config = await orBadConfig(() => loadConfig(command.configFile, command.overrides));
  try {
    process.stdout.write(await runReport(config, { ...(command.account ? { account: command.account } : {}), json: command.json }));
  } catch (error) {
    if (error instanceof UpstreamUnavailableError) fail(`report: ${error.message}`, 1);
    throw error;
  }
}

/** The proxy: the primary of its workers (`workers` > 1), or a process (or worker) that listens and answers. */
async function serve(configFile: string, overrides: ConfigOverrides): Promise<void> {
  const signals = installEarlySignals();
  const config = await orBadConfig(() => loadCheckedConfig(configFile, overrides));
  if (config.workers > 1 && cluster.isPrimary) {
    // The primary only supervises: the workers load the same config, listen and answer.
    for (const warning of config.warnings) primaryLog(40, warning);
    signals.becomePrimary();
    const code = await runPrimary(config.workers, { info: (m) => primaryLog(30, m), warn: (m) => primaryLog(40, m), error: (m) => primaryLog(50, m) });
    process.exit(code);
  }
  const built = await orBadConfig(() => buildApp(config));
  const { app } = built;
  for (const warning of config.warnings) app.log.warn(warning);
  // Accounts that hold a level this file lacks are held to "default": said once, without holding up start-up.
  if (!cluster.isWorker || cluster.worker?.id === 1) {
    droppedLevels(config, built.gate.swift).then(
      (dropped) => dropped.size > 0 && app.log.warn(droppedMessage(dropped)),
      (error: unknown) => app.log.warn({ err: error }, 'the levels known accounts hold could not be checked'),
    );
  }

  // One reload at a time, in the order the signals came.
  let reloading = Promise.resolve();
  signals.onReload(() => {
    reloading = reloading.then(() => reloadConfig(configFile, overrides, built.reload, app.log));
  });
  installShutdown(built, config);
  await listen(app, config);
  announceListening();
}

/**
 * SIGHUP and SIGUSR1, handled from before the config is read. SIGHUP reloads the file (its default would end the
 * process, cutting every request in flight); until the proxy is up, one that comes is remembered and acted on
 * once it is. Node's own SIGUSR1 would open the inspector (a debugger on 127.0.0.1:9229): the primary restarts
 * its workers on it (cluster.ts); a single process says what to do instead; a worker leaves it to its primary.
 */
function installEarlySignals(): { becomePrimary(): void; onReload(reload: () => void): void } {
  let reloadNow: (() => void) | undefined;
  let reloadMissed = false;
  let primary = false;
  process.on('SIGHUP', () => {
    if (reloadNow) reloadNow();
    else reloadMissed = true;
  });
  process.on('SIGUSR1', () => {
    if (cluster.isWorker) return;
    if (!primary) primaryLog(40, 'SIGUSR1: a rolling restart needs workers > 1; with one process, start a new instance beside it (reuse_port) and send this one SIGTERM');
  });
  return {
    becomePrimary: () => {
      primary = true;
    },
    onReload: (reload) => {
      reloadNow = reload;
      if (reloadMissed) reload();
    },
  };
}

/**
 * SIGTERM/SIGINT: drain and exit (lifecycle/drain.ts); a second signal exits at once. In a worker, the
 * primary's rolling restart retires it the same way, without turning readiness off.
 */
function installShutdown(built: ProxyApp, config: Config): void {
  const { app } = built;
  let closing: 'shutdown' | 'retire' | undefined;
  const shutdown = (reason: string, kind: 'shutdown' | 'retire', skipDelay = false) => {
    if (closing === 'retire' && kind === 'shutdown') {
      // The primary stops while this worker retires: it drains on as it was, now not ready.
      built.drainState.begin('shutdown', []);
      closing = kind;
      return;
    }
    if (closing) {
      if (kind === 'retire') return;
      app.log.warn(`${reason} again: exiting without waiting for in-flight requests`);
      process.exit(1);
    }
    closing = kind;
    drainAndExit(built, config, { kind, reason, skipDelay });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM', 'shutdown'));
  // Ctrl-C in a terminal: no load balancer to wait for. A worker leaves it to its primary (the terminal sends it
  // to the whole process group), which passes SIGTERM on.
  process.on('SIGINT', () => {
    if (!cluster.isWorker) shutdown('SIGINT', 'shutdown', true);
  });
  onRetire(() => shutdown('rolling restart', 'retire'));
}

/** Drains (lifecycle/drain.ts) and exits: 0 when every request in flight finished, 1 otherwise. */
function drainAndExit(built: ProxyApp, config: Config, how: { kind: 'shutdown' | 'retire'; reason: string; skipDelay: boolean }): void {
  const { app } = built;
  const { kind, reason, skipDelay } = how;
  const log = { info: (m: string) => app.log.info(m), warn: (m: string) => app.log.warn(m) };
  drain(app, built.ops, built.drainState, { kind, reason, settings: config.restart, skipDelay, onListenersClosed: kind === 'retire' ? announceListenersClosed : undefined }, log).then(
    // A worker hands its counts to the primary first, which keeps them in the proxy's sums (cluster.ts).
    async (complete) => {
      await sendFinalMetrics();
      process.exit(complete ? 0 : 1);
    },
    (error: unknown) => {
      app.log.error({ err: error }, 'error while closing');
      process.exit(1);
    },
  );
}

/** Listens on the client port (and the ops port) and says so; a port that cannot be bound: one line and exit 2. */
async function listen(app: ProxyApp['app'], config: Config): Promise<void> {
  const listening = (address: string) =>
    `swift-quota-proxy listening on ${address}, upstream ${config.upstream.origin}, ` +
    `${config.quota.preciseMode ? 'precise mode' : `cached mode (cache_timeout ${config.quota.cacheTimeoutSeconds} s)`}`;
  let address: string;
  try {
    // reuse_port: a new instance can bind the port while this one still serves on it (not in workers: takesReusePort).
    const reusePort = takesReusePort(config.restart, config.bindPort);
    address = await app.listen({ host: config.bindIp, port: config.bindPort, listenTextResolver: listening, ...(reusePort ? { reusePort } : {}) });
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
