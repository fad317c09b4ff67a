/**
 * Accounts the proxy has seen (issue 25: `accounts list` knows them where neither tempauth nor Keystone can list
 * them): once Swift has taken a write for an account, the account is recorded in the account registry
 * (account-registry.ts), once per process, in the background. The record is created only, never overwritten
 * (a level recorded earlier stays), and only writes Swift authorised and stored lead to one, so no anonymous
 * client can fill the registry.
 */
import { LRUCache } from 'lru-cache';
import type { Log } from '../log.js';
import type { SwiftClient } from '../swift/client.js';
import { registerSeen } from './account-registry.js';

/** Records in flight at once; an account seen while they are busy is recorded at its next write. */
const AT_ONCE = 4;

export class AccountsSeen {
  /** Accounts recorded (or being recorded) by this process. */
  private readonly recorded: LRUCache<string, true>;
  private inFlight = 0;
  private lastWarned = 0;

  constructor(
    private readonly swift: SwiftClient,
    private readonly log: Log,
    maxEntries: number,
  ) {
    this.recorded = new LRUCache({ max: maxEntries });
  }

  /** Swift stored a write for `account`: recorded in the registry, unless this process did so already. */
  seen(account: string): void {
    if (this.recorded.has(account) || this.inFlight >= AT_ONCE) return;
    this.recorded.set(account, true);
    this.inFlight++;
    registerSeen(this.swift, account)
      .catch((error: unknown) => {
        this.recorded.delete(account); // tried again at its next write
        const now = Date.now();
        if (now - this.lastWarned < 60_000) return;
        this.lastWarned = now;
        this.log.warn({ err: error, account }, 'an account the proxy has seen is not in the account registry yet (accounts list misses it until a later write records it)');
      })
      .finally(() => this.inFlight--);
  }
}
