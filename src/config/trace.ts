/**
 * [quota-proxy] settings for tracing requests: which peers' forwarded client addresses are believed
 * (`trusted_proxies`), and the suffix of the proxy's own transaction ids (`trans_id_suffix`, Swift's catch_errors
 * name). Defaults and reasons: docs/configuration.md.
 */
import { isIP } from 'node:net';

export const TRACE_KEYS = ['trusted_proxies', 'client_ip_header', 'trans_id_suffix'] as const;

/**
 * Which header a trusted proxy's client address is read from. One only: a balancer passes on the other as the
 * client wrote it (HAProxy's `option forwardfor` appends to X-Forwarded-For and leaves X-Cluster-Client-IP
 * alone), so believing both would let a client name any address it likes.
 */
export type ClientIpHeader = 'x-forwarded-for' | 'x-cluster-client-ip';
const CLIENT_IP_HEADERS: readonly ClientIpHeader[] = ['x-forwarded-for', 'x-cluster-client-ip'];

/**
 * Marks the ids of the answers the proxy gives itself, so that an id a client quotes says where to look: ids
 * ending so are in the proxy's log only, other ids are Swift's (and in the proxy's access line as `transId`).
 */
export const DEFAULT_TRANS_ID_SUFFIX = '-quota-proxy';

export interface TraceConfig {
  /** Addresses and networks (`10.0.0.0/8`, `::1`) whose X-Forwarded-For / X-Cluster-Client-IP are believed. */
  readonly trustedProxies: readonly string[];
  /** The header those proxies set: X-Forwarded-For (appended to, read from the right) or X-Cluster-Client-IP. */
  readonly clientIpHeader: ClientIpHeader;
  readonly transIdSuffix: string;
}

export const DEFAULT_TRACE: TraceConfig = Object.freeze({ trustedProxies: Object.freeze([]), clientIpHeader: 'x-forwarded-for', transIdSuffix: DEFAULT_TRANS_ID_SUFFIX });

/** What this module reads of a section (load.ts's SectionReader). */
export interface TraceReader {
  string(key: string, fallback: string): string;
  fail(key: string | undefined, reason: string): never;
}

/** `a.b.c.d`, `a.b.c.d/n`, an IPv6 address or network; an IPv4-mapped IPv6 network stays IPv6 (BlockList matches both). */
export function parseNetwork(text: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | undefined {
  const [address = '', prefixText, extra] = text.split('/');
  const version = isIP(address);
  if (version === 0 || extra !== undefined) return undefined;
  const max = version === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return undefined;
  return { address, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}

export function parseTrace(reader: TraceReader | undefined): TraceConfig {
  if (!reader) return DEFAULT_TRACE;
  const entries = reader.string('trusted_proxies', '').split(/[\s,]+/).filter(Boolean);
  for (const entry of entries) {
    if (!parseNetwork(entry)) reader.fail('trusted_proxies', `"${entry}" is not an IPv4 or IPv6 address or network (such as 10.0.0.0/8, 127.0.0.1, ::1, fd00::/8)`);
  }
  const header = reader.string('client_ip_header', 'X-Forwarded-For').trim().toLowerCase() as ClientIpHeader;
  if (!CLIENT_IP_HEADERS.includes(header)) reader.fail('client_ip_header', `must be X-Forwarded-For or X-Cluster-Client-IP, got "${header}"`);
  const suffix = reader.string('trans_id_suffix', DEFAULT_TRANS_ID_SUFFIX).trim();
  // Swift URL-quotes its suffix into a header value: only characters that need no quoting are taken.
  if (!/^[A-Za-z0-9._~-]{0,64}$/.test(suffix)) reader.fail('trans_id_suffix', `must be at most 64 letters, digits and "-._~", got "${suffix}"`);
  return Object.freeze({ trustedProxies: Object.freeze(entries), clientIpHeader: header, transIdSuffix: suffix });
}
