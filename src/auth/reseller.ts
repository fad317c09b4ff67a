/**
 * Who is a reseller admin, asked of Swift itself. Never from a header the client controls, and with no
 * state of our own, so tokens issued before a proxy restart keep working.
 *
 * Swift's tempauth lets a `.reseller_admin` act on any account, and keystoneauth a token with its
 * `reseller_admin_role` (ResellerAdmin by default); an account admin or operator only on its own account, and
 * anyone else only where an ACL allows. Both also have readers of every account (tempauth's `.reseller_reader`,
 * keystoneauth's `system_reader_roles`), allowed GET and HEAD only. So the question is a write that changes
 * nothing, in an account that no user owns and nobody can grant ACLs on: a POST to a container that does not
 * exist there. Both authorise it before Swift looks for the container, so a reseller admin gets 404 (the
 * account and container are not there; a container POST creates neither) and everyone else 401 or 403.
 */
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { encodePath } from '../swift/path.js';
import type { SwiftClient } from '../swift/client.js';

// Long enough that a burst of level changes costs one probe, short enough that a revoked token stops working.
const VERDICT_TTL_MS = 10_000;

export class ResellerCheck {
  private readonly verdicts: LRUCache<string, boolean>;

  constructor(swift: SwiftClient, probeAccount: string) {
    this.verdicts = new LRUCache<string, boolean>({
      max: 10_000,
      ttl: VERDICT_TTL_MS,
      // Concurrent checks of one token share one probe.
      fetchMethod: async (token) => {
        // A name nobody has written, new each time: even a container someone made there could not answer for it.
        const probePath = encodePath('v1', probeAccount, `quota-proxy-probe-${randomBytes(12).toString('hex')}`);
        const { status } = await swift.asCaller('POST', probePath, { 'x-auth-token': token }, 'auth');
        return (status >= 200 && status < 300) || status === 404;
      },
    });
  }

  async isResellerAdmin(token: string | undefined): Promise<boolean> {
    if (!token) return false;
    return (await this.verdicts.fetch(token)) === true;
  }
}
