/**
 * cname_lookup's DNS walk, done by the proxy: from a host name to the storage-domain name it is a CNAME of,
 * following at most `lookup_depth` records, with the nameservers cname_lookup is configured with.
 *
 * A DNS answer can change between the proxy's lookup and Swift's (and Swift may serve an older one from
 * memcache), so the proxy does not let Swift look again: it sends the request with the name it found as
 * Host, which cname_lookup passes untouched, and every later middleware reads the same name.
 */
import { Resolver } from 'node:dns/promises';
import { inStorageDomain, type CnameLookupConfig } from './host-addressing.js';

export type CnameOutcome =
  | { readonly found: string }
  /** cname_lookup's own 400 body for the same failure. */
  | { readonly error: string };

export class CnameResolver {
  private readonly resolver: Resolver;

  constructor(private readonly config: CnameLookupConfig) {
    this.resolver = new Resolver({ timeout: 2000, tries: 2 });
    if (config.nameservers.length > 0) this.resolver.setServers([...config.nameservers]);
  }

  async resolve(domain: string): Promise<CnameOutcome> {
    let current = domain;
    let found: string | undefined;
    for (let tries = 0; tries < this.config.lookupDepth; tries++) {
      found = await this.lookup(current);
      if (found === undefined || found === current) return { error: 'CNAME lookup failed to resolve to a valid domain' };
      if (inStorageDomain(this.config, found)) return { found };
      current = found;
    }
    return { error: found === undefined ? 'CNAME lookup failed to resolve to a valid domain' : `CNAME lookup failed after ${this.config.lookupDepth} tries` };
  }

  /** The first CNAME of a name, without its trailing dot; undefined for none or for a failed lookup. */
  private async lookup(name: string): Promise<string | undefined> {
    try {
      const [first] = await this.resolver.resolveCname(name);
      return first?.replace(/\.$/, '') || undefined;
    } catch {
      return undefined;
    }
  }

  close(): void {
    this.resolver.cancel();
  }
}
