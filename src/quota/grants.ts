/**
 * Writes admitted on a grant (a container's write ACL, asked of Swift and kept for a few seconds: auth/authority.ts)
 * whose bodies their clients have not finished: either Swift has not seen them yet (it will refuse them once the
 * owner revokes the grant), or it has authorised them on their heads but cannot store them until their bodies end,
 * which a grantee can put off for as long as it sends a byte now and then. Either way they hold quota.
 * When a write is refused for want of room, the grants of such writes in the same scope are asked of Swift
 * afresh, and those Swift refuses now get that refusal at once, giving their room back. Writes other proxies hold
 * this way are checked by those proxies, every few seconds while they are held (`sweep`).
 */
import type { Credentials, SwiftAnswer, Verdict } from '../auth/authority.js';

export interface GrantedWrite {
  readonly credentials: Credentials;
  readonly account: string;
  readonly container: string;
  /** When it was admitted (ms). */
  readonly since: number;
  /**
   * Whether Swift may have all of the write: it has seen the request (and authorised it itself) and the client has
   * sent its whole body; then it stands. A write whose body is still coming can be cut: Swift stores nothing.
   */
  reachedSwift(): boolean;
  /** Ends the write with Swift's refusal; resolves once its reservation is given back. */
  refuse(answer: SwiftAnswer): Promise<void>;
}

/** Asks Swift now (not from the kept grants) whether the caller may write into the container. */
export type AskNow = (credentials: Credentials, account: string, container: string) => Promise<Verdict>;

/** The most grants one refusal asks about: a refusal costs a bounded number of questions to Swift. */
const MAX_ASKED = 16;

export class GrantedWrites {
  private readonly byScope = new Map<string, Set<GrantedWrite>>();

  constructor(private readonly askNow: AskNow) {}

  /** Tracks a write until the function returned is called (when its exchange with Swift ends). */
  add(scopeKey: string, write: GrantedWrite): () => void {
    let writes = this.byScope.get(scopeKey);
    if (!writes) this.byScope.set(scopeKey, (writes = new Set()));
    writes.add(write);
    const held = writes;
    return () => {
      held.delete(write);
      if (held.size === 0 && this.byScope.get(scopeKey) === held) this.byScope.delete(scopeKey);
    };
  }

  /**
   * Re-asks the grants of the writes held in `scopeKey` by callers other than `exceptKey` that Swift cannot have whole,
   * and refuses those Swift refuses now. Resolves true when any was refused (the scope has more room).
   */
  async revokeStale(scopeKey: string, exceptKey: string): Promise<boolean> {
    const writes = [...(this.byScope.get(scopeKey) ?? [])].filter((write) => write.credentials.key !== exceptKey && !write.reachedSwift());
    return this.recheck(writes);
  }

  /** Re-asks the grants of writes held (not whole in Swift) for longer than `heldMs`: writes other proxies cannot reach. */
  async sweep(heldMs: number, now = Date.now()): Promise<boolean> {
    const writes = [...this.byScope.values()].flatMap((set) => [...set]).filter((write) => now - write.since >= heldMs && !write.reachedSwift());
    return this.recheck(writes);
  }

  private async recheck(writes: GrantedWrite[]): Promise<boolean> {
    if (writes.length === 0) return false;
    const byGrant = new Map<string, GrantedWrite[]>();
    for (const write of writes) {
      const key = `${write.account}/${write.container}\n${write.credentials.key}`;
      byGrant.set(key, [...(byGrant.get(key) ?? []), write]);
    }
    const asked = [...byGrant.values()].slice(0, MAX_ASKED);
    const verdicts = await Promise.all(asked.map(([first]) => this.askNow(first!.credentials, first!.account, first!.container).catch(() => undefined)));
    const refusals: Array<Promise<void>> = [];
    asked.forEach((group, i) => {
      const verdict = verdicts[i];
      if (!verdict || verdict.allowed) return;
      for (const write of group) if (!write.reachedSwift()) refusals.push(write.refuse(verdict.answer));
    });
    await Promise.all(refusals);
    return refusals.length > 0;
  }

  get size(): number {
    let size = 0;
    for (const set of this.byScope.values()) size += set.size;
    return size;
  }
}
