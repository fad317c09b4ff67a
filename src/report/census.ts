/**
 * The census behind the near-quota gauges (metrics/census.ts): every `census_interval`, the usage report of every
 * known account (report/collect.ts: the account, then each container), counted by level, kind and state. It
 * costs what `report` costs (a listing and a HEAD per container), in the background, off the request path;
 * `census_interval = 0` turns it off.
 */
import type { Config } from '../config/load.js';
import type { QuotaKind } from '../config/quota-levels.js';
import type { Log } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { CensusState } from '../metrics/census.js';
import type { SwiftClient } from '../swift/client.js';
import { knownAccounts } from '../admin/accounts.js';
import { collectReport, type AccountReport, type Measure } from './collect.js';

type Counts = Map<string, number>;

/** The states one measure is in (none, one, or over_soft/grace_expired and at_hard together). */
export function statesOf(measure: Measure): CensusState[] {
  const states: CensusState[] = [];
  if (measure.grace?.state === 'running') states.push('over_soft');
  if (measure.grace?.state === 'expired') states.push('grace_expired');
  if (measure.hard !== null && measure.used >= measure.hard) states.push('at_hard');
  return states;
}

/** Counts by `level\0kind\0state` of one account and its containers. */
export function countAccount(account: AccountReport, counts: Counts): void {
  if (!account.exists) return;
  const add = (kind: QuotaKind, measure: Measure) => {
    for (const state of statesOf(measure)) {
      const key = `${account.level}\0${kind}\0${state}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
  };
  add('container_count', account.containers);
  add('account_object_count', account.total_objects);
  add('account_usage', account.total_bytes);
  for (const container of account.container_list) {
    add('object_count', container.objects);
    add('container_usage', container.bytes);
  }
}

export class Census {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;

  constructor(
    private readonly config: () => Config,
    private readonly swift: SwiftClient,
    private readonly metrics: Metrics,
    private readonly log: Log,
  ) {}

  start(): void {
    const seconds = this.config().quota.censusIntervalSeconds;
    if (seconds === 0) return;
    this.timer = setInterval(() => {
      this.running ??= this.run().finally(() => (this.running = undefined));
    }, seconds * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One census: every known account's report, counted; the gauges replaced at once when it is done. */
  async run(): Promise<void> {
    const config = this.config();
    try {
      const accounts = await knownAccounts(config, this.swift);
      const counts: Counts = new Map();
      for (let i = 0; i < accounts.length; i += 50) {
        const report = await collectReport({ config, swift: this.swift }, accounts.slice(i, i + 50));
        for (const account of report.accounts) countAccount(account, counts);
      }
      this.metrics.censusScopes.reset();
      for (const [key, value] of counts) {
        const [level, kind, state] = key.split('\0') as [string, string, string];
        this.metrics.censusScopes.set({ level, kind, state }, value);
      }
      this.metrics.censusAccounts.set(accounts.length);
      this.metrics.censusTime.set(Date.now() / 1000);
    } catch (error) {
      this.log.warn({ err: error }, 'quota census: not finished (the gauges keep the last one)');
    }
  }
}
