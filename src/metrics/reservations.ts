/** Admitted writes not finished yet: how many hold quota, and how long the oldest has held it. */
import { Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX, type Family } from './registry.js';

export function reservationMetrics(registry: Registry) {
  // Admitted writes not finished yet, oldest first (a Map keeps insertion order).
  const reservationsOpenedAt = new Map<object, number>();
  new Gauge({
    name: `${METRIC_PREFIX}reservation_oldest_age_seconds`,
    help: 'How long the oldest admitted write not finished yet has held its quota (0 when none): one that only grows is a write that never ends or a reservation never given back.',
    registers: [registry],
    // Across workers, the oldest of all.
    aggregator: 'max',
    collect() {
      const oldest = reservationsOpenedAt.values().next();
      this.set(oldest.done ? 0 : (Date.now() - oldest.value) / 1000);
    },
  });

  return {
    members: {
      reservations: new Gauge({
        name: `${METRIC_PREFIX}reservations_in_flight`,
        help: 'Admitted writes not finished yet, each holding quota so concurrent writes cannot jointly pass a limit.',
        registers: [registry],
      }),
      /** A write's reservation was made (opened) or given back (committed or released). */
      reservationChanged(reservation: object, opened: boolean): void {
        if (opened) reservationsOpenedAt.set(reservation, Date.now());
        else reservationsOpenedAt.delete(reservation);
      },
    },
  } satisfies Family<object>;
}
