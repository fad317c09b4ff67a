/**
 * Watches usage against soft and hard limits per account and container: turns what the doors see (usage at
 * each check and after each write, refusals) into quota events, enforces expired grace periods, counts
 * refusals, and keeps that state in Swift metadata (through watch-writer.ts) so it survives restarts.
 *
 * State changes are synchronous, in the tick a door sees the usage, so a crossing is reported once however
 * many requests race over it. Metadata writes and event deliveries happen in the background: a slow Swift
 * POST or a failing provider never holds up a request.
 */
import { LRUCache } from 'lru-cache';
import type { QuotaConfig } from '../config/load.js';
import type { QuotaKind } from '../config/quota-levels.js';
import type { Log } from '../log.js';
import { withLevel, type LevelLimits, type LevelSource } from './level-recheck.js';
import type { Metrics } from '../metrics.js';
import type { Notifier } from '../notify/notifier.js';
import type { SwiftClient } from '../swift/client.js';
import { kindsOf, type PersistedQuotaState } from '../swift/quota-metadata.js';
import type { ExpiredSoftLimits, Usage } from './decide.js';
import { graceEndsAt, graceHasExpired, observeRefusal, observeUsage, type Crossing, type KindState, type Observed } from './soft-state.js';
import type { FallbackStateStore } from './state-store.js';
import { kindStateText, type SharedWatchState } from './shared-watch.js';
import { WatchWriter } from './watch-writer.js';
import {
  hasRecordedState,
  hasSoftLimit,
  newScopeState,
  NO_CONTEXT,
  usageOfKind,
  type ContextSource,
  type Scope,
  type ScopeState,
} from './watch-scope.js';

// Importers (the doors, admission, write-trace.ts) take the scope types from here.
export type { ContextSource, EventContext, Scope } from './watch-scope.js';

/** How many times a transition another proxy got to first is looked at again from where that one left it. */
const SHARED_RETRIES = 3;

const NONE_EXPIRED: ExpiredSoftLimits = Object.freeze({});

export interface QuotaWatchOptions {
  quota: QuotaConfig;
  swift: SwiftClient;
  /** Where the state goes when Swift refuses it as metadata (state-store.ts). */
  fallback: FallbackStateStore;
  notifier: Notifier;
  metrics: Metrics;
  log: Log;
  now?: () => number;
  /** With a shared ledger: the state other proxies see and move too (events once, counters without lost updates). */
  shared?: SharedWatchState;
}

export class QuotaWatch {
  private readonly states: LRUCache<string, ScopeState>;
  /** Keeps the states in Swift, and holds those not written yet (even if the LRU lets them go). */
  private readonly writer: WatchWriter;
  private graceMs: number;
  private readonly now: () => number;
  private readonly timers: NodeJS.Timeout[] = [];
  /** Scopes whose fallback state was looked for lately (and not found): not looked for again meanwhile. */
  private readonly fallbackChecked: LRUCache<string, true>;
  /** Where an account's level is read afresh (level-recheck.ts); without one, a scope keeps the level last seen. */
  private levelSource: LevelSource | undefined;
  /** Scopes being looked at again (their account's level being read): not twice at once. */
  private readonly relooking = new Set<ScopeState>();

  constructor(private readonly options: QuotaWatchOptions) {
    this.states = new LRUCache({ max: options.quota.cacheMaxEntries });
    this.fallbackChecked = new LRUCache({ max: options.quota.cacheMaxEntries, ttl: Math.max(options.quota.cacheTimeoutSeconds, 1) * 1000 });
    this.graceMs = options.quota.gracePeriodSeconds * 1000;
    this.now = options.now ?? Date.now;
    this.writer = new WatchWriter({
      swift: options.swift,
      fallback: options.fallback,
      metrics: options.metrics,
      log: options.log,
      ...(options.shared ? { shared: options.shared } : {}),
      maxWaiting: () => this.options.quota.cacheMaxEntries,
      onGone: (key) => this.forget(key),
    });
    const flush = setInterval(() => void this.flush(), options.quota.hitFlushIntervalSeconds * 1000);
    flush.unref();
    this.timers.push(flush);
    this.sweeper = this.startSweeping();
  }

  private sweeper: NodeJS.Timeout;

  // Grace periods end with no request to notice them: look a few times per grace period, at most every 30 s.
  private startSweeping(): NodeJS.Timeout {
    const sweep = setInterval(() => this.sweep(), Math.min(Math.max(this.graceMs / 4, 250), 30_000));
    sweep.unref();
    return sweep;
  }

  /**
   * The soft limits and grace period of a reloaded configuration. A scope's limits come with each check, so
   * they apply from the next one; a grace period already running is measured against the new length.
   */
  useQuota(quota: QuotaConfig): void {
    this.options.quota = quota;
    if (quota.gracePeriodSeconds * 1000 === this.graceMs) return;
    this.graceMs = quota.gracePeriodSeconds * 1000;
    clearInterval(this.sweeper);
    this.sweeper = this.startSweeping();
  }

  private state(scope: Scope, persisted: PersistedQuotaState | undefined): ScopeState {
    let state = this.writer.waiting(scope.key) ?? this.states.get(scope.key);
    if (!state) {
      state = newScopeState(scope, persisted);
      this.states.set(scope.key, state);
    }
    state.scope = scope; // the level may have changed
    return state;
  }

  /**
   * Before a scope is first watched: when usage is over a soft limit and its metadata holds no record of when
   * that began, the record may be in the fallback store (its owner filled the metadata). Read it from there, so
   * that a grace period keeps running from when it began, never anew.
   */
  async load(scope: Scope, persisted: PersistedQuotaState | undefined, usage: Usage): Promise<void> {
    if (this.writer.isWaiting(scope.key) || this.states.has(scope.key) || this.fallbackChecked.has(scope.key)) return;
    const unrecorded = kindsOf(scope.type).some((kind) => {
      const soft = scope.soft[kind];
      return soft !== undefined && usageOfKind(kind, usage) > soft && persisted?.soft[kind] === undefined;
    });
    if (!unrecorded) return;
    this.fallbackChecked.set(scope.key, true);
    const stored = await this.options.fallback.load(scope.key);
    if (!stored || this.writer.isWaiting(scope.key) || this.states.has(scope.key)) return;
    const merged: PersistedQuotaState = {
      soft: { ...stored.soft, ...(persisted?.soft ?? {}) },
      hardHits: { ...stored.hardHits, ...(persisted?.hardHits ?? {}) },
      hits: persisted?.hits ?? 0,
    };
    const state = this.state(scope, merged);
    state.inFallback = true;
    state.fallbackHits = stored.hits;
  }

  /** Whether a delete in this scope could end something being watched (worth a usage read to find out). */
  isWatching(key: string): boolean {
    const state = this.writer.waiting(key) ?? this.states.peek(key);
    return state !== undefined && Object.values(state.kinds).some((kind) => kind.soft !== undefined || kind.hardHitAt !== undefined);
  }

  /** The scope's container (or account) is gone, and its metadata with it. */
  forget(key: string): void {
    this.states.delete(key);
    this.writer.drop(key);
  }

  /**
   * Usage seen: at a check (from Swift plus finished writes), after a write finished, or after a delete;
   * `withInFlight` adds the writes in flight (what a refusal's usage counts).
   */
  observe(scope: Scope, persisted: PersistedQuotaState | undefined, usage: Usage, context: ContextSource = NO_CONTEXT, withInFlight: Usage = usage): void {
    // Most checks concern scopes with no soft limit and nothing recorded: nothing to track, nothing to keep.
    if (!this.writer.isWaiting(scope.key) && !this.states.has(scope.key) && !hasSoftLimit(scope) && !hasRecordedState(persisted)) return;
    const state = this.state(scope, persisted);
    const now = this.now();
    for (const kind of kindsOf(scope.type)) {
      const used = usageOfKind(kind, usage);
      state.lastUsage[kind] = used;
      const inFlight = Math.max(used, usageOfKind(kind, withInFlight));
      this.apply(state, kind, (from) => observeUsage(from, used, { soft: scope.soft[kind], hard: scope.limits[kind] }, now, this.graceMs, inFlight), context);
    }
  }

  /** Soft limits whose grace period is over, for a check of `usage` (checks compare with them as with hard limits). */
  expiredSoftLimits(scope: Scope, usage: Usage): ExpiredSoftLimits {
    const state = this.writer.waiting(scope.key) ?? this.states.peek(scope.key);
    if (!state) return NONE_EXPIRED;
    const now = this.now();
    let expired: Partial<Record<QuotaKind, number>> | undefined;
    for (const kind of kindsOf(scope.type)) {
      const soft = scope.soft[kind];
      if (graceHasExpired(state.kinds[kind] ?? {}, usageOfKind(kind, usage), soft, now, this.graceMs)) (expired ??= {})[kind] = soft!;
    }
    return expired ?? NONE_EXPIRED;
  }

  /**
   * A write was refused in `scope`. Counted in the scope's hit counter and in every `alsoCounted` scope (the
   * account of a refused object write). A hard-limit refusal is reported once per refusal episode; one under
   * an expired grace period is not (grace_expired already said that growth is refused from then on).
   */
  /**
   * A refusal by a kind whose state is not followed yet (the account-wide kinds): counted in the scopes' hits,
   * with no soft or hard-limit state moved and no event.
   */
  countRefusals(counted: ReadonlyArray<{ scope: Scope; persisted: PersistedQuotaState | undefined }>): void {
    for (const { scope, persisted } of counted) this.writer.countHit(this.state(scope, persisted));
  }

  refused(
    scope: Scope,
    persisted: PersistedQuotaState | undefined,
    refusal: { kind: QuotaKind; limit: number; used: number; enforced: 'hard' | 'grace' },
    context: ContextSource,
    alsoCounted: Array<{ scope: Scope; persisted: PersistedQuotaState | undefined }> = [],
  ): void {
    const state = this.state(scope, persisted);
    // An account's total has no counter of its own: its refusals are counted in `alsoCounted` (the account's).
    if (scope.type !== 'total') this.writer.countHit(state);
    for (const other of alsoCounted) this.writer.countHit(this.state(other.scope, other.persisted));
    if (refusal.enforced === 'hard') this.apply(state, refusal.kind, (from) => observeRefusal(from, refusal.used, refusal.limit), context);
  }

  /**
   * Moves one kind's state as `observe` says from where it is, reports the crossings and keeps the state in
   * Swift. With other proxies sharing the state, only the proxy whose move lands reports; one that finds the
   * state moved already takes it and looks again from there (what is left to report, if anything).
   */
  private apply(state: ScopeState, kind: QuotaKind, observe: (from: KindState) => Observed, context: ContextSource): void {
    const before = state.kinds[kind] ?? {};
    const observed = observe(before);
    const changed = before.soft !== observed.state.soft || before.hardHitAt !== observed.state.hardHitAt;
    if (!changed && observed.crossings.length === 0) return;
    state.kinds[kind] = observed.state;
    if (!this.options.shared || !changed) return this.settleTransition(state, kind, before, observed, context);
    void this.shareTransition(this.options.shared, state, kind, before, observed, observe, context, SHARED_RETRIES);
  }

  private async shareTransition(
    shared: SharedWatchState,
    state: ScopeState,
    kind: QuotaKind,
    before: KindState,
    observed: Observed,
    observe: (from: KindState) => Observed,
    context: ContextSource,
    retries: number,
  ): Promise<void> {
    let current: KindState | undefined;
    try {
      current = await shared.transition(state.scope.key, kind, before, observed.state);
    } catch (error) {
      // The ledger cannot be reached: reported from here (at least once rather than not at all).
      this.options.log.warn({ err: error }, 'quota watch: the shared state cannot be reached; reporting this crossing from this proxy alone');
      return this.settleTransition(state, kind, before, observed, context);
    }
    if (current === undefined) return this.settleTransition(state, kind, before, observed, context);
    // Another proxy moved it first (and reported that). Unless this proxy moved it again meanwhile, take its
    // state and see what, if anything, is left to report from there.
    if (kindStateText(state.kinds[kind] ?? {}) !== kindStateText(observed.state)) return;
    state.kinds[kind] = current;
    const again = observe(current);
    if (kindStateText(again.state) === kindStateText(current) || retries === 0) return;
    state.kinds[kind] = again.state;
    await this.shareTransition(shared, state, kind, current, again, observe, context, retries - 1);
  }

  /** A transition that is this proxy's to report: the events go out, the state to Swift. */
  private settleTransition(state: ScopeState, kind: QuotaKind, before: KindState, observed: Observed, context: ContextSource): void {
    for (const crossing of observed.crossings) this.emit(state.scope, kind, crossing, observed.state.soft ?? before.soft, context);
    if (before.soft !== observed.state.soft || before.hardHitAt !== observed.state.hardHitAt) this.writer.stateChanged(state);
  }

  private emit(scope: Scope, kind: QuotaKind, crossing: Crossing, softRecord: KindState['soft'], source: ContextSource): void {
    const context = source();
    this.options.notifier.emit({
      type: crossing.type,
      account: scope.account,
      container: scope.container ?? null,
      kind,
      level: scope.level,
      limit: crossing.limit,
      soft_limit: scope.soft[kind] ?? null,
      hard_limit: scope.limits[kind] ?? null,
      usage: crossing.usage,
      grace_expires: softRecord ? new Date(graceEndsAt(softRecord, this.graceMs)).toISOString() : null,
      caller: context.caller ?? null,
      request: context.request ?? null,
      requested_count: context.asked?.count ?? null,
      requested_bytes: context.asked?.bytes ?? null,
    });
  }

  /** How the watch reads an account's level afresh (the admissions', once they exist). */
  useLevelSource(source: LevelSource): void {
    this.levelSource = source;
  }

  /**
   * An account's level was changed through this proxy: the scopes of that account being watched are looked at
   * again now, under the new level's limits (an episode may end, or begin, with the change rather than at the
   * next write).
   */
  reconsider(account: string): void {
    for (const state of new Set([...this.states.values(), ...this.writer.waitingStates()])) {
      if (state.scope.account === account) void this.lookAgain(state);
    }
  }

  /**
   * Grace periods that ended since the last look, with no request to notice: reported now, under the limits of
   * the level the account holds now (read afresh: it may have changed through another proxy or worker, or with
   * no request since), never those of a level it no longer holds.
   */
  sweep(): void {
    const now = this.now();
    const due = (state: ScopeState) =>
      Object.values(state.kinds).some((kind) => kind.soft !== undefined && !kind.soft.graceNotified && now >= graceEndsAt(kind.soft, this.graceMs));
    for (const state of new Set([...this.states.values(), ...this.writer.waitingStates()])) {
      if (due(state)) void this.lookAgain(state);
    }
  }

  /** Reads the scope's level afresh, then its last seen usage against that level's limits. */
  private async lookAgain(state: ScopeState): Promise<void> {
    if (this.relooking.has(state)) return;
    this.relooking.add(state);
    try {
      if (this.levelSource) {
        let level: LevelLimits;
        try {
          level = await this.levelSource(state.scope.account);
        } catch (error) {
          // Nothing is reported on a guess: the next sweep tries again.
          this.options.log.warn({ err: error, account: state.scope.account }, 'quota watch: cannot read the account\'s level; its grace periods are looked at again later');
          return;
        }
        state.scope = withLevel(state.scope, level);
      }
      const { scope } = state;
      const now = this.now();
      for (const kind of kindsOf(scope.type)) {
        const used = state.lastUsage[kind];
        if (used === undefined) continue;
        // Only checks and deletes, which know the writes in flight, end a hard-limit episode: not this look.
        const limits = { soft: scope.soft[kind], hard: scope.limits[kind] };
        this.apply(state, kind, (from) => observeUsage(from, used, limits, now, this.graceMs, Math.max(used, from.hardHitAt ?? 0)), NO_CONTEXT);
      }
    } finally {
      this.relooking.delete(state);
    }
  }

  /** Writes every pending hit counter and soft state. */
  async flush(): Promise<void> {
    await this.writer.flush();
  }

  async close(): Promise<void> {
    for (const timer of this.timers) clearInterval(timer);
    clearInterval(this.sweeper);
    await this.flush();
  }
}
