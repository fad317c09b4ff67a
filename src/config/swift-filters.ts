/**
 * Swift's own filter sections the proxy reads to address requests as Swift does: s3api, domain_remap, cname_lookup,
 * and s3token (which Keystone checks an S3 request's EC2 credential).
 */
import { isIP } from 'node:net';
import { DEFAULT_S3_CONFIG, type S3Config } from '../s3/request.js';
import { listFromCsv, storageDomainList, type CnameLookupConfig, type DomainRemapConfig } from '../swift/host-addressing.js';
import type { SectionReader } from './section-reader.js';

export const S3API_SECTION = 'filter:s3api';
export const DOMAIN_REMAP_SECTION = 'filter:domain_remap';
export const CNAME_LOOKUP_SECTION = 'filter:cname_lookup';
export const S3TOKEN_SECTION = 'filter:s3token';

/** Swift's `[filter:s3token]`: where Keystone checks EC2 credentials, and the accounts they map to. */
export interface S3TokenConfig {
  /** `auth_uri`, without a trailing "/": Keystone's v3 API (`<auth_uri>/s3tokens`, `/ec2tokens`, `/users/...`). */
  readonly authUri: string;
  /** `reseller_prefix` with its "_" (s3token's append_underscore): the account is this plus the project id. */
  readonly resellerPrefix: string;
  readonly timeoutMs: number;
  /**
   * `secret_cache_duration`: read as s3token reads it (a value Swift refuses stops start-up), and Swift's alone:
   * the proxy keeps no secret to check signatures with (auth/ec2.ts says why).
   */
  readonly secretCacheSeconds: number;
}

/** `[filter:s3token]`, as s3token reads it (Swift's own section can be copied as it is; its service auth keys are Swift's). */
export function parseS3Token(reader: SectionReader | undefined): S3TokenConfig | undefined {
  if (!reader) return undefined;
  const authUri = (reader.raw('auth_uri') ?? '').replace(/\/+$/, '');
  const url = URL.canParse(`${authUri}/s3tokens`) ? new URL(`${authUri}/s3tokens`) : undefined;
  if (!url || !url.hostname) return reader.fail('auth_uri', 'Invalid auth_uri; must include scheme and host');
  if (url.protocol !== 'http:' && url.protocol !== 'https:') reader.fail('auth_uri', 'Invalid auth_uri; scheme must be http or https');
  if (url.search || url.hash || url.username || url.password) reader.fail('auth_uri', 'Invalid auth_uri; must not include username, query, or fragment');
  const prefix = reader.string('reseller_prefix', 'AUTH');
  const timeout = reader.number('http_timeout', 10, 0, 60);
  if (timeout <= 0) reader.fail('http_timeout', 'http_timeout must be between 0 and 60 seconds');
  return Object.freeze({
    authUri,
    resellerPrefix: prefix === '' || prefix.endsWith('_') ? prefix : `${prefix}_`,
    timeoutMs: timeout * 1000,
    secretCacheSeconds: reader.integer('secret_cache_duration', 0, 0, 86_400 * 365, 'seconds'),
  });
}

/** `[filter:s3api]`, as s3api reads it (a Swift proxy-server.conf's own section can be used as it is). */
export function parseS3(reader: SectionReader | undefined): S3Config | undefined {
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
export function parseDomainRemap(reader: SectionReader | undefined): DomainRemapConfig | undefined {
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
export function parseCnameLookup(reader: SectionReader | undefined): CnameLookupConfig | undefined {
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
