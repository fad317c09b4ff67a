/**
 * Host-based addressing, read as Swift's `cname_lookup` and `domain_remap` middleware read it: a request to
 * `https://<container>.<account>.<storage_domain>/<object>` stores `/v1/<account>/<container>/<object>`,
 * whatever path the client sent (`/v1/AUTH_x/c/o` included), and a host name that is a CNAME of such a name
 * is that name. Pure; the DNS lookups are the caller's (cname-resolver.ts).
 *
 * Both are assumed to run where Swift documents them: cname_lookup first, then domain_remap, both before
 * tempurl, formpost, s3api and the auth middleware, so those read the remapped path.
 */
import { isIP } from 'node:net';

/** `[filter:domain_remap]`, as domain_remap reads it. */
export interface DomainRemapConfig {
  /** Each with its leading ".". */
  readonly storageDomains: readonly string[];
  /** With its trailing "/", as domain_remap keeps it ("v1/"). */
  readonly pathRoot: string;
  readonly resellerPrefixes: readonly string[];
  readonly defaultResellerPrefix: string | undefined;
  readonly mangleClientPaths: boolean;
}

/** `[filter:cname_lookup]`, as cname_lookup reads it. */
export interface CnameLookupConfig {
  /** Each with its leading ".". */
  readonly storageDomains: readonly string[];
  readonly lookupDepth: number;
  /** `ip[:port]` or `[ipv6][:port]`, as Node's resolver takes them; empty: the system's. */
  readonly nameservers: readonly string[];
}

/** swift.common.utils.list_from_csv. */
export function listFromCsv(value: string | undefined): string[] {
  return (value ?? '').split(',').map((item) => item.trim()).filter((item) => item !== '');
}

/** Both middleware keep the configured domains with a leading "." (those given without one first). */
export function storageDomainList(value: string | undefined): string[] {
  const domains = listFromCsv(value ?? 'example.com');
  return [...domains.filter((d) => !d.startsWith('.')).map((d) => `.${d}`), ...domains.filter((d) => d.startsWith('.'))];
}

/** The host without its port, and the port (`rsplit(':', 1)`, as both middleware split it). */
export function splitHostPort(host: string): { domain: string; port: string } {
  const colon = host.lastIndexOf(':');
  return colon < 0 ? { domain: host, port: '' } : { domain: host.slice(0, colon), port: host.slice(colon + 1) };
}

/** What domain_remap makes of a request. */
export type Remapped =
  /** Not a storage-domain host (or an account prefix domain_remap leaves alone): the path is Swift's as sent. */
  | { readonly kind: 'unchanged' }
  /** More than two labels in front of the storage domain: domain_remap answers 400 itself. */
  | { readonly kind: 'bad-domain' }
  /** PATH_INFO after domain_remap, as bytes. */
  | { readonly kind: 'remapped'; readonly pathInfo: Buffer };

/**
 * domain_remap on one request: `host` is HTTP_HOST (or SERVER_NAME without one), `pathInfo` the request's
 * PATH_INFO (the path percent-decoded, as bytes).
 */
export function remapDomain(config: DomainRemapConfig, host: string, pathInfo: Buffer): Remapped {
  const { domain: givenDomain } = splitHostPort(host);
  const storageDomain = config.storageDomains.find((domain) => givenDomain.endsWith(domain));
  if (storageDomain === undefined) return { kind: 'unchanged' };
  const labels = stripDots(givenDomain.slice(0, givenDomain.length - storageDomain.length)).split('.');
  if (labels.length > 2) return { kind: 'bad-domain' };
  let [container, account] = labels.length === 2 ? [labels[0]!, labels[1]!] : [undefined, labels[0]!];
  if (config.resellerPrefixes.length > 0) {
    if (!account.includes('_') && account.includes('-')) account = account.replace('-', '_');
    const found = account.split('_', 1)[0]!.toLowerCase();
    const index = config.resellerPrefixes.findIndex((prefix) => prefix.toLowerCase() === found);
    if (index >= 0) {
      const prefix = config.resellerPrefixes[index]!;
      if (!account.startsWith(prefix)) account = prefix + account.slice(prefix.length);
    } else if (config.defaultResellerPrefix) {
      account = `${config.defaultResellerPrefix}_${account}`;
    } else {
      return { kind: 'unchanged' };
    }
  }
  let path = pathInfo.subarray(1);
  const root = Buffer.from(config.pathRoot, 'latin1');
  if (config.mangleClientPaths && Buffer.concat([path, Buffer.from('/')]).subarray(0, root.length).equals(root)) path = path.subarray(root.length);
  const parts = ['', config.pathRoot.slice(0, -1), account, ...(container !== undefined ? [container] : [])].map((part) => Buffer.from(part, 'latin1'));
  const slash = Buffer.from('/');
  return { kind: 'remapped', pathInfo: Buffer.concat([...parts.flatMap((part) => [part, slash]), path]) };
}

/** Python's `str.strip('.')`. */
function stripDots(value: string): string {
  return value.replace(/^\.+|\.+$/g, '');
}

/** Whether a host name is one cname_lookup resolves (not an IP, not under a storage domain). */
export function needsCnameLookup(config: CnameLookupConfig, domain: string): boolean {
  return isIP(domain) === 0 && !inStorageDomain(config, domain);
}

export function inStorageDomain(config: CnameLookupConfig, domain: string): boolean {
  return config.storageDomains.some((storage) => `.${domain}`.endsWith(storage));
}

/** A Location (or Content-Location) Swift built from the host the proxy pinned, back on the client's host. */
export function restoreLocation(value: string, pinnedHost: string, requestedHost: string): string {
  const prefix = /^(https?:\/\/)/.exec(value)?.[1];
  if (!prefix) return value;
  const rest = value.slice(prefix.length);
  if (rest === pinnedHost) return `${prefix}${requestedHost}`;
  return rest.startsWith(`${pinnedHost}/`) ? `${prefix}${requestedHost}${rest.slice(pinnedHost.length)}` : value;
}
