/**
 * What the Swift behind the proxy runs, from its `GET /info`: which middleware can turn a request into a
 * write (tempurl, formpost, s3api, domain_remap, ...) and the limits it enforces. Read at start-up and
 * refreshed in the background. Until Swift has answered, every middleware that could write is assumed to be
 * there, with Swift's defaults: the proxy may then refuse what Swift would not have accepted, never the
 * other way round.
 */
import type { Dispatcher } from 'undici';

/** Swift's defaults (2.30.1), used for whatever /info does not say. */
export const SWIFT_DEFAULTS = Object.freeze({
  maxFileSize: 5_368_709_122,
  maxManifestSize: 8 * 1024 * 1024,
  maxManifestSegments: 1000,
  maxMetaCount: 90,
  extraHeaderCount: 0,
  tempurlMethods: ['GET', 'HEAD', 'PUT', 'POST', 'DELETE'],
  digests: ['sha1', 'sha256', 'sha512'],
});

/** Middleware that let a request store data in ways the proxy must read itself. */
export const WRITING_MIDDLEWARE = ['tempurl', 'formpost', 's3api', 'domain_remap', 'cname_lookup', 'container_sync', 'bulk_upload', 'slo', 'symlink', 'versioned_writes', 'object_versioning'] as const;

export interface SwiftCapabilities {
  /** Whether Swift's /info was read; if not, everything below is assumed. */
  readonly known: boolean;
  /** Whether a middleware is in Swift's pipeline (always true while unknown). */
  has(name: string): boolean;
  readonly maxFileSize: number;
  readonly maxManifestSize: number;
  readonly maxManifestSegments: number;
  /**
   * The most header lines Swift's proxy server reads in a request head (200 by default): http.client's limit,
   * which Swift's bufferedhttp sets to 1.6 times constraints.MAX_HEADER_COUNT (max_meta_count + 36 +
   * extra_header_count), counts the blank line that ends the head too.
   */
  readonly maxHeaderCount: number;
  readonly tempurlMethods: readonly string[];
  readonly tempurlDigests: readonly string[];
  readonly formpostDigests: readonly string[];
  /**
   * Swift's storage policies (`swift.policies`), lower case: each name and alias → the name container HEADs
   * report. Undefined while unknown.
   */
  readonly policies: ReadonlyMap<string, string> | undefined;
  /**
   * The default storage policy's name (lower case): where Swift puts a container made without X-Storage-Policy
   * (bulk extraction's). Undefined while unknown.
   */
  readonly defaultPolicy: string | undefined;
}

type Info = Record<string, Record<string, unknown> | undefined>;

function list(value: unknown, fallback: readonly string[]): readonly string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string') ? value : fallback;
}

function count(value: unknown, fallback: number): number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 ? value : fallback;
}

/** The policy of `swift.policies` marked `default` (lower case). */
function defaultPolicyOf(value: unknown): string | undefined {
  if (!Array.isArray(value)) return undefined;
  const marked = (value as Array<{ name?: unknown; default?: unknown }>).find((policy) => policy?.default === true && typeof policy.name === 'string');
  return marked === undefined ? undefined : (marked.name as string).toLowerCase();
}

/** `swift.policies` of /info: each policy's name and aliases (lower case) → its name (lower case). */
function policiesOf(value: unknown): ReadonlyMap<string, string> | undefined {
  if (!Array.isArray(value)) return undefined;
  const names = new Map<string, string>();
  for (const policy of value as Array<{ name?: unknown; aliases?: unknown }>) {
    if (typeof policy?.name !== 'string') continue;
    const name = policy.name.toLowerCase();
    names.set(name, name);
    if (typeof policy.aliases === 'string') for (const alias of policy.aliases.split(',')) if (alias.trim()) names.set(alias.trim().toLowerCase(), name);
  }
  return names;
}

export function capabilitiesFromInfo(info: Info | undefined): SwiftCapabilities {
  const known = info !== undefined;
  return Object.freeze({
    known,
    has: (name: string) => !known || info[name] !== undefined,
    maxFileSize: count(info?.swift?.max_file_size, SWIFT_DEFAULTS.maxFileSize),
    maxManifestSize: count(info?.slo?.max_manifest_size, SWIFT_DEFAULTS.maxManifestSize),
    maxManifestSegments: count(info?.slo?.max_manifest_segments, SWIFT_DEFAULTS.maxManifestSegments),
    maxHeaderCount: Math.floor((count(info?.swift?.max_meta_count, SWIFT_DEFAULTS.maxMetaCount) + 36 + count(info?.swift?.extra_header_count, SWIFT_DEFAULTS.extraHeaderCount)) * 1.6 - 1),
    tempurlMethods: list(info?.tempurl?.methods, SWIFT_DEFAULTS.tempurlMethods),
    tempurlDigests: list(info?.tempurl?.allowed_digests, SWIFT_DEFAULTS.digests),
    formpostDigests: list(info?.formpost?.allowed_digests, SWIFT_DEFAULTS.digests),
    policies: policiesOf(info?.swift?.policies),
    defaultPolicy: defaultPolicyOf(info?.swift?.policies),
  });
}

export const UNKNOWN_CAPABILITIES = capabilitiesFromInfo(undefined);

const REFRESH_MS = 5 * 60_000;
const RETRY_MS = 10_000;
const INFO_TIMEOUT_MS = 5_000;

/** Keeps the capabilities of the Swift at `upstream` current. */
export class CapabilitiesWatch {
  private value: SwiftCapabilities = UNKNOWN_CAPABILITIES;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly upstream: URL,
    private readonly dispatcher: Dispatcher,
    private readonly onError: (error: unknown) => void = () => {},
  ) {}

  get current(): SwiftCapabilities {
    return this.value;
  }

  /** Reads /info now; resolves once it was read or failed (never throws). */
  async refresh(): Promise<SwiftCapabilities> {
    let next = REFRESH_MS;
    try {
      const response = await this.dispatcher.request({
        origin: this.upstream.origin,
        path: '/info',
        method: 'GET',
        headers: { host: this.upstream.host, accept: 'application/json' },
        signal: AbortSignal.timeout(INFO_TIMEOUT_MS),
      });
      if (response.statusCode !== 200) {
        await response.body.dump();
        throw new Error(`Swift answered ${response.statusCode} to GET /info`);
      }
      this.value = capabilitiesFromInfo((await response.body.json()) as Info);
    } catch (error) {
      this.onError(error);
      if (!this.value.known) next = RETRY_MS;
    }
    this.schedule(next);
    return this.value;
  }

  private schedule(ms: number): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), ms);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
  }
}
