/**
 * A webhook receiver on loopback for notification tests: records every POST (headers and JSON body), and
 * can answer with a chosen status or not at all.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  headers: IncomingHttpHeaders;
  body: string;
  event: { id: string; type: string; account: string; container: string | null; [key: string]: unknown };
}

export interface Receiver {
  readonly url: string;
  readonly port: number;
  readonly received: Received[];
  /** 'ok' answers 204; a number answers with that status; 'hang' never answers. */
  mode: 'ok' | 'hang' | number;
  close(): Promise<void>;
}

export async function startReceiver(port = 0): Promise<Receiver> {
  const received: Received[] = [];
  const hanging: Array<() => void> = [];
  let server: Server;
  const receiver: Receiver = {
    url: '',
    port: 0,
    received,
    mode: 'ok',
    close: () =>
      new Promise((resolve) => {
        for (const release of hanging.splice(0)) release();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
  server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const mode = receiver.mode;
      if (mode === 'hang') {
        hanging.push(() => response.destroy());
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      if (mode === 'ok') received.push({ headers: request.headers, body, event: JSON.parse(body) as Received['event'] });
      response.writeHead(mode === 'ok' ? 204 : mode).end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return Object.assign(receiver, { port: bound, url: `http://127.0.0.1:${bound}/hook` });
}

/** Polls `check` until it returns true or `ms` pass; events are delivered in the background. */
export async function eventually(check: () => boolean | Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
