/**
 * The usage report over HTTP, answered by the proxy (never forwarded): `GET /quota/report` (the path is
 * `report_path`), JSON by default, the text table with `?format=text`. A reseller admin's token sees every
 * account of the tempauth config (or `?account=`); any other token sees the accounts it may read, as Swift
 * decides (a HEAD of the account with that token).
 */
import type { FastifyInstance } from 'fastify';
import { callerToken } from '../auth/authority.js';
import { SwiftHeaders } from '../swift/request.js';
import type { Config } from '../config/load.js';
import type { QuotaCore } from '../quota/core.js';
import { accountName, collectReport, configuredAccounts } from '../report/collect.js';
import { formatReport } from '../report/format.js';
import { UpstreamUnavailableError, type SwiftClient } from '../swift/client.js';
import { encodePath } from '../swift/path.js';

export interface ReportRouteOptions {
  config: Config;
  swift: SwiftClient;
  gate: QuotaCore;
}

export async function reportRoute(app: FastifyInstance, { config, swift, gate }: ReportRouteOptions): Promise<void> {
  /** Accounts (of those asked about) the token may read, as Swift answers a HEAD with it. */
  const readable = async (token: string, accounts: string[]) => {
    const answers = await Promise.all(accounts.map((account) => swift.headAs(encodePath('v1', account), 'account', token)));
    return accounts.filter((_, i) => answers[i]!.status >= 200 && answers[i]!.status < 300);
  };

  app.get<{ Querystring: Record<string, unknown> }>(config.reportPath, async (request, reply) => {
    // Levels and limits as they are now (a SIGHUP may have reloaded them since the route was registered).
    const config = gate.currentConfig;
    const token = callerToken(SwiftHeaders.fromRaw(request.raw.rawHeaders));
    reply.header('cache-control', 'no-store');
    if (!token) return reply.code(401).type('text/plain').send('Unauthorized: send X-Auth-Token.\n');
    const { account, format = 'json' } = request.query;
    if (format !== 'json' && format !== 'text') return reply.code(400).type('text/plain').send('format must be given once, as json or text\n');
    if (account !== undefined && typeof account !== 'string') return reply.code(400).type('text/plain').send('account must be given once\n');
    const asked = account ? [accountName(config, account)] : undefined;
    try {
      let accounts: string[];
      if (await gate.isResellerAdmin(token)) {
        accounts = asked ?? configuredAccounts(config);
      } else {
        // Who logged in through this proxy is known; anyone else is tried against the configured accounts.
        const caller = gate.callerOf(token);
        const own = caller ? [accountName(config, caller.split(':')[0]!)] : configuredAccounts(config);
        accounts = await readable(token, asked ?? own);
        if (accounts.length === 0) return reply.code(403).type('text/plain').send('Forbidden: this token may not read that account.\n');
      }
      // Hit counts as Swift holds them, read as `swift-quota-proxy report` reads them: every proxy (every worker)
      // writes what it counted every hit_flush_interval, so the two reports never differ, and both have every
      // refusal the metric counted one interval later (docs/operations.md, "Hit counts").
      const report = await collectReport({ config, swift }, accounts);
      if (format === 'text') return reply.type('text/plain; charset=utf-8').send(formatReport(report));
      return reply.type('application/json').send(report);
    } catch (error) {
      if (!(error instanceof UpstreamUnavailableError)) throw error;
      request.log.warn({ err: error }, 'usage report: Swift cannot be read');
      return reply.code(503).header('retry-after', String(config.quota.retryAfterSeconds)).type('text/plain').send('Service Unavailable: Swift cannot be read for the report; try again later.\n');
    }
  });
}
