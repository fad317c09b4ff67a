/**
 * Turns the sections of a `proxy-server.conf`-style file into a typed, frozen `Config`.
 * Pure apart from reading the file; every problem stops start-up with file, line and key.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';
import { dirname, resolve } from 'node:path';
import { ConfigError } from './errors.js';
import { parseSwiftIni, type IniDocument, type IniSection } from './ini.js';
import { parseQuotaLevels, parseSoftLimits, type Limits, type QuotaLevels } from './quota-levels.js';
import { KEYSTONE_KEYS, KEYSTONEAUTH_SECTION, parseKeystoneIdentity, type KeystoneIdentity } from './keystone.js';
import { parseTrace, type TraceConfig } from './trace.js';
import { DEFAULT_S3_CONFIG, type S3Config } from '../s3/request.js';
import { listFromCsv, storageDomainList, type CnameLookupConfig, type DomainRemapConfig } from '../swift/host-addressing.js';

export const PROXY_SECTION = 'quota-proxy';
export const QUOTA_SECTION = 'filter:quota';
export const TEMPAUTH_SECTION = 'filter:tempauth';
export const S3API_SECTION = 'filter:s3api';
export const DOMAIN_REMAP_SECTION = 'filter:domain_remap';
export const CNAME_LOOKUP_SECTION = 'filter:cname_lookup';

export const DEFAULT_BIND_IP = '127.0.0.1';
export const DEFAULT_BIND_PORT = 8081;
export const DEFAULT_METRICS_PATH = '/metrics';
export const DEFAULT_REPORT_PATH = '/quota/report';
export const DEFAULT_CACHE_TIMEOUT = 30; // seconds
export const DEFAULT_NEAR_LIMIT_RATIO = 0.95; // like Ceph RGW: within 5 % of a limit, ask Swift live
export const DEFAULT_RETRY_AFTER = 5; // seconds, sent with 503 when usage cannot be read
export const DEFAULT_CACHE_ENTRIES = 100_000; // accounts + containers held in the usage cache
export const DEFAULT_UPSTREAM_TIMEOUT = 60; // seconds without a byte from Swift before 504
export const DEFAULT_RESELLER_PREFIX = 'AUTH_';
export const DEFAULT_GRACE_PERIOD = 7 * 86_400; // seconds; Linux quota's default grace
export const DEFAULT_HIT_FLUSH_INTERVAL = 30; // seconds between writes of rejection counters to Swift
export const NOTIFY_SECTION_PREFIX = 'notify:';
export const DEFAULT_NOTIFY_TIMEOUT = 10; // seconds a provider may take per event
export const DEFAULT_QUEUE_MAX_BYTES = 64 * 1024 ** 2;
export const DEFAULT_RETRY_MIN = 1; // seconds before the first webhook retry; doubles up to retry_max
export const DEFAULT_RETRY_MAX = 300;

export interface TempauthUser {
  readonly account: string;
  readonly user: string;
  readonly key: string;
  readonly groups: readonly string[];
  /** The storage URL tempauth hands this user, when the config names one (its last segment is the account). */
  readonly storageUrl?: string;
}

/**
 * A reseller admin the proxy acts as: a `.reseller_admin` tempauth user (`service_user`), or a Keystone v3
 * identity whose token carries keystoneauth's reseller admin role (`service_auth = keystone`).
 */
export type ServiceIdentity =
  | { readonly kind: 'tempauth'; readonly user: TempauthUser; /** The user's own account. */ readonly account: string }
  | { readonly kind: 'keystone'; readonly keystone: KeystoneIdentity };

export interface QuotaConfig {
  readonly cacheTimeoutSeconds: number;
  readonly preciseMode: boolean;
  readonly levels: QuotaLevels;
  /** In cached mode, a check whose projected usage reaches this share of a limit reads live usage. */
  readonly nearLimitRatio: number;
  /** What a write that needs a check gets when Swift cannot be asked: refused (closed) or let through (open). */
  readonly failMode: 'closed' | 'open';
  readonly retryAfterSeconds: number;
  readonly cacheMaxEntries: number;
  /** The identity the proxy reads usage and keeps its state with (`service_auth`). */
  readonly service: ServiceIdentity;
  /** An account no user owns: a caller Swift lets write there is a reseller admin (see auth/reseller.ts). */
  readonly resellerProbeAccount: string;
  /** Soft limits per level (a kind without one has no soft limit). */
  readonly softLimits: ReadonlyMap<string, Limits>;
  /** How long usage may stay over a soft limit before the soft limit is enforced like a hard one. */
  readonly gracePeriodSeconds: number;
  readonly hitFlushIntervalSeconds: number;
}

/** Where a setting was read, for errors found after the config was loaded (a provider module that fails). */
export interface ConfigPlace {
  readonly file: string;
  readonly line: number | undefined;
  readonly section: string;
  readonly key: string;
}

interface NotifierBase {
  readonly name: string;
  /** Seconds one delivery may take before it counts as failed. */
  readonly timeoutSeconds: number;
}

export type NotifierConfig =
  | (NotifierBase & { readonly type: 'stdout' })
  | (NotifierBase & {
      readonly type: 'webhook';
      readonly url: URL;
      readonly bearerToken?: string;
      /**
       * Shared secret: each delivery is signed. `standard`: Standard Webhooks (webhook-id, webhook-timestamp,
       * webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">; a `whsec_<base64>` secret is the
       * key's bytes, any other string the key as it is); `legacy`: `X-Quota-Signature: sha256=<HMAC-SHA256 hex of
       * the body>`, which a captured delivery can be replayed against; `both` while receivers move over.
       */
      readonly secret?: string;
      readonly signature: 'standard' | 'legacy' | 'both';
      readonly queueDir: string;
      /** Where queue_dir is set, for a start-up error when the directory cannot be used. */
      readonly queueDirPlace: ConfigPlace;
      readonly queueMaxBytes: number;
      readonly retryMinSeconds: number;
      readonly retryMaxSeconds: number;
    })
  | (NotifierBase & {
      readonly type: 'module';
      /** Absolute path of the module (relative paths are taken from the config file's directory). */
      readonly modulePath: string;
      readonly place: ConfigPlace;
      /** The section's other keys, given to a provider class's constructor. */
      readonly options: Readonly<Record<string, string>>;
    });

export interface Config {
  readonly file: string;
  readonly bindIp: string;
  readonly bindPort: number;
  /**
   * `ops_bind_ip`/`ops_bind_port`: a listener of its own for /metrics, /healthz and /readyz. /metrics and /readyz
   * then leave the client port (there they are paths like any other, forwarded to Swift); /healthz stays on it too.
   * Undefined: all three are on the client port.
   */
  readonly opsBind: { readonly host: string; readonly port: number } | undefined;
  readonly upstream: URL;
  readonly upstreamTimeoutSeconds: number;
  /** What a client may hold of the proxy (docs/operations.md, "Bounds on what a client can hold"). */
  readonly bounds: ClientBounds;
  readonly metricsPath: string;
  /** The usage report over HTTP (answered by the proxy). */
  readonly reportPath: string;
  readonly logLevel: string;
  /** One JSON line per request at level info. */
  readonly accessLog: boolean;
  readonly resellerPrefix: string;
  readonly users: readonly TempauthUser[];
  readonly quota: QuotaConfig;
  /** `[notify:<name>]` sections: where quota events go. */
  readonly notifiers: readonly NotifierConfig[];
  /**
   * Swift's `[filter:s3api]` settings that decide how S3 requests are read (addressing, signatures); undefined
   * without the section (then a host name may name a bucket the proxy cannot tell).
   */
  readonly s3: S3Config | undefined;
  /** Swift's `[filter:domain_remap]`, when Swift runs it: host names that address accounts and containers. */
  readonly domainRemap: DomainRemapConfig | undefined;
  /** Swift's `[filter:cname_lookup]`, when Swift runs it: host names that are CNAMEs of storage-domain names. */
  readonly cnameLookup: CnameLookupConfig | undefined;
  /** Where usage, reservations and finished writes are kept: this process, or a Redis shared by proxies. */
  readonly ledger: LedgerConfig;
  /** Worker processes sharing the port (Swift's own name for it); more than one needs a Redis ledger. */
  readonly workers: number;
  /** Trusted proxies for client addresses, and the suffix of the proxy's own transaction ids (trace.ts). */
  readonly trace: TraceConfig;
  /** Things that load but deserve the operator's attention (logged at start-up). */
  readonly warnings: readonly string[];
}

export interface ClientBounds {
  /** client_header_timeout: seconds to send a whole request head, then 408. */
  readonly headerTimeoutSeconds: number;
  /** client_body_timeout: seconds a body may wait to start, or go without a byte, then 408. */
  readonly bodyTimeoutSeconds: number;
  /** max_connections: client connections per process (0: no limit). */
  readonly maxConnections: number;
  /** max_connections_per_client: of those, from one address (0: no limit). */
  readonly maxConnectionsPerClient: number;
  /** pending_header_bytes: bytes of unfinished request heads, all connections together (0: no limit). */
  readonly pendingHeaderBytes: number;
  /** max_bodies_per_client: request bodies in progress from one address (0: no limit). */
  readonly maxBodiesPerClient: number;
  /** max_bodies_per_account: request bodies in progress into one account (0: no limit). */
  readonly maxBodiesPerAccount: number;
  /** body_buffer_bytes: bytes of manifests and S3 completions the proxy holds in memory at once. */
  readonly bodyBufferBytes: number;
  /** body_buffer_account_bytes: of those, for one account. */
  readonly bodyBufferAccountBytes: number;
}

export const DEFAULT_CLIENT_BOUNDS: ClientBounds = Object.freeze({
  headerTimeoutSeconds: 60,
  bodyTimeoutSeconds: 60,
  maxConnections: 8192,
  maxConnectionsPerClient: 1024,
  pendingHeaderBytes: 64 * 1024 * 1024,
  maxBodiesPerClient: 128,
  maxBodiesPerAccount: 128,
  bodyBufferBytes: 128 * 1024 * 1024,
  bodyBufferAccountBytes: 32 * 1024 * 1024,
});

/** [quota-proxy]'s bounds on clients; each key's default and reason are in docs/configuration.md. */
function parseClientBounds(proxy: SectionReader | undefined): ClientBounds {
  const d = DEFAULT_CLIENT_BOUNDS;
  if (!proxy) return d;
  const bounds: ClientBounds = {
    // Node refuses a head timeout above its request timeout; 300 s is already five times Swift's client_timeout.
    headerTimeoutSeconds: proxy.integer('client_header_timeout', d.headerTimeoutSeconds, 1, 300, 'seconds'),
    bodyTimeoutSeconds: proxy.integer('client_body_timeout', d.bodyTimeoutSeconds, 1, 3600, 'seconds'),
    maxConnections: proxy.integer('max_connections', d.maxConnections, 0, 1_000_000),
    maxConnectionsPerClient: proxy.integer('max_connections_per_client', d.maxConnectionsPerClient, 0, 1_000_000),
    pendingHeaderBytes: proxy.size('pending_header_bytes', d.pendingHeaderBytes, 0),
    maxBodiesPerClient: proxy.integer('max_bodies_per_client', d.maxBodiesPerClient, 0, 1_000_000),
    maxBodiesPerAccount: proxy.integer('max_bodies_per_account', d.maxBodiesPerAccount, 0, 1_000_000),
    bodyBufferBytes: proxy.size('body_buffer_bytes', d.bodyBufferBytes, 1024 * 1024),
    bodyBufferAccountBytes: proxy.size('body_buffer_account_bytes', d.bodyBufferAccountBytes, 64 * 1024),
  };
  if (bounds.bodyBufferAccountBytes > bounds.bodyBufferBytes) {
    proxy.fail('body_buffer_account_bytes', `must not be more than body_buffer_bytes (${bounds.bodyBufferBytes}), got ${bounds.bodyBufferAccountBytes}`);
  }
  return Object.freeze(bounds);
}

export type LedgerConfig =
  | { readonly kind: 'memory' }
  | {
      readonly kind: 'redis';
      /** `redis://[user:pass@]host:port[/db]` or `rediss://` (TLS). */
      readonly url: string;
      /** How long a reservation outlives the proxy that held it (it renews it while alive). */
      readonly leaseSeconds: number;
      /** Prefix of every Redis key: proxies sharing a prefix share quotas. */
      readonly prefix: string;
    };

export const DEFAULT_LEDGER_LEASE = 30; // seconds
export const DEFAULT_LEDGER_PREFIX = 'swift-quota-proxy:';

export interface ConfigOverrides {
  listen?: string; // HOST:PORT
  upstream?: string;
  /** `memory` or a Redis URL, in place of the file's `ledger` (the URL carries the password: kept out of files). */
  ledger?: string;
}

class SectionReader {
  constructor(
    private readonly doc: IniDocument,
    readonly name: string,
    private readonly values: IniSection,
  ) {}

  keys(): string[] {
    return Object.keys(this.values);
  }

  has(key: string): boolean {
    return this.values[key] !== undefined;
  }

  fail(key: string | undefined, reason: string): never {
    const line = key === undefined ? this.doc.sectionLine(this.name) : this.doc.lineOf(this.name, key);
    throw new ConfigError(this.doc.file, line, this.name, key, reason);
  }

  line(key: string): number | undefined {
    return this.doc.lineOf(this.name, key);
  }

  string(key: string, fallback: string): string {
    return this.values[key] ?? fallback;
  }

  raw(key: string): string | undefined {
    return this.values[key];
  }

  integer(key: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER, unit = ''): number {
    const raw = this.values[key];
    if (raw === undefined) return fallback;
    const value = Number(raw.trim());
    if (!/^-?\d+$/.test(raw.trim()) || value < min || value > max) {
      this.fail(key, `must be a whole number from ${min} to ${max}${unit ? ` (${unit})` : ''}, got "${raw}"`);
    }
    return value;
  }

  number(key: string, fallback: number, min: number, max: number): number {
    const raw = this.values[key];
    if (raw === undefined) return fallback;
    const value = Number(raw.trim());
    if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
      this.fail(key, `must be a number from ${min} to ${max}, got "${raw}"`);
    }
    return value;
  }

  /** Seconds, written as `604800`, `7d`, `12h`, `30m` or `45s`. */
  duration(key: string, fallback: number, min: number): number {
    const raw = this.values[key];
    if (raw === undefined) return fallback;
    const match = /^(\d+)\s*([smhd]?)$/i.exec(raw.trim());
    const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[(match?.[2] ?? '').toLowerCase()] ?? 1;
    const value = match ? Number(match[1]) * unit : NaN;
    if (!match || !Number.isSafeInteger(value) || value < min) {
      this.fail(key, `must be a duration of at least ${min} s such as 604800, 7d, 12h, 30m or 45s, got "${raw}"`);
    }
    return value;
  }

  /** Bytes, written as `67108864`, `64M`, `512K` or `2G` (binary units). */
  size(key: string, fallback: number, min: number): number {
    const raw = this.values[key];
    if (raw === undefined) return fallback;
    const match = /^(\d+)\s*([kmgt]?)i?b?$/i.exec(raw.trim());
    const unit = 1024 ** ' kmgt'.indexOf((match?.[2] || ' ').toLowerCase());
    const value = match ? Number(match[1]) * unit : NaN;
    if (!match || !Number.isSafeInteger(value) || value < min) {
      this.fail(key, `must be a size of at least ${min} bytes such as 67108864, 64M or 1G, got "${raw}"`);
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const raw = this.values[key];
    if (raw === undefined) return fallback;
    // The spellings Swift's config_true_value accepts.
    const lowered = raw.trim().toLowerCase();
    if (['true', '1', 'yes', 'on', 't', 'y'].includes(lowered)) return true;
    if (['false', '0', 'no', 'off', 'f', 'n'].includes(lowered)) return false;
    this.fail(key, `must be true or false, got "${raw}"`);
  }

  oneOf<T extends string>(key: string, fallback: T, allowed: readonly T[]): T {
    const raw = this.values[key];
    if (raw === undefined) return fallback;
    const value = raw.trim() as T;
    if (!allowed.includes(value)) this.fail(key, `must be one of ${allowed.join(', ')}, got "${raw}"`);
    return value;
  }
}

function section(doc: IniDocument, name: string): SectionReader | undefined {
  const values = doc.sections[name];
  return values === undefined ? undefined : new SectionReader(doc, name, values);
}

export function parseListen(value: string, fail: (reason: string) => never): { host: string; port: number } {
  const match = /^\[?([^\]]*?)\]?:(\d+)$/.exec(value.trim());
  const port = match ? Number(match[2]) : NaN;
  if (!match || !match[1] || port < 0 || port > 65535) fail(`must be HOST:PORT, got "${value}"`);
  return { host: match[1], port };
}

export function parseUpstream(value: string, fail: (reason: string) => never): URL {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    fail(`must be the Swift proxy's base URL such as http://127.0.0.1:8080, got "${value}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') fail(`must be an http:// or https:// URL, got "${value}"`);
  if (url.pathname !== '/' || url.search || url.hash) {
    fail(`must be a base URL without path or query (the proxy forwards client paths as they are), got "${value}"`);
  }
  return url;
}

/** `user_<account>_<user> = <key> [group ...] [storage_url]`, as Swift's tempauth reads it. */
function parseTempauth(reader: SectionReader | undefined): { resellerPrefix: string; users: TempauthUser[] } {
  if (!reader) return { resellerPrefix: DEFAULT_RESELLER_PREFIX, users: [] };
  const prefix = reader.string('reseller_prefix', DEFAULT_RESELLER_PREFIX).trim();
  const resellerPrefix = prefix === '' || prefix.endsWith('_') ? prefix : `${prefix}_`;
  const users: TempauthUser[] = [];
  for (const key of reader.keys()) {
    let account: string | undefined;
    let user: string | undefined;
    if (key.startsWith('user64_')) {
      const parts = key.slice('user64_'.length).split('_');
      if (parts.length !== 2) reader.fail(key, 'must be user64_<base64 account>_<base64 user>');
      [account, user] = parts.map((p) => Buffer.from(p, 'base64').toString('utf8')) as [string, string];
    } else if (key.startsWith('user_')) {
      const parts = key.slice('user_'.length).split('_');
      if (parts.length !== 2) reader.fail(key, 'must be user_<account>_<user> (no "_" in either name; use user64_ for that)');
      [account, user] = parts as [string, string];
    } else continue;
    const words = reader.string(key, '').trim().split(/\s+/).filter(Boolean);
    const userKey = words.shift() ?? reader.fail(key, 'needs a key (password) as its first word');
    const groups = words.filter((w) => !/^https?:\/\//.test(w));
    const storageUrl = words.find((w) => /^https?:\/\//.test(w));
    users.push(Object.freeze({ account: account!, user: user!, key: userKey, groups: Object.freeze(groups), ...(storageUrl ? { storageUrl } : {}) }));
  }
  return { resellerPrefix, users };
}

/** The account tempauth acts on for a user: its storage URL's last segment, or the reseller prefix and its account. */
export function accountOfUser(user: TempauthUser, resellerPrefix: string): string {
  if (user.storageUrl) return decodeURIComponent(user.storageUrl.replace(/\/+$/, '').split('/').pop() ?? '');
  return `${resellerPrefix}${user.account}`;
}

/** `service_auth = tempauth` (default: `service_user`, a tempauth reseller admin) or `keystone` (its own keys). */
function parseServiceIdentity(reader: SectionReader, tempauth: { resellerPrefix: string; users: TempauthUser[] }, keystoneauth: SectionReader | undefined): ServiceIdentity {
  const kind = reader.oneOf('service_auth', 'tempauth', ['tempauth', 'keystone'] as const);
  if (kind === 'keystone') {
    if (reader.has('service_user')) reader.fail('service_user', 'names a tempauth user: with service_auth = keystone the service identity is auth_url, username, password, ... (or an application credential)');
    return Object.freeze({ kind, keystone: parseKeystoneIdentity(reader, keystoneauth) });
  }
  const stray = KEYSTONE_KEYS.find((key) => reader.has(key));
  if (stray) reader.fail(stray, 'is a Keystone setting of the service identity: it is read with service_auth = keystone only');
  const user = pickServiceUser(reader, tempauth.users);
  return Object.freeze({ kind, user, account: accountOfUser(user, tempauth.resellerPrefix) });
}

/** The reseller prefix of the service identity's auth system: keystoneauth's or tempauth's. */
export function serviceResellerPrefix(config: Config): string {
  return config.quota.service.kind === 'keystone' ? config.quota.service.keystone.resellerPrefix : config.resellerPrefix;
}

function pickServiceUser(reader: SectionReader, users: TempauthUser[]): TempauthUser {
  if (!reader.has('service_user')) {
    const reseller = users.find((u) => u.groups.includes('.reseller_admin'));
    if (reseller) return reseller;
    return reader.fail(undefined, `needs a service identity: add a .reseller_admin user to [${TEMPAUTH_SECTION}] (or name one with service_user = account:user), or set service_auth = keystone and a Keystone identity`);
  }
  const wanted = reader.string('service_user', '').trim();
  const user = users.find((u) => `${u.account}:${u.user}` === wanted);
  if (!user) return reader.fail('service_user', `"${wanted}" is not a user in [${TEMPAUTH_SECTION}]`);
  if (!user.groups.includes('.reseller_admin')) {
    reader.fail('service_user', `"${wanted}" must be in the .reseller_admin group to read every account's usage`);
  }
  return user;
}

function parseQuota(reader: SectionReader | undefined, tempauth: { resellerPrefix: string; users: TempauthUser[] }, keystoneauth: SectionReader | undefined, file: string, warnings: string[]): QuotaConfig {
  if (!reader) throw new ConfigError(file, undefined, QUOTA_SECTION, undefined, 'section is missing');
  if (!reader.has('quota')) reader.fail(undefined, 'needs a "quota = {...}" JSON value with the levels');
  const levels = parseQuotaLevels(reader.raw('quota')!, {
    fail: (reason, lineOffset = 0) => {
      const line = reader.line('quota');
      throw new ConfigError(file, line === undefined ? undefined : line + lineOffset, QUOTA_SECTION, 'quota', reason);
    },
    warn: (message, lineOffset = 0) => {
      const line = reader.line('quota');
      warnings.push(`${file}:${line === undefined ? '?' : line + lineOffset}: [${QUOTA_SECTION}] quota: ${message}`);
    },
  });

  const service = parseServiceIdentity(reader, tempauth, keystoneauth);
  const softRatio = reader.has('soft_ratio') ? reader.number('soft_ratio', 1, 0, 1) : undefined;
  const softLimits = parseSoftLimits(reader.raw('soft_quota'), softRatio, levels, {
    fail: (reason, lineOffset = 0) => {
      const line = reader.line(reader.has('soft_quota') ? 'soft_quota' : 'soft_ratio');
      throw new ConfigError(file, line === undefined ? undefined : line + lineOffset, QUOTA_SECTION, reader.has('soft_quota') ? 'soft_quota' : 'soft_ratio', reason);
    },
    warn: (message, lineOffset = 0) => {
      const line = reader.line('soft_quota');
      warnings.push(`${file}:${line === undefined ? '?' : line + lineOffset}: [${QUOTA_SECTION}] soft_quota: ${message}`);
    },
  });

  return Object.freeze({
    cacheTimeoutSeconds: reader.integer('cache_timeout', DEFAULT_CACHE_TIMEOUT, 0, 86_400, 'seconds'),
    preciseMode: reader.boolean('precise_mode', false),
    levels,
    nearLimitRatio: reader.number('near_limit_ratio', DEFAULT_NEAR_LIMIT_RATIO, 0, 1),
    failMode: reader.oneOf('fail_mode', 'closed', ['closed', 'open'] as const),
    retryAfterSeconds: reader.integer('retry_after', DEFAULT_RETRY_AFTER, 0, 3600, 'seconds'),
    cacheMaxEntries: reader.integer('cache_max_entries', DEFAULT_CACHE_ENTRIES, 1, 100_000_000),
    service,
    resellerProbeAccount: reader.string('reseller_probe_account', 'quota-proxy-reseller-probe').trim(),
    softLimits,
    gracePeriodSeconds: reader.duration('grace_period', DEFAULT_GRACE_PERIOD, 1),
    hitFlushIntervalSeconds: reader.duration('hit_flush_interval', DEFAULT_HIT_FLUSH_INTERVAL, 1),
  });
}

const WEBHOOK_KEYS = ['type', 'url', 'bearer_token', 'secret', 'signature', 'timeout', 'queue_dir', 'queue_max_bytes', 'retry_min', 'retry_max'];

/** `[filter:s3api]`, as s3api reads it (a Swift proxy-server.conf's own section can be used as it is). */
function parseS3(reader: SectionReader | undefined): S3Config | undefined {
  if (!reader) return undefined;
  const domains = reader.string('storage_domain', '').split(',').map((d) => d.trim()).filter(Boolean);
  return Object.freeze({
    storageDomains: Object.freeze(domains),
    location: reader.string('location', DEFAULT_S3_CONFIG.location).trim(),
    clockSkewSeconds: reader.integer('allowable_clock_skew', DEFAULT_S3_CONFIG.clockSkewSeconds, 0, 86_400 * 365, 'seconds'),
    maxUploadPartNum: reader.integer('max_upload_part_num', DEFAULT_S3_CONFIG.maxUploadPartNum, 1, 1_000_000),
  });
}

/** `[filter:domain_remap]`, with domain_remap's defaults. */
function parseDomainRemap(reader: SectionReader | undefined): DomainRemapConfig | undefined {
  if (!reader) return undefined;
  const pathRoot = `${reader.string('path_root', 'v1').replace(/^\/+|\/+$/g, '')}/`;
  return Object.freeze({
    storageDomains: Object.freeze(storageDomainList(reader.raw('storage_domain'))),
    pathRoot,
    resellerPrefixes: Object.freeze(listFromCsv(reader.string('reseller_prefixes', 'AUTH'))),
    defaultResellerPrefix: reader.raw('default_reseller_prefix') || undefined,
    mangleClientPaths: reader.boolean('mangle_client_paths', false),
  });
}

/** `[filter:cname_lookup]`, with cname_lookup's defaults; nameservers as it accepts them (IP, optional port). */
function parseCnameLookup(reader: SectionReader | undefined): CnameLookupConfig | undefined {
  if (!reader) return undefined;
  const nameservers = listFromCsv(reader.raw('nameservers')).map((server) => {
    const match = /^(?:(\d{1,3}(?:\.\d{1,3}){3})|\[([0-9A-Fa-f:.]+)\]|([0-9A-Fa-f:]+))(?::(\d{1,5}))?$/.exec(server);
    const ip = match?.[1] ?? match?.[2] ?? match?.[3];
    if (!ip || isIP(ip) === 0) return reader.fail('nameservers', `must be IPv4 or IPv6 addresses, each with an optional :<port>, got "${server}"`);
    const port = match![4];
    return isIP(ip) === 6 ? (port ? `[${ip}]:${port}` : ip) : port ? `${ip}:${port}` : ip;
  });
  return Object.freeze({
    storageDomains: Object.freeze(storageDomainList(reader.raw('storage_domain'))),
    lookupDepth: reader.integer('lookup_depth', 1, 0, 100),
    nameservers: Object.freeze(nameservers),
  });
}

function parseNotifier(reader: SectionReader, file: string): NotifierConfig {
  const name = reader.name.slice(NOTIFY_SECTION_PREFIX.length).trim();
  if (name === '') reader.fail(undefined, 'needs a name: [notify:<name>]');
  const type = reader.has('type') ? reader.oneOf('type', 'stdout', ['stdout', 'webhook', 'module'] as const) : reader.fail(undefined, 'needs type = stdout, webhook or module');
  const timeoutSeconds = reader.integer('timeout', DEFAULT_NOTIFY_TIMEOUT, 1, 3600, 'seconds');
  const here = dirname(resolve(file));
  switch (type) {
    case 'stdout':
      return Object.freeze({ name, type, timeoutSeconds });
    case 'webhook': {
      for (const key of reader.keys()) {
        if (!WEBHOOK_KEYS.includes(key)) reader.fail(key, `is not a webhook setting (known: ${WEBHOOK_KEYS.join(', ')})`);
      }
      const urlText = reader.raw('url') ?? reader.fail(undefined, 'needs url = http(s)://... (where events are POSTed)');
      let url: URL;
      try {
        url = new URL(urlText.trim());
      } catch {
        reader.fail('url', `must be an http:// or https:// URL, got "${urlText}"`);
      }
      if (url.protocol !== 'http:' && url.protocol !== 'https:') reader.fail('url', `must be an http:// or https:// URL, got "${urlText}"`);
      const queueDir = reader.raw('queue_dir')?.trim() || reader.fail(undefined, 'needs queue_dir = <directory> (events wait there until delivered)');
      const bearerToken = reader.raw('bearer_token')?.trim();
      const secret = reader.raw('secret')?.trim();
      if (secret?.startsWith('whsec_') && !/^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(secret)) {
        reader.fail('secret', 'a whsec_ secret is base64 after the prefix (as Standard Webhooks tools issue them)');
      }
      const signatureScheme = reader.oneOf('signature', 'standard', ['standard', 'legacy', 'both'] as const);
      const retryMinSeconds = reader.duration('retry_min', DEFAULT_RETRY_MIN, 1);
      const retryMaxSeconds = reader.duration('retry_max', DEFAULT_RETRY_MAX, 1);
      if (retryMaxSeconds < retryMinSeconds) reader.fail('retry_max', `must be at least retry_min (${retryMinSeconds} s)`);
      return Object.freeze({
        name,
        type,
        timeoutSeconds,
        url,
        ...(bearerToken ? { bearerToken } : {}),
        ...(secret ? { secret } : {}),
        signature: signatureScheme,
        queueDir: resolve(here, queueDir),
        queueDirPlace: Object.freeze({ file, line: reader.line('queue_dir'), section: reader.name, key: 'queue_dir' }),
        queueMaxBytes: reader.size('queue_max_bytes', DEFAULT_QUEUE_MAX_BYTES, 4096),
        retryMinSeconds,
        retryMaxSeconds,
      });
    }
    case 'module': {
      const modulePath = reader.raw('module')?.trim() || reader.fail(undefined, 'needs module = <path of a .js/.mjs module whose default export has send(event)>');
      const options: Record<string, string> = {};
      for (const key of reader.keys()) if (!['type', 'module', 'timeout'].includes(key)) options[key] = reader.string(key, '');
      return Object.freeze({
        name,
        type,
        timeoutSeconds,
        modulePath: resolve(here, modulePath),
        place: Object.freeze({ file, line: reader.line('module'), section: reader.name, key: 'module' }),
        options: Object.freeze(options),
      });
    }
  }
}

export function configFromText(text: string, file: string, overrides: ConfigOverrides = {}): Config {
  const doc = parseSwiftIni(text, file);
  rejectUnknownKeys(doc);
  const warnings: string[] = [];
  const proxy = section(doc, PROXY_SECTION);
  const failProxy = (key: string) => (reason: string): never => {
    if (proxy) proxy.fail(key, reason);
    throw new ConfigError(file, undefined, PROXY_SECTION, key, reason);
  };

  let bindIp = proxy?.string('bind_ip', DEFAULT_BIND_IP).trim() ?? DEFAULT_BIND_IP;
  let bindPort = proxy?.integer('bind_port', DEFAULT_BIND_PORT, 0, 65535) ?? DEFAULT_BIND_PORT;
  if (overrides.listen !== undefined) {
    ({ host: bindIp, port: bindPort } = parseListen(overrides.listen, (reason) => {
      throw new ConfigError('--listen', undefined, undefined, undefined, reason);
    }));
  }

  const opsBind = parseOpsBind(proxy, bindIp, bindPort);

  const upstreamText = overrides.upstream ?? proxy?.raw('upstream') ??
    failProxy('upstream')('is required: the Swift proxy base URL, e.g. upstream = http://127.0.0.1:8080 (or --upstream)');
  const upstream = overrides.upstream !== undefined
    ? parseUpstream(upstreamText, (reason) => { throw new ConfigError('--upstream', undefined, undefined, undefined, reason); })
    : parseUpstream(upstreamText, failProxy('upstream'));

  const metricsPath = proxy?.string('metrics_path', DEFAULT_METRICS_PATH).trim() ?? DEFAULT_METRICS_PATH;
  if (!metricsPath.startsWith('/') || metricsPath.startsWith('/v1/') || metricsPath.startsWith('/auth') || ['/healthz', '/readyz'].includes(metricsPath)) {
    failProxy('metrics_path')(`must start with "/" and not shadow Swift's /v1/ or /auth paths or /healthz, /readyz, got "${metricsPath}"`);
  }

  const reportPath = proxy?.string('report_path', DEFAULT_REPORT_PATH).trim() ?? DEFAULT_REPORT_PATH;
  if (!reportPath.startsWith('/') || reportPath.startsWith('/v1/') || reportPath.startsWith('/auth') || ['/healthz', '/readyz', metricsPath].includes(reportPath)) {
    failProxy('report_path')(`must start with "/" and not shadow Swift's /v1/ or /auth paths, /healthz, /readyz or metrics_path, got "${reportPath}"`);
  }

  const ledger = parseLedger(proxy, overrides.ledger);
  const workers = parseWorkers(proxy, ledger);

  const tempauth = parseTempauth(section(doc, TEMPAUTH_SECTION));
  const quota = parseQuota(section(doc, QUOTA_SECTION), tempauth, section(doc, KEYSTONEAUTH_SECTION), file, warnings);
  const notifiers = Object.keys(doc.sections)
    .filter((name) => name.startsWith(NOTIFY_SECTION_PREFIX))
    .map((name) => parseNotifier(section(doc, name)!, file));

  return Object.freeze({
    file,
    bindIp,
    bindPort,
    opsBind,
    upstream,
    upstreamTimeoutSeconds: proxy?.integer('upstream_timeout', DEFAULT_UPSTREAM_TIMEOUT, 1, 86_400, 'seconds') ?? DEFAULT_UPSTREAM_TIMEOUT,
    bounds: parseClientBounds(proxy),
    metricsPath,
    reportPath,
    accessLog: proxy?.boolean('access_log', true) ?? true,
    logLevel: proxy?.oneOf('log_level', 'info', ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const) ?? 'info',
    resellerPrefix: tempauth.resellerPrefix,
    users: Object.freeze(tempauth.users),
    quota,
    notifiers: Object.freeze(notifiers),
    s3: parseS3(section(doc, S3API_SECTION)),
    domainRemap: parseDomainRemap(section(doc, DOMAIN_REMAP_SECTION)),
    cnameLookup: parseCnameLookup(section(doc, CNAME_LOOKUP_SECTION)),
    ledger,
    workers,
    trace: parseTrace(proxy),
    warnings: Object.freeze(warnings),
  });
}

const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]']);

/**
 * `ops_bind_port` turns the ops listener on, on `ops_bind_ip` (default: the client port's address, after
 * --listen, so that whoever can reach the proxy's host can scrape it; set 127.0.0.1 or a management network's
 * address to keep it closer). A port of 0 takes any free port (tests).
 */
function parseOpsBind(proxy: SectionReader | undefined, bindIp: string, bindPort: number): Config['opsBind'] {
  if (!proxy?.has('ops_bind_port')) {
    if (proxy?.has('ops_bind_ip')) proxy.fail('ops_bind_ip', 'needs ops_bind_port (the ops listener is on only with a port)');
    return undefined;
  }
  const port = proxy.integer('ops_bind_port', 0, 0, 65535);
  const host = proxy.string('ops_bind_ip', bindIp).trim();
  if (host === '') proxy.fail('ops_bind_ip', 'must be an address to listen on, such as 127.0.0.1');
  const overlaps = host === bindIp || WILDCARD_HOSTS.has(host) || WILDCARD_HOSTS.has(bindIp);
  if (port !== 0 && port === bindPort && overlaps) {
    proxy.fail('ops_bind_port', `must differ from the client port ${bindIp}:${bindPort} (both would listen on one address and port)`);
  }
  return Object.freeze({ host, port });
}

/** `workers = N | auto` (auto: one per core). */
function parseWorkers(proxy: SectionReader | undefined, ledger: LedgerConfig): number {
  if (!proxy || proxy.string('workers', '1').trim() === 'auto') return proxy ? autoWorkers(ledger) : 1;
  const workers = proxy.integer('workers', 1, 1, 1024);
  if (workers > 1 && ledger.kind === 'memory') {
    proxy.fail('workers', `${workers} workers need a shared ledger: each worker is a process with its own memory, so set ledger = redis://... (or workers = 1)`);
  }
  return workers;
}

/** One per core with a shared ledger; one without (each process would be exact only for itself). */
function autoWorkers(ledger: LedgerConfig): number {
  return ledger.kind === 'memory' ? 1 : Math.max(1, availableParallelism());
}

/** `ledger = memory | redis://... | rediss://...` and its settings in [quota-proxy]. */
function parseLedger(proxy: SectionReader | undefined, override: string | undefined): LedgerConfig {
  const text = override?.trim() ?? proxy?.string('ledger', 'memory').trim() ?? 'memory';
  const bad = (reason: string): never => {
    if (override === undefined && proxy) return proxy.fail('ledger', reason);
    throw new ConfigError('SWIFT_QUOTA_PROXY_LEDGER', undefined, undefined, undefined, reason);
  };
  if (text === 'memory') return Object.freeze({ kind: 'memory' });
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return bad(`must be "memory" or a redis://[user:password@]host:port[/db] (or rediss://) URL, got "${text}"`);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') return bad(`must be "memory" or a redis:// or rediss:// URL, got "${text}"`);
  if (!url.hostname) return bad(`needs a host, got "${text}"`);
  if (url.pathname !== '' && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname)) return bad(`the path names a database number (/0, /1, ...), got "${url.pathname}"`);
  return Object.freeze({
    kind: 'redis',
    url: text,
    leaseSeconds: proxy?.integer('ledger_lease', DEFAULT_LEDGER_LEASE, 1, 86_400, 'seconds') ?? DEFAULT_LEDGER_LEASE,
    prefix: proxy?.string('ledger_prefix', DEFAULT_LEDGER_PREFIX) ?? DEFAULT_LEDGER_PREFIX,
  });
}

/** The keys each of the proxy's own sections reads; anything else there is most likely a typo. */
const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  [PROXY_SECTION]: [
    'bind_ip', 'bind_port', 'ops_bind_ip', 'ops_bind_port', 'upstream', 'upstream_timeout', 'metrics_path', 'report_path', 'log_level', 'access_log',
    'ledger', 'ledger_lease', 'ledger_prefix', 'workers',
    'client_header_timeout', 'client_body_timeout', 'max_connections', 'max_connections_per_client', 'pending_header_bytes',
    'max_bodies_per_client', 'max_bodies_per_account', 'body_buffer_bytes', 'body_buffer_account_bytes',
    // trace.ts's TRACE_KEYS, spelled out: docs/configuration.md is checked against this list.
    'trusted_proxies', 'trans_id_suffix',
  ],
  [QUOTA_SECTION]: [
    'use', 'cache_timeout', 'precise_mode', 'quota', 'near_limit_ratio', 'fail_mode', 'retry_after', 'cache_max_entries',
    'service_user', 'reseller_probe_account', 'soft_quota', 'soft_ratio', 'grace_period', 'hit_flush_interval',
    // The Keystone identity's (config/keystone.ts KEYSTONE_KEYS), spelled out: docs/configuration.md is checked against this list.
    'service_auth', 'auth_url', 'auth_type', 'username', 'user_id', 'password', 'user_domain_name', 'user_domain_id',
    'project_name', 'project_id', 'project_domain_name', 'project_domain_id', 'application_credential_id',
    'application_credential_name', 'application_credential_secret',
  ],
};

/**
 * Stops start-up on a key of the proxy's own sections it does not read: `cache_timout = 30` would otherwise leave
 * the default in force without a word. The error names file, line and the nearest key it knows, and every other
 * unknown key after it, so one run of --check-config finds them all. Keys a Swift file puts in [DEFAULT] for
 * every section, and Swift's logging options of a filter, are Swift's own and accepted.
 */
function rejectUnknownKeys(doc: IniDocument): void {
  const inherited = new Set(Object.keys(doc.sections.DEFAULT ?? {}));
  const unknown: { section: string; key: string; line: number | undefined; reason: string }[] = [];
  for (const [name, known] of Object.entries(KNOWN_KEYS)) {
    for (const key of Object.keys(doc.sections[name] ?? {})) {
      // Swift's own logging options (log_name, often as `set log_name = ...`, log_facility, ...) belong to any filter.
      const swiftLogging = name.startsWith('filter:') && key.startsWith('log_');
      if (known.includes(key) || inherited.has(key) || swiftLogging) continue;
      const nearest = nearestKey(key, known);
      unknown.push({ section: name, key, line: doc.lineOf(name, key), reason: `not a key of this section${nearest ? ` (did you mean "${nearest}"?)` : ''}` });
    }
  }
  if (unknown.length === 0) return;
  unknown.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  const [first, ...others] = unknown as [(typeof unknown)[number], ...typeof unknown];
  const more = others.map((u) => `\n  ${doc.file}:${u.line ?? '?'}: [${u.section}] ${u.key}: ${u.reason}`).join('');
  throw new ConfigError(doc.file, first.line, first.section, first.key, `${first.reason}${more}`);
}

/** The known key closest in spelling (Levenshtein distance at most 3), if any. */
function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(key, candidate);
    if (distance <= 3 && (!best || distance < best.distance)) best = { key: candidate, distance };
  }
  return best?.key;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}

export function loadConfig(file: string, overrides: ConfigOverrides = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, undefined, undefined, undefined, `cannot read the config file: ${(error as Error).message}`);
  }
  return configFromText(text, file, overrides);
}
