/**
 * The reference servers of the one-core pass-through benchmark (passthrough.ts), each run as its own process:
 *
 *   static <port> <info.json> <token>      a 4 KiB answer to every object GET/HEAD, Swift's /info from the file,
 *                                         and of Swift as much as an admitted PUT needs: a tempauth login
 *                                         (answering <token>), usage HEADs of accounts and containers, 201 to a
 *                                         PUT and 404 to a POST (used as the upstream when nginx is not installed)
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
  const port = listenPort(args[0]);
  const token = args[2]!;
  createServer((request, response) => {
    const path = (request.url ?? '/').split('?')[0]!;
    const depth = path.startsWith('/v1/') ? path.slice(4).split('/').filter(Boolean).length : 0;
    if (path === '/auth/v1.0') {
      response.writeHead(200, { 'x-auth-token': token, 'x-storage-url': `http://127.0.0.1:${port}/v1/AUTH_bench`, 'x-auth-token-expires': '86400', 'content-length': 0 }).end();
    } else if (request.method === 'PUT' || request.method === 'POST') {
      request.resume();
      request.on('end', () => response.writeHead(request.method === 'PUT' ? 201 : 404, { 'content-length': 0 }).end());
    } else if (depth === 1) {
      response.writeHead(204, { 'x-account-container-count': 1, 'x-account-object-count': 0, 'x-account-bytes-used': 0 }).end();
    } else if (depth === 2) {
      response.writeHead(204, { 'x-container-object-count': 0, 'x-container-bytes-used': 0 }).end();
    } else {
      const payload = path === '/info' ? info : body;
      response.writeHead(200, { 'content-type': path === '/info' ? 'application/json' : 'application/octet-stream', 'content-length': payload.length });
      response.end(request.method === 'HEAD' ? undefined : payload);
    }
  }).listen(port, '127.0.0.1');
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
