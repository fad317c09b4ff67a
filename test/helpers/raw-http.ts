/**
 * HTTP/1.1 over a raw socket, for attacks no HTTP client library sends: header spellings and duplicates kept
 * as written, odd request targets, and bodies held back for as long as the test likes while other requests
 * change the world.
 */
import net from 'node:net';

export interface RawResponse {
  status: number;
  /** Lower-cased names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  body: string;
}

export interface RawRequest {
  /** Writes more of the request (body bytes). */
  send(data: string | Buffer): void;
  /** Writes the rest of the body (if any) and waits for the answer. */
  finish(rest?: string | Buffer): Promise<RawResponse>;
  /** The answer, whenever it comes (the proxy may answer before the body is sent). */
  readonly response: Promise<RawResponse>;
  /**
   * Resolves with 'continue' when the server sent `100 Continue` (the proxy does once it admitted the
   * request), or with the final answer's status if that came first.
   */
  readonly admitted: Promise<'continue' | number>;
  /** Drops the connection. */
  destroy(): void;
}

export type HeaderList = ReadonlyArray<readonly [string, string]>;

function parseResponse(buffer: Buffer, ended: boolean, head: boolean): RawResponse | undefined {
  const headEnd = buffer.indexOf('\r\n\r\n');
  if (headEnd < 0) return undefined;
  const lines = buffer.subarray(0, headEnd).toString('latin1').split('\r\n');
  const status = Number(lines[0]!.split(' ')[1]);
  if (status === 100) return parseResponse(buffer.subarray(headEnd + 4), ended, head);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  // An answer to HEAD has no body, whatever its Content-Length says.
  if (head) return { status, headers, body: '' };
  const rest = buffer.subarray(headEnd + 4);
  if (headers['transfer-encoding']?.toLowerCase() === 'chunked') {
    const chunks: Buffer[] = [];
    let at = 0;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', at);
      if (lineEnd < 0) return undefined;
      const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
      if (size === 0) return { status, headers, body: Buffer.concat(chunks).toString('utf8') };
      if (rest.length < lineEnd + 2 + size + 2) return undefined;
      chunks.push(rest.subarray(lineEnd + 2, lineEnd + 2 + size));
      at = lineEnd + 2 + size + 2;
    }
  }
  const length = headers['content-length'];
  if (length !== undefined) {
    if (rest.length < Number(length)) return undefined;
    return { status, headers, body: rest.subarray(0, Number(length)).toString('utf8') };
  }
  // HEAD-like answers without a body, or a body that ends with the connection.
  if (status === 204 || status === 304 || status < 200) return { status, headers, body: '' };
  return ended ? { status, headers, body: rest.toString('utf8') } : undefined;
}

/**
 * Opens a connection to `origin` and writes the request head as given (and `body`, if any, right after).
 * `target` is written as is (it may be absolute-form, or hold bytes other clients would encode).
 */
export function rawRequest(origin: string, method: string, target: string, headers: HeaderList, body?: string | Buffer): RawRequest {
  const url = new URL(origin);
  const socket = net.connect(Number(url.port), url.hostname);
  socket.on('error', () => {});
  const head = [`${method} ${target} HTTP/1.1`, ...headers.map(([name, value]) => `${name}: ${value}`), '', ''].join('\r\n');
  socket.write(Buffer.from(head, 'latin1'));
  if (body !== undefined && body.length > 0) socket.write(body);
  let received = Buffer.alloc(0);
  let onInterim: (value: 'continue' | number) => void = () => {};
  const admitted = new Promise<'continue' | number>((resolve) => {
    onInterim = resolve;
  });
  const response = new Promise<RawResponse>((resolve, reject) => {
    const tryParse = (ended: boolean) => {
      const parsed = parseResponse(received, ended, method === 'HEAD');
      if (parsed) {
        resolve(parsed);
        socket.destroy();
      } else if (ended) reject(new Error(`connection ended without a whole answer: ${received.toString('latin1').slice(0, 200)}`));
    };
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (/^HTTP\/1\.[01] 100 /.test(received.subarray(0, 13).toString('latin1'))) onInterim('continue');
      tryParse(false);
    });
    socket.on('end', () => tryParse(true));
    socket.on('close', () => tryParse(true));
  });
  response.then((answer) => onInterim(answer.status), () => onInterim(0));
  return {
    admitted,
    send: (data) => {
      if (!socket.destroyed) socket.write(data);
    },
    finish: (rest) => {
      if (rest !== undefined && rest.length > 0 && !socket.destroyed) socket.write(rest);
      return response;
    },
    response,
    destroy: () => socket.destroy(),
  };
}

/** Waits until `check` holds (polling), or fails after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
