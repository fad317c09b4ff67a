/**
 * The reference servers of the one-core pass-through benchmark (passthrough.ts), each run as its own process:
 *
 *   static <port> <info.json>              a 4 KiB answer to every GET/HEAD, Swift's /info from the file (used as
 *                                         the upstream when nginx is not installed)
 *   bare-proxy <upstream> <port>           the least a Node proxy does: Node's `http` server and an undici Pool
 *   fastify-proxy <upstream> <port>        Fastify with @fastify/http-proxy, all defaults
 *
 * Not part of the product; they show what the quota proxy's own cost is measured against.
 */
import { createServer, type IncomingHttpHeaders } from 'node:http';
import { readFileSync } from 'node:fs';
import Fastify from 'fastify';
import httpProxy from '@fastify/http-proxy';
import { Pool } from 'undici';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'expect']);

function endToEnd(headers: IncomingHttpHeaders | Record<string, string | string[] | undefined>): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) if (value !== undefined && !HOP_BY_HOP.has(name)) out[name] = value;
  return out;
}

const [mode, ...args] = process.argv.slice(2);
const listenPort = (text: string | undefined) => {
  const port = Number(text);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`bad port ${text}`);
  return port;
};

if (mode === 'static') {
  const body = Buffer.alloc(4096, 'x');
  const info = readFileSync(args[1]!);
  createServer((request, response) => {
    const payload = request.url === '/info' ? info : body;
    response.writeHead(200, { 'content-type': request.url === '/info' ? 'application/json' : 'application/octet-stream', 'content-length': payload.length });
    response.end(request.method === 'HEAD' ? undefined : payload);
  }).listen(listenPort(args[0]), '127.0.0.1');
} else if (mode === 'bare-proxy') {
  const pool = new Pool(args[0]!, { connections: 64 });
  createServer((request, response) => {
    const streamsBody = request.method !== 'GET' && request.method !== 'HEAD';
    pool
      .request({ method: request.method as 'GET', path: request.url!, headers: endToEnd(request.headers), body: streamsBody ? request : null })
      .then(({ statusCode, headers, body }) => {
        response.writeHead(statusCode, endToEnd(headers));
        body.pipe(response);
      }, () => {
        response.writeHead(502).end();
      });
  }).listen(listenPort(args[1]), '127.0.0.1');
} else if (mode === 'fastify-proxy') {
  const app = Fastify();
  await app.register(httpProxy, { upstream: args[0]! });
  await app.listen({ host: '127.0.0.1', port: listenPort(args[1]) });
} else {
  throw new Error(`reference-servers: unknown mode ${mode}`);
}
