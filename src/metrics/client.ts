/** Client connections: the bytes on them, and what the bounds on what a client may hold refused. */
import type { Server } from 'node:http';
import { Counter, type Registry } from 'prom-client';
import { CLIENT_BOUNDS } from '../http/connection-bounds.js';
import { METRIC_PREFIX, computedMetric, type Family } from './registry.js';

export function clientMetrics(registry: Registry) {
  // Bytes on client connections, read from the sockets themselves: nothing per request, exact for chunked
  // bodies and transfers cut short, HTTP heads included. Open connections are read when scraped; a closed
  // one's final counts move to the closed totals, so the sums only grow.
  const openConnections = new Set<{ bytesRead: number; bytesWritten: number }>();
  let closedRead = 0;
  let closedWritten = 0;
  const connectionBytes = (which: 'bytesRead' | 'bytesWritten', closed: number) => {
    let total = closed;
    for (const socket of openConnections) total += socket[which];
    return [{ labels: {}, value: total }];
  };
  computedMetric(registry, `${METRIC_PREFIX}client_received_bytes_total`, 'Bytes received on client connections: request heads and bodies.', 'counter', () => connectionBytes('bytesRead', closedRead));
  computedMetric(registry, `${METRIC_PREFIX}client_sent_bytes_total`, 'Bytes sent on client connections: response heads and bodies.', 'counter', () => connectionBytes('bytesWritten', closedWritten));

  const clientRefusals = new Counter({
    name: `${METRIC_PREFIX}client_refusals_total`,
    help: 'Connections and requests refused by a bound on what clients may hold (503; 408 for a stalled body), by bound.',
    labelNames: ['bound'] as const,
    registers: [registry],
  });

  return {
    members: {
      /** Counts the bytes of every client connection the server accepts (the client port, not the ops listener). */
      countConnections(server: Server): void {
        server.on('connection', (socket: { bytesRead?: unknown; bytesWritten?: unknown; once(event: 'close', listener: () => void): void }) => {
          // A connection server.ts re-reads through a rewriter is emitted again as a stream without counts of
          // its own; its socket, counted when it connected, carries the bytes.
          if (typeof socket.bytesRead !== 'number') return;
          const counted = socket as { bytesRead: number; bytesWritten: number };
          openConnections.add(counted);
          socket.once('close', () => {
            closedRead += counted.bytesRead;
            closedWritten += counted.bytesWritten;
            openConnections.delete(counted);
          });
        });
      },
      clientRefusals,
    },
    initialise(): void {
      for (const bound of CLIENT_BOUNDS) clientRefusals.inc({ bound }, 0);
    },
  } satisfies Family<object>;
}
