/** The ledger the config asks for, reading usage from Swift and reporting to the metrics. */
import type { Log } from '../../log.js';
import type { Config } from '../../config/load.js';
import type { Metrics } from '../../metrics.js';
import type { SwiftClient } from '../../swift/client.js';
import { readAccountTotal, readUsage } from '../../swift/usage.js';
import type { Reservation, UsageLedger } from './ledger.js';
import { MemoryLedger } from './memory.js';
import { RedisLedger } from './redis.js';
import type { ReadSource } from './snapshot-reader.js';
import type { SharedWatchState } from '../shared-watch.js';
import { ObjectPins, type PinBoard } from '../pins.js';
import { SharedPins } from '../shared-pins.js';

export interface CreatedLedger {
  readonly ledger: UsageLedger;
  /** Whether the ledger can be used now (for /readyz); always for the memory ledger. */
  readonly ready: () => Promise<boolean>;
  /** The quota watch's state shared with the other proxies, when the ledger is shared. */
  readonly watchState?: SharedWatchState;
  /** The gate's pins: of this process with the memory ledger, of every process sharing the Redis ledger with it. */
  readonly pins: PinBoard;
}

export async function createLedger(config: Config, swift: SwiftClient, metrics: Metrics, log: Log): Promise<CreatedLedger> {
  const common = {
    ttlMs: config.quota.cacheTimeoutSeconds * 1000,
    maxEntries: config.quota.cacheMaxEntries,
    read: (key: string) => {
      if (key.startsWith('t/')) return readAccountTotal(swift, key.slice(2));
      if (key.startsWith('p/')) {
        const [account, policy] = splitKey(key);
        return readAccountTotal(swift, account, policy);
      }
      const [account, container] = splitKey(key);
      return readUsage(swift, account, container);
    },
    onRead: (key: string, source: ReadSource) =>
      metrics.cacheRequests.inc({ kind: key.startsWith('c/') ? 'container' : 'account', result: source === 'hit' ? 'hit' : 'miss' }),
    onReservationsChanged: (open: number, reservation: Reservation, opened: boolean) => {
      metrics.reservations.set(open);
      metrics.reservationChanged(reservation, opened);
    },
  };
  if (config.ledger.kind === 'memory') return { ledger: new MemoryLedger(common), ready: async () => true, pins: new ObjectPins(config.upstreamTimeoutSeconds * 1000) };

  const { url, prefix, leaseSeconds, sentinel } = config.ledger;
  // A pin is held by a request on its way to Swift: one held longer than Swift may take to answer is taken for
  // a cycle of waits across processes (shared-pins.ts).
  const pinWaitMs = config.upstreamTimeoutSeconds * 1000;
  let lastLogged = 0;
  const ledger = new RedisLedger({
    ...common,
    url,
    ...(sentinel ? { sentinel } : {}),
    prefix,
    leaseSeconds,
    pinWaitMs,
    onError: (error, what) => {
      // A Redis that is away says so on every command: once every ten seconds is enough.
      const now = Date.now();
      if (what === 'generation' || now - lastLogged > 10_000) {
        lastLogged = now;
        log.warn({ err: error }, `usage ledger (Redis): ${what}`);
      }
    },
  });
  try {
    await ledger.connect();
  } catch (error) {
    log.warn({ err: error }, 'usage ledger (Redis) unreachable at start-up: writes that need a check get fail_mode until it answers');
  }
  metrics.setLedgerProbe(() => ledger.ready());
  return { ledger, ready: () => ledger.ready(), watchState: ledger.watchState(), pins: new SharedPins(new ObjectPins(pinWaitMs), ledger.pinStore(), pinWaitMs) };
}

/** `a/<account>`, `c/<account>/<container>` or `p/<account>/<policy>` back into its parts. */
function splitKey(key: string): [string, string | undefined] {
  const rest = key.slice(2);
  if (key.startsWith('a/')) return [rest, undefined];
  const slash = rest.indexOf('/');
  return [rest.slice(0, slash), rest.slice(slash + 1)];
}
