/**
 * Turns the sections of a `proxy-server.conf`-style file into a typed, frozen `Config`.
 * Pure apart from reading the file; every problem stops start-up with file, line and key.
 * Each area's keys are parsed in a module of its own (server.ts, ledger.ts, quota.ts, identity.ts, notifiers.ts,
 * swift-filters.ts); this module puts them together and keeps the list of keys each section may hold.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors.js';
import { parseSwiftIni, type IniDocument } from './ini.js';
import { parseLogLevel } from './log-level.js';
import { checkNotSwiftsPort, inheritsSwiftDefault } from './swift-file.js';
import { KEYSTONEAUTH_SECTION } from './keystone.js';
import { section, type SectionReader } from './section-reader.js';
import { rejectUnknownKeys } from './unknown-keys.js';
import { DEFAULT_BIND_IP, DEFAULT_BIND_PORT, DEFAULT_METRICS_PATH, DEFAULT_REPORT_PATH, DEFAULT_UPSTREAM_TIMEOUT, parseClientBounds, parseListen, parseOpsBind, parseUpstream, parseWorkers, type ClientBounds, type OpsBind } from './server.js';
import { parseLedger, type LedgerConfig } from './ledger.js';
import { parseTempauth, TEMPAUTH_SECTION, type TempauthUser } from './identity.js';
import { parseQuota, QUOTA_SECTION, type QuotaConfig } from './quota.js';
import { NOTIFY_SECTION_PREFIX, parseNotifiers, type NotifierConfig } from './notifiers.js';
import { CNAME_LOOKUP_SECTION, DOMAIN_REMAP_SECTION, parseCnameLookup, parseDomainRemap, parseS3, parseS3Token, S3API_SECTION, S3TOKEN_SECTION, type S3TokenConfig } from './swift-filters.js';
import type { S3Config } from '../s3/request.js';
import type { CnameLookupConfig, DomainRemapConfig } from '../swift/host-addressing.js';

export * from './server.js';
export * from './ledger.js';
export * from './identity.js';
export * from './quota.js';
export * from './notifiers.js';
export * from './swift-filters.js';
import { parseRestart, type RestartConfig } from './restart.js';
import { parseTrace, type TraceConfig } from './trace.js';

export const PROXY_SECTION = 'quota-proxy';

export interface Config {
  readonly file: string;
  readonly bindIp: string;
  readonly bindPort: number;
  /**
   * `ops_bind_ip`/`ops_bind_port`: a listener of its own for /metrics, /healthz and /readyz. /metrics and /readyz
   * then leave the client port (there they are paths like any other, forwarded to Swift); /healthz stays on it too.
   * Undefined: all three are on the client port.
   */
  readonly opsBind: OpsBind;
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
  /**
   * Swift's `[filter:s3token]`, when Swift checks EC2 credentials with Keystone: S3 requests signed with them are
   * checked with the same Keystone (auth/ec2.ts) and counted in their project's account.
   */
  readonly s3token: S3TokenConfig | undefined;
  /** Swift's `[filter:domain_remap]`, when Swift runs it: host names that address accounts and containers. */
  readonly domainRemap: DomainRemapConfig | undefined;
  /** Swift's `[filter:cname_lookup]`, when Swift runs it: host names that are CNAMEs of storage-domain names. */
  readonly cnameLookup: CnameLookupConfig | undefined;
  /** Where usage, reservations and finished writes are kept: this process, or a Redis shared by proxies. */
  readonly ledger: LedgerConfig;
  /** Worker processes sharing the port (Swift's own name for it); more than one needs a Redis ledger. */
  readonly workers: number;
  /** How the proxy stops and restarts: drain_delay, drain_timeout, reuse_port (config/restart.ts). */
  readonly restart: RestartConfig;
  /** Trusted proxies for client addresses, and the suffix of the proxy's own transaction ids (trace.ts). */
  readonly trace: TraceConfig;
  /** Things that load but deserve the operator's attention (logged at start-up). */
  readonly warnings: readonly string[];
}

export interface ConfigOverrides {
  listen?: string; // HOST:PORT
  upstream?: string;
  /** `memory` or a Redis URL, in place of the file's `ledger` (the URL carries the password: kept out of files). */
  ledger?: string;
}

/** The reseller prefix of the service identity's auth system: keystoneauth's or tempauth's. */
export function serviceResellerPrefix(config: Config): string {
  return config.quota.service.kind === 'keystone' ? config.quota.service.keystone.resellerPrefix : config.resellerPrefix;
}

export function configFromText(text: string, file: string, overrides: ConfigOverrides = {}): Config {
  // [DEFAULT] is Swift's proxy-server's: the proxy's own sections do not inherit it (config/swift-file.ts).
  const doc = parseSwiftIni(text, file, { inheritsDefault: inheritsSwiftDefault(PROXY_SECTION, NOTIFY_SECTION_PREFIX) });
  rejectUnknownKeys(doc, KNOWN_KEYS);
  const warnings = shadowedByDefaultWarnings(doc, file);
  const proxy = section(doc, PROXY_SECTION);
  const { bindIp, bindPort, opsBind, upstream } = parseAddresses(proxy, file, overrides);
  const { metricsPath, reportPath } = parsePaths(proxy, file);
  checkNotSwiftsPort(doc, proxy, { host: bindIp, port: bindPort, fromCommandLine: overrides.listen !== undefined }, upstream, warnings);

  const ledger = parseLedger(proxy, overrides.ledger);
  const workers = parseWorkers(proxy, ledger, warnings);

  const tempauth = parseTempauth(section(doc, TEMPAUTH_SECTION));
  const quota = parseQuota(section(doc, QUOTA_SECTION), tempauth, section(doc, KEYSTONEAUTH_SECTION), file, warnings);
  const notifiers = parseNotifiers(doc, file);

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
    logLevel: parseLogLevel(proxy),
    resellerPrefix: tempauth.resellerPrefix,
    users: Object.freeze(tempauth.users),
    quota,
    notifiers: Object.freeze(notifiers),
    s3: parseS3(section(doc, S3API_SECTION)),
    s3token: parseS3TokenFor(inSwiftsPipeline(doc, 's3token') ? section(doc, S3TOKEN_SECTION) : undefined, quota),
    domainRemap: parseDomainRemap(section(doc, DOMAIN_REMAP_SECTION)),
    cnameLookup: parseCnameLookup(section(doc, CNAME_LOOKUP_SECTION)),
    ledger,
    workers,
    restart: parseRestart(proxy),
    trace: parseTrace(proxy),
    warnings: Object.freeze(warnings),
  });
}

/**
 * Whether a filter of Swift's is in use where the file is Swift's own proxy-server.conf (its `[pipeline:main]`
 * names it), as Swift uses a filter section only then; a file without a pipeline is the proxy's own, whose
 * sections are all meant.
 */
function inSwiftsPipeline(doc: IniDocument, filter: string): boolean {
  const pipeline = section(doc, 'pipeline:main')?.raw('pipeline');
  return pipeline === undefined || pipeline.split(/\s+/).includes(filter);
}

/** `[filter:s3token]`: Keystone answers s3tokens (and gives credentials' secrets) only to a Keystone identity. */
function parseS3TokenFor(reader: SectionReader | undefined, quota: QuotaConfig): S3TokenConfig | undefined {
  const s3token = parseS3Token(reader);
  if (s3token && quota.service.kind !== 'keystone') {
    reader!.fail(undefined, 'needs the proxy\'s Keystone service identity (service_auth = keystone in [filter:quota]): Keystone checks EC2 credentials only for a Keystone user');
  }
  return s3token;
}

/** A warning for each key of the proxy's sections that [DEFAULT] sets too (paste.deploy gives Swift [DEFAULT]'s). */
function shadowedByDefaultWarnings(doc: IniDocument, file: string): string[] {
  const warnings: string[] = [];
  for (const shadowed of doc.shadowedByDefault) {
    if (!(shadowed.section in KNOWN_KEYS)) continue;
    warnings.push(
      `${file}:${shadowed.line}: [${shadowed.section}] ${shadowed.key}: [DEFAULT] sets it too (line ${shadowed.defaultLine}), and paste.deploy ` +
        `gives Swift [DEFAULT]'s value, so the proxy reads that one too; write "set ${shadowed.key} = ..." for this section's own`,
    );
  }
  return warnings;
}

/** A failure of a [quota-proxy] key, also when the file has no [quota-proxy] section. */
function proxyKeyFailure(proxy: SectionReader | undefined, file: string, key: string): (reason: string) => never {
  return (reason) => {
    if (proxy) proxy.fail(key, reason);
    throw new ConfigError(file, undefined, PROXY_SECTION, key, reason);
  };
}

/** Where the proxy listens (bind_ip/bind_port or --listen; the ops listener) and the Swift it forwards to. */
function parseAddresses(proxy: SectionReader | undefined, file: string, overrides: ConfigOverrides): { bindIp: string; bindPort: number; opsBind: OpsBind; upstream: URL } {
  let bindIp = proxy?.string('bind_ip', DEFAULT_BIND_IP).trim() ?? DEFAULT_BIND_IP;
  let bindPort = proxy?.integer('bind_port', DEFAULT_BIND_PORT, 0, 65535) ?? DEFAULT_BIND_PORT;
  if (overrides.listen !== undefined) {
    ({ host: bindIp, port: bindPort } = parseListen(overrides.listen, (reason) => {
      throw new ConfigError('--listen', undefined, undefined, undefined, reason);
    }));
  }

  const opsBind = parseOpsBind(proxy, bindIp, bindPort);

  const upstreamText = overrides.upstream ?? proxy?.raw('upstream') ??
    proxyKeyFailure(proxy, file, 'upstream')('is required: the Swift proxy base URL, e.g. upstream = http://127.0.0.1:8080 (or --upstream)');
  const upstream = overrides.upstream !== undefined
    ? parseUpstream(upstreamText, (reason) => { throw new ConfigError('--upstream', undefined, undefined, undefined, reason); })
    : parseUpstream(upstreamText, proxyKeyFailure(proxy, file, 'upstream'));
  return { bindIp, bindPort, opsBind, upstream };
}

/** metrics_path and report_path: paths the proxy answers itself, so none may shadow Swift's or each other. */
function parsePaths(proxy: SectionReader | undefined, file: string): { metricsPath: string; reportPath: string } {
  const metricsPath = proxy?.string('metrics_path', DEFAULT_METRICS_PATH).trim() ?? DEFAULT_METRICS_PATH;
  if (!metricsPath.startsWith('/') || metricsPath.startsWith('/v1/') || metricsPath.startsWith('/auth') || ['/healthz', '/readyz'].includes(metricsPath)) {
    proxyKeyFailure(proxy, file, 'metrics_path')(`must start with "/" and not shadow Swift's /v1/ or /auth paths or /healthz, /readyz, got "${metricsPath}"`);
  }

  const reportPath = proxy?.string('report_path', DEFAULT_REPORT_PATH).trim() ?? DEFAULT_REPORT_PATH;
  if (!reportPath.startsWith('/') || reportPath.startsWith('/v1/') || reportPath.startsWith('/auth') || ['/healthz', '/readyz', metricsPath].includes(reportPath)) {
    proxyKeyFailure(proxy, file, 'report_path')(`must start with "/" and not shadow Swift's /v1/ or /auth paths, /healthz, /readyz or metrics_path, got "${reportPath}"`);
  }
  return { metricsPath, reportPath };
}

/** The keys each of the proxy's own sections reads; anything else there is most likely a typo. */
const KNOWN_KEYS: Readonly<Record<string, readonly string[]>> = {
  [PROXY_SECTION]: [
    'bind_ip', 'bind_port', 'ops_bind_ip', 'ops_bind_port', 'upstream', 'upstream_timeout', 'metrics_path', 'report_path', 'log_level', 'access_log',
    'ledger', 'ledger_lease', 'ledger_prefix', 'workers',
    'client_header_timeout', 'client_body_timeout', 'max_connections', 'max_connections_per_client', 'pending_header_bytes',
    'max_bodies_per_client', 'max_bodies_per_account', 'body_buffer_bytes', 'body_buffer_account_bytes',
    'drain_delay', 'drain_timeout', 'reuse_port',
    // trace.ts's TRACE_KEYS, spelled out: docs/configuration.md is checked against this list.
    'trusted_proxies', 'client_ip_header', 'trans_id_suffix',
  ],
  [QUOTA_SECTION]: [
    'use', 'cache_timeout', 'precise_mode', 'quota', 'near_limit_ratio', 'fail_mode', 'retry_after', 'cache_max_entries',
    'service_user', 'reseller_probe_account', 'soft_quota', 'soft_ratio', 'grace_period', 'hit_flush_interval', 'retired_levels', 'allow_dropped_levels', 'census_interval', 'record_accounts',
    // The Keystone identity's (config/keystone.ts KEYSTONE_KEYS), spelled out: docs/configuration.md is checked against this list.
    'service_auth', 'auth_url', 'auth_type', 'username', 'user_id', 'password', 'user_domain_name', 'user_domain_id',
    'project_name', 'project_id', 'project_domain_name', 'project_domain_id', 'application_credential_id',
    'application_credential_name', 'application_credential_secret',
  ],
};

export function loadConfig(file: string, overrides: ConfigOverrides = {}): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ConfigError(file, undefined, undefined, undefined, `cannot read the config file: ${(error as Error).message}`);
  }
  return configFromText(text, file, overrides);
}
