/**
 * Who is a reseller admin, asked of Swift itself. Never from a header the client controls, and with no
 * state of our own, so tokens issued before a proxy restart keep working.
 *
 * Swift's tempauth lets a `.reseller_admin` act on any account, an `.admin` only on its own, and anyone else
 * only where an ACL allows. So a HEAD, with the caller's token, of an account that no user owns and nobody
 * can grant ACLs on succeeds (204, or 404 without account autocreation) for reseller admins only.
 */
import { LRUCache } from 'lru-cache';
import { encodePath } from '../swift/path.js';
import type { SwiftClient } from '../swift/client.js';

// Long enough that a burst of level changes costs one probe, short enough that a revoked token stops working.
const VERDICT_TTL_MS = 10_000;

export class ResellerCheck {
  private readonly verdicts: LRUCache<string, boolean>;

  constructor(swift: SwiftClient, probeAccount: string) {
    const probePath = encodePath('v1', probeAccount);
    this.verdicts = new LRUCache<string, boolean>({
      max: 10_000,
      ttl: VERDICT_TTL_MS,
      // Concurrent checks of one token share one probe.
      fetchMethod: async (token) => {
        const { status } = await swift.headAs(probePath, 'account', token);
        return (status >= 200 && status < 300) || status === 404;
      },
    });
  }

  async isResellerAdmin(token: string | undefined): Promise<boolean> {
    if (!token) return false;
    return (await this.verdicts.fetch(token)) === true;
  }
}
