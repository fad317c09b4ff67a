#!/usr/bin/env node
/**
 * The command line: `swift-quota-proxy --config FILE [--listen HOST:PORT] [--upstream URL]`.
 * The only module with process side effects: reads the config, listens, and drains on SIGTERM/SIGINT.
 */
import { parseArgs } from 'node:util';
import { buildApp } from './app.js';
import { ConfigError } from './config/errors.js';
import { loadConfig } from './config/load.js';

const USAGE = 'usage: swift-quota-proxy --config FILE [--listen HOST:PORT] [--upstream URL]';

function fail(message: string, code = 2): never {
  process.stderr.write(`swift-quota-proxy: ${message}\n`);
  process.exit(code);
}

async function main(argv: string[]): Promise<void> {
  let values: { config?: string; listen?: string; upstream?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        config: { type: 'string', short: 'c' },
        listen: { type: 'string' },
        upstream: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    fail(`${(error as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (!values.config) fail(`--config is required\n${USAGE}`);

  let config;
  try {
    config = loadConfig(values.config, { listen: values.listen, upstream: values.upstream });
  } catch (error) {
    if (error instanceof ConfigError) fail(`bad config: ${error.message}`);
    throw error;
  }

  const { app } = await buildApp(config);
  for (const warning of config.warnings) app.log.warn(warning);

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

  await app.listen({
    host: config.bindIp,
    port: config.bindPort,
    listenTextResolver: (address) =>
      `swift-quota-proxy listening on ${address}, upstream ${config.upstream.origin}, ` +
      `${config.quota.preciseMode ? 'precise mode' : `cached mode (cache_timeout ${config.quota.cacheTimeoutSeconds} s)`}`,
  });
}

main(process.argv.slice(2)).catch((error: unknown) => fail((error as Error).stack ?? String(error), 1));
