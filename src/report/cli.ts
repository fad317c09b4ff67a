/**
 * `swift-quota-proxy report --config FILE [--account A] [--json]`: the usage report on the command line,
 * read straight from Swift (the proxy need not run). Hit counters are those already written to Swift.
 */
import { Agent } from 'undici';
import type { Config } from '../config/load.js';
import { createMetrics } from '../metrics.js';
import { SwiftClient } from '../swift/client.js';
import { accountName, collectReport, configuredAccounts } from './collect.js';
import { formatReport } from './format.js';

export async function runReport(config: Config, options: { account?: string; json: boolean }): Promise<string> {
  const agent = new Agent({ connections: 8 });
  try {
    const swift = new SwiftClient({ upstream: config.upstream, dispatcher: agent, service: config.quota.service, metrics: createMetrics() });
    const accounts = options.account ? [accountName(config, options.account)] : configuredAccounts(config);
    const report = await collectReport({ config, swift }, accounts);
    return options.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report);
  } finally {
    await agent.close();
  }
}
