/**
 * The shared ledger behind Redis Sentinel: `ledger = redis+sentinel://...` (or SWIFT_QUOTA_PROXY_LEDGER).
 *
 *   redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/<master name>[/<db>][?sentinel_password=...&sentinel_username=...]
 *
 * The hosts are the Sentinels (port 26379 unless given; IPv6 addresses in brackets); the user and password
 * before `@` are Redis's (the primary's and its replicas'), the query's are the Sentinels' own (Redis 6+ ACLs or
 * `requirepass` in sentinel.conf). `rediss+sentinel://` speaks TLS to both. One string, so that the env variable
 * carries everything, passwords included, and the file need not. Redis Cluster is refused here with its reason
 * (the ledger's atomic steps span keys of several scopes and global counters: docs/operations.md).
 */

export interface SentinelTarget {
  readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  /** The master group's name, as Sentinel knows it (`sentinel monitor <name> ...`). */
  readonly name: string;
  readonly db: number;
  readonly tls: boolean;
  readonly username?: string;
  readonly password?: string;
  readonly sentinelUsername?: string;
  readonly sentinelPassword?: string;
}

export const DEFAULT_SENTINEL_PORT = 26379;

const SENTINEL_URL = /^(rediss?)\+sentinel:\/\/(?:([^@/]*)@)?([^/?#@]+)\/([^/?#]+)(?:\/([^/?#]*))?\/?(?:\?([^#]*))?$/;
const QUERY_KEYS = new Set(['sentinel_password', 'sentinel_username']);

/** Whether `text` asks for a ledger behind Sentinel (then parseSentinelUrl reads it). */
export function isSentinelUrl(text: string): boolean {
  return /^rediss?\+sentinel:/i.test(text);
}

/** Whether `text` asks for Redis Cluster, which the ledger does not support (the reason is in clusterRefusal). */
export function isClusterUrl(text: string): boolean {
  return /^rediss?\+cluster:/i.test(text);
}

export const CLUSTER_REFUSAL =
  'Redis Cluster is not supported: each atomic step of the ledger reads and writes keys of several scopes and the ' +
  'global sequence and generation keys, which Cluster would put in different slots. Use Redis Sentinel ' +
  '(redis+sentinel://host:26379,host2:26379/<master name>) for a ledger that survives the loss of its primary';

/** Reads a `redis+sentinel://` URL; `bad` is called with the reason when it is not one. */
export function parseSentinelUrl(text: string, bad: (reason: string) => never): SentinelTarget {
  const shape = 'redis+sentinel://[[user]:password@]host:26379[,host2:26379...]/<master name>[/<db>][?sentinel_password=...]';
  const match = SENTINEL_URL.exec(text);
  if (!match) return bad(`must be ${shape}, got "${redact(text)}"`);
  const [, scheme, userinfo, hostList, rawName, rawDb, query] = match;
  const sentinels = hostList!.split(',').map((host) => parseHostPort(host.trim(), bad));
  const name = decode(rawName!, 'the master name', bad);
  if (rawDb !== undefined && rawDb !== '' && !/^\d+$/.test(rawDb)) return bad(`the path after the master name is a database number (/0, /1, ...), got "/${rawDb}"`);
  const target: { -readonly [K in keyof SentinelTarget]: SentinelTarget[K] } = {
    sentinels,
    name,
    db: rawDb ? Number(rawDb) : 0,
    tls: scheme === 'rediss',
  };
  if (userinfo !== undefined) {
    const colon = userinfo.indexOf(':');
    const user = decode(colon === -1 ? userinfo : userinfo.slice(0, colon), 'the user', bad);
    if (colon === -1) return bad('the part before "@" is user:password (or :password): no password given');
    if (user !== '') target.username = user;
    target.password = decode(userinfo.slice(colon + 1), 'the password', bad);
  }
  for (const pair of (query ?? '').split('&').filter(Boolean)) {
    // Split at the first "=" only: a password may hold more (base64 padding).
    const equals = pair.indexOf('=');
    const key = equals === -1 ? pair : pair.slice(0, equals);
    const value = equals === -1 ? '' : pair.slice(equals + 1);
    if (!QUERY_KEYS.has(key)) return bad(`unknown parameter "${key}" (known: ${[...QUERY_KEYS].join(', ')})`);
    if (key === 'sentinel_password') target.sentinelPassword = decode(value, key, bad);
    else target.sentinelUsername = decode(value, key, bad);
  }
  return Object.freeze({ ...target, sentinels: Object.freeze(sentinels) });
}

function parseHostPort(text: string, bad: (reason: string) => never): { host: string; port: number } {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+))(?::(\d+))?$/.exec(text);
  if (!match) return bad(`each Sentinel is host[:port] (IPv6 in brackets: [::1]:26379), got "${text}"`);
  const port = match[3] === undefined ? DEFAULT_SENTINEL_PORT : Number(match[3]);
  if (port < 1 || port > 65535) return bad(`a Sentinel's port must be 1-65535, got ${port} in "${text}"`);
  return { host: match[1] ?? match[2]!, port };
}

function decode(text: string, what: string, bad: (reason: string) => never): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return bad(`${what} is not valid percent-encoding`);
  }
}

/** The URL with its passwords replaced, for an error message that may be logged. */
export function redact(text: string): string {
  return text.replace(/\/\/([^@/]*:)[^@/]*@/, '//$1***@').replace(/(sentinel_password=)[^&#]*/g, '$1***');
}
