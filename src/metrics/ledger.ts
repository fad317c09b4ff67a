/** Whether the usage ledger answers, asked when /metrics is read. */
import { Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX, type Family } from './registry.js';

export function ledgerMetrics(registry: Registry) {
  let ledgerProbe: (() => Promise<boolean>) | undefined;
  new Gauge({
    name: `${METRIC_PREFIX}ledger_up`,
    help: 'Whether the usage ledger answered when these metrics were read (1; always for the in-process ledger) or not (0: writes that need a check get fail_mode, reads are served).',
    registers: [registry],
    // With workers, writes are checked everywhere only if every worker reaches the ledger.
    aggregator: 'min',
    async collect() {
      this.set(!ledgerProbe || (await ledgerProbe()) ? 1 : 0);
    },
  });

  return {
    members: {
      /** How ledger_up asks whether the usage ledger answers (when scraped). */
      setLedgerProbe(probe: () => Promise<boolean>): void {
        ledgerProbe = probe;
      },
    },
  } satisfies Family<object>;
}
