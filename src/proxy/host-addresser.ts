/**
 * Reads where a request stores before anything else looks at it: its target as Swift's proxy server reads
 * it, or, where Swift runs cname_lookup and domain_remap, the account and container its Host names
 * (swift/host-addressing.ts). The result is the request's SwiftView, which every check and the forwarding use.
 */
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import type { SwiftCapabilities } from '../swift/capabilities.js';
import { CnameResolver } from '../swift/cname-resolver.js';
import { needsCnameLookup, remapDomain, splitHostPort, type CnameLookupConfig, type DomainRemapConfig } from '../swift/host-addressing.js';
import { parsePathInfo, parseSwiftPath } from '../swift/path.js';
import { SwiftHeaders, unquoteBytes } from '../swift/request.js';
import { createSwiftView, type HostAddressing } from './swift-view.js';

export interface HostAddresserOptions {
  readonly domainRemap: DomainRemapConfig | undefined;
  readonly cnameLookup: CnameLookupConfig | undefined;
  readonly capabilities: () => SwiftCapabilities;
  /** The Host Swift gets when the client sent none (forwardedRequestHeaders). */
  readonly upstreamHost: string;
}

export class HostAddresser {
  private readonly cname: CnameResolver | undefined;

  constructor(private readonly options: HostAddresserOptions) {
    this.cname = options.cnameLookup ? new CnameResolver(options.cnameLookup) : undefined;
  }

  /**
   * Builds the request's view. Returns the body of the 400 Swift's cname_lookup would answer (the proxy
   * answers it: the name Swift would look up is not one the proxy could pin), else undefined; a promise only
   * when the Host needs a DNS lookup first.
   */
  address(request: IncomingMessage): string | undefined | Promise<string | undefined> {
    const capabilities = this.options.capabilities();
    if (capabilities.has('cname_lookup') && this.options.cnameLookup) {
      const host = SwiftHeaders.fromRaw(request.rawHeaders).get('host') ?? this.options.upstreamHost;
      const { domain, port } = splitHostPort(host);
      if (needsCnameLookup(this.options.cnameLookup, domain)) {
        return this.cname!.resolve(domain).then((outcome) => {
          if ('error' in outcome) {
            this.view(request, outcome.error, undefined);
            return outcome.error;
          }
          this.view(request, undefined, port ? `${outcome.found}:${port}` : outcome.found);
          return undefined;
        });
      }
    }
    this.view(request, undefined, undefined);
    return undefined;
  }

  private view(request: IncomingMessage, failure: string | undefined, pinnedHost: string | undefined): void {
    const capabilities = this.options.capabilities();
    const remapping = capabilities.has('domain_remap');
    const looking = capabilities.has('cname_lookup');
    createSwiftView(request, (target, headers) => {
      if (failure !== undefined) return { path: undefined };
      const plain = { path: parseSwiftPath(target) };
      const requestedHost = headers.get('host') ?? this.options.upstreamHost;
      const host = pinnedHost ?? requestedHost;
      const named = isIP(splitHostPort(host).domain) === 0;
      // Without the middleware's settings, a host name may address any account: what it stores is unknown.
      if (looking && !this.options.cnameLookup && named) return { ...plain, hostAddressing: { kind: 'unknown', middleware: 'cname_lookup' } };
      if (remapping && !this.options.domainRemap && named) return { ...plain, hostAddressing: { kind: 'unknown', middleware: 'domain_remap' } };
      const pinned =
        pinnedHost === undefined ? {} : { upstreamHost: pinnedHost, hostAddressing: { kind: 'host', remapped: false, requestedHost, pinnedHost } as HostAddressing };
      if (!remapping || !this.options.domainRemap) return { ...plain, ...pinned };
      const queryAt = target.indexOf('?');
      const remapped = remapDomain(this.options.domainRemap, host, unquoteBytes(queryAt < 0 ? target : target.slice(0, queryAt)));
      if (remapped.kind === 'unchanged') return { ...plain, ...pinned };
      // domain_remap answers 400 to a host with too many labels: nothing is stored.
      if (remapped.kind === 'bad-domain') return { path: undefined, ...pinned };
      const hostAddressing: HostAddressing = { kind: 'host', remapped: true, requestedHost, ...(pinnedHost === undefined ? {} : { pinnedHost }) };
      return { path: parsePathInfo(remapped.pathInfo, queryAt < 0 ? undefined : target.slice(queryAt + 1)), ...pinned, hostAddressing };
    });
  }

  close(): void {
    this.cname?.close();
  }
}
