/**
 * The long-lived parts every front door admits writes with (doors/*): the rules in force, the ledger, the
 * admissions, the pins, what Swift authorises, and the watch. Built once per process (app.ts); no HTTP here.
 */
import { LRUCache } from 'lru-cache';
import { AccountsSeen } from './accounts-seen.js';
import type { Ec2Credentials } from '../auth/ec2.js';
import type { Config } from '../config/load.js';
import { serviceResellerPrefix } from '../config/load.js';
import type { Metrics } from '../metrics.js';
import type { Log } from '../log.js';
import { ResellerCheck } from '../auth/reseller.js';
import { Authority } from '../auth/authority.js';
import type { TokenIdentities } from '../auth/identities.js';
import type { SwiftClient } from '../swift/client.js';
import type { SwiftCapabilities } from '../swift/capabilities.js';
import type { UsageLedger, Versioning } from './ledger/ledger.js';
import { Admissions } from './admission.js';
import { GrantedWrites } from './grants.js';
import { ObjectPins, type PinBoard } from './pins.js';
import type { ContextSource, EventContext, QuotaWatch } from './watch.js';
import { callerToken } from '../auth/authority.js';
import type { SwiftView } from '../proxy/swift-view.js';
import type { Exchange } from './exchange.js';
import { requestEventContext } from './write-trace.js';

/** How long a kept grant is trusted for a write held open before Swift has seen it (authority.ts keeps grants 10 s). */
const GRANT_RECHECK_MS = 10_000;

export interface QuotaCoreOptions {
  config: Config;
  swift: SwiftClient;
  metrics: Metrics;
  log: Log;
  watch: QuotaWatch;
  identities: TokenIdentities;
  capabilities: () => SwiftCapabilities;
  ledger: UsageLedger;
  /** Pins shared with the other processes of a shared ledger (ledger/create.ts); this process's own by default. */
  pins?: PinBoard;
  /** Keystone's check of EC2 credentials, when Swift runs s3token ([filter:s3token]). */
  ec2?: Ec2Credentials;
}

export class QuotaCore {
  readonly swift: SwiftClient;
  readonly log: Log;
  readonly metrics: Metrics;
  readonly watch: QuotaWatch;
  readonly identities: TokenIdentities;
  readonly capabilities: () => SwiftCapabilities;
  readonly ledger: UsageLedger;
  readonly admissions: Admissions;
  readonly pins: PinBoard;
  readonly authority: Authority;
  /** Writes admitted on a kept grant that Swift has not seen yet (grants.ts). */
  readonly grants: GrantedWrites;
  /** Keystone's check of S3 requests signed with EC2 credentials (auth/ec2.ts), when Swift runs s3token. */
  readonly ec2: Ec2Credentials | undefined;
  /** Accounts Swift took writes for, recorded in the account registry (`record_accounts`), else none. */
  readonly accountsSeen: AccountsSeen | undefined;
  private readonly resellers: ResellerCheck;
  private rules: Config;
  /**
   * How each container versions its objects, as last read (cached mode): kept apart from its usage, which every
   * delete makes stale, so that a run of deletes reads it once per cache_timeout rather than once each.
   */
  private readonly versionings: LRUCache<string, Versioning | 'none'>;

  constructor({ config, swift, metrics, log, watch, identities, capabilities, ledger, pins, ec2 }: QuotaCoreOptions) {
    this.rules = config;
    this.ec2 = ec2;
    this.swift = swift;
    this.log = log;
    this.metrics = metrics;
    this.watch = watch;
    this.identities = identities;
    this.capabilities = capabilities;
    this.ledger = ledger;
    this.pins = pins ?? new ObjectPins();
    // An account of the service identity's auth system (keystoneauth or tempauth): only that system may grant it.
    this.resellers = new ResellerCheck(swift, `${serviceResellerPrefix(config)}${config.quota.resellerProbeAccount}`);
    this.authority = new Authority(swift);
    this.grants = new GrantedWrites((credentials, account, container) => this.authority.mayWriteNow(credentials, account, container));
    // Writes held here on a grant since revoked would keep writes through other proxies out: asked again while held.
    setInterval(() => void this.grants.sweep(GRANT_RECHECK_MS), GRANT_RECHECK_MS / 2).unref();
    this.admissions = new Admissions({ config, ledger, watch, log, defaultPolicy: () => capabilities().defaultPolicy });
    this.versionings = new LRUCache({ max: config.quota.cacheMaxEntries, ttl: Math.max(config.quota.cacheTimeoutSeconds * 1000, 1) });
    this.accountsSeen = config.quota.recordAccounts ? new AccountsSeen(swift, log, config.quota.cacheMaxEntries) : undefined;
  }

  /** The configuration decisions follow. */
  get config(): Config {
    return this.rules;
  }

  /** The configuration decisions follow (the report route's name for it). */
  get currentConfig(): Config {
    return this.rules;
  }

  /**
   * Decides by `config` from now on (a reload: config/reload.ts decides which settings may differ). Decisions
   * under way finish by the rules they started with; reservations are untouched.
   */
  useConfig(config: Config): void {
    this.rules = config;
    this.admissions.useConfig(config);
    this.watch.useQuota(config.quota);
  }

  /** Whether the token's holder is a reseller admin (asked of Swift; see auth/reseller.ts). */
  isResellerAdmin(token: string | undefined): Promise<boolean> {
    return this.resellers.isResellerAdmin(token);
  }

  /** The account a token's login went through this proxy for, when known. */
  callerOf(token: string | undefined): string | undefined {
    return this.identities.caller(token);
  }

  /** Who asked and what, for quota events: Swift's transaction id once Swift has answered, else the proxy's. */
  eventContext(exchange: Exchange, callerToken: string | undefined, transactionId?: string): EventContext {
    return requestEventContext(exchange, this.identities.caller(callerToken), transactionId);
  }

  /** Who asked and what, for the quota events of a request's writes (built only when an event fires). */
  contextOf(exchange: Exchange, view: SwiftView): ContextSource {
    return () => this.eventContext(exchange, callerToken(view.headers));
  }

  /**
   * A container's versioning where no usage read is needed otherwise (deletes). In precise mode it is read as a
   * check's usage is (sent after the request came: a change made elsewhere is seen); in cached mode remembered for
   * cache_timeout, as a delete's invalidation of the usage reading would otherwise cost a HEAD per delete, and
   * forgotten when the versioning changes through this proxy.
   */
  async containerVersioning(key: string): Promise<Versioning | undefined> {
    if (this.rules.quota.preciseMode) return (await this.ledger.read(key, this.admissions.readNotBefore())).versioning;
    const known = this.versionings.get(key);
    if (known !== undefined) return known === 'none' ? undefined : known;
    const { versioning } = await this.ledger.read(key);
    this.versionings.set(key, versioning ?? 'none');
    return versioning;
  }

  /** What was cached of a scope changed through this proxy (its versioning, the proxy's own metadata). */
  forget(key: string): void {
    this.watch.forget(key);
    this.versionings.delete(key);
  }
}
