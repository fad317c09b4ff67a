/**
 * A TCP link between the proxy and Swift that can hold one request on its way: everything passes as it comes,
 * except that the body of the next request whose head contains a given text stops one byte short of its end
 * until the test lets it go (or cuts the connection). Swift then has not got the whole write, so it can neither
 * store nor answer it, while the proxy has read all of it from its client: the moment an exchange is past the
 * client and not yet done by Swift, held open for as long as a test needs. (A slow network does the same.)
 */
import net from 'node:net';

export interface HeldRequest {
  /** Resolves once a matching request is being held (its head and all but its last byte went on). */
  readonly caught: Promise<void>;
  /** Sends the last byte: Swift gets the whole request. */
  release(): void;
  /** Cuts both connections instead: Swift never gets the last byte. */
  cut(): void;
}

export interface SlowLink {
  /** The link's origin, to use as the proxy's upstream. */
  readonly url: string;
  /** Holds the next request whose head contains `marker` (a body with a Content-Length). */
  hold(marker: string): HeldRequest;
  /** Holds the next request without a body whose head contains `marker`: its head stops one byte short. */
  holdBodiless(marker: string): HeldRequest;
  close(): Promise<void>;
}

interface Waiting {
  readonly marker: string;
  /** Matches requests without a body (their head is held) rather than those with one. */
  readonly bodiless?: boolean;
  readonly caught: () => void;
  take?: (release: () => void, cut: () => void) => void;
}

/**
 * Reads one client-to-Swift stream request by request (heads, and bodies by their Content-Length) and holds the
 * first one a waiting hold matches; passes everything else on. A chunked body ends the watch on its connection.
 */
function watchRequests(client: net.Socket, upstream: net.Socket, waiting: Waiting[]): void {
  let pending = Buffer.alloc(0);
  let bodyLeft = 0;
  let passing = false;
  let holding = false;
  const pass = () => {
    while (!passing && !holding) {
      if (bodyLeft > 0) {
        const part = pending.subarray(0, bodyLeft);
        upstream.write(part);
        bodyLeft -= part.length;
        pending = pending.subarray(part.length);
        if (bodyLeft > 0) return;
      }
      const headEnd = pending.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const head = pending.subarray(0, headEnd).toString('latin1');
      const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? '0');
      const chunked = /\r\ntransfer-encoding:\s*chunked/i.test(head);
      const index = waiting.findIndex((w) => head.includes(w.marker) && (w.bodiless === true ? length === 0 && !chunked : length > 0));
      if (index >= 0) {
        const whole = headEnd + 4 + length;
        if (pending.length < whole) return;
        const [entry] = waiting.splice(index, 1);
        holding = true;
        upstream.write(pending.subarray(0, whole - 1));
        const last = pending.subarray(whole - 1, whole);
        pending = pending.subarray(whole);
        entry!.caught();
        entry!.take?.(
          () => {
            upstream.write(last);
            holding = false;
            pass();
          },
          () => {
            client.destroy();
            upstream.destroy();
          },
        );
        return;
      }
      upstream.write(pending.subarray(0, headEnd + 4));
      pending = pending.subarray(headEnd + 4);
      if (chunked) {
        passing = true;
        upstream.write(pending);
        return;
      }
      bodyLeft = length;
    }
  };
  client.on('data', (data: Buffer) => {
    if (passing) return void upstream.write(data);
    pending = Buffer.concat([pending, data]);
    pass();
  });
}

export async function openSlowLink(target: string): Promise<SlowLink> {
  const to = new URL(target);
  const waiting: Waiting[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(Number(to.port), to.hostname);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => {});
    }
    upstream.on('data', (data) => client.write(data));
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    watchRequests(client, upstream, waiting);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hold(marker) {
      return hold(marker, false);
    },
    holdBodiless(marker) {
      return hold(marker, true);
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  function hold(marker: string, bodiless: boolean): HeldRequest {
    let caught: () => void = () => {};
    const caughtPromise = new Promise<void>((resolve) => (caught = resolve));
    let actions: { release(): void; cut(): void } | undefined;
    let wanted: 'release' | 'cut' | undefined;
    const entry: Waiting = {
      marker,
      bodiless,
      caught,
      take: (release, cut) => {
        actions = { release, cut };
        if (wanted) actions[wanted]();
      },
    };
    waiting.push(entry);
    return {
      caught: caughtPromise,
      release: () => (actions ? actions.release() : (wanted = 'release')),
      cut: () => (actions ? actions.cut() : (wanted = 'cut')),
    };
  }
}
