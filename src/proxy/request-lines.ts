/**
 * Request lines Node's HTTP parser refuses but Swift takes, made parseable without changing what they mean to
 * Swift. Pure: bytes in, bytes out.
 *
 * - Raw bytes >= 0x80 in the request target (UTF-8 names as `curl` sends them as typed, or invalid UTF-8):
 *   llhttp answers 400; eventlet passes them on and Swift decodes a raw byte and its percent-encoding alike.
 *   They are percent-encoded, so Swift sees the same name (and the quota checks read the same name).
 * - A method llhttp does not know (`LICK`, `get`): llhttp answers 400, Swift 405. The request line gets a
 *   method Node knows (`PLACEHOLDER_METHOD`) and a header, under a name no client can guess, that carries
 *   the method the client sent; the server puts it back (server.ts) before anything reads the request.
 *
 * `RequestStreamRewriter` applies this to a whole connection: it follows HTTP/1.1 message framing as llhttp
 * does (Content-Length, chunked, no body), so that only request heads are touched and bodies pass byte for
 * byte, keeping keep-alive and pipelining intact. Framing it cannot follow (what llhttp would refuse anyway,
 * an upgrade) makes it pass everything on unchanged from there.
 */
import { METHODS } from 'node:http';

/** A method every Node HTTP server parses, and that Swift has no use for. */
export const PLACEHOLDER_METHOD = 'PROPFIND';

const KNOWN_METHODS = new Set(METHODS);
const CRLF = Buffer.from('\r\n');
/** A head longer than this is left to Node's own limit (431). */
const MAX_HEAD_BYTES = 512 * 1024;

function percentEncodeHighBytes(target: Buffer): Buffer {
  let high = 0;
  for (const byte of target) if (byte >= 0x80) high++;
  if (high === 0) return target;
  const out = Buffer.allocUnsafe(target.length + 2 * high);
  let at = 0;
  for (const byte of target) {
    if (byte < 0x80) {
      out[at++] = byte;
    } else {
      out[at++] = 0x25; // %
      at += out.write(byte.toString(16).toUpperCase(), at, 'latin1');
    }
  }
  return out;
}

/**
 * The request line (without its line ending) as Node will parse it, and a header line to add after it, or
 * undefined when Node takes it as it is (or it is not a request line this could mend).
 */
export function mendRequestLine(line: Buffer, methodHeader: string): Buffer | undefined {
  const firstSpace = line.indexOf(0x20);
  const lastSpace = line.lastIndexOf(0x20);
  if (firstSpace <= 0 || lastSpace <= firstSpace + 1) return undefined;
  const method = line.subarray(0, firstSpace).toString('latin1');
  // A method is a token (RFC 9110): anything else is not a request line to mend.
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(method)) return undefined;
  const target = line.subarray(firstSpace + 1, lastSpace);
  const version = line.subarray(lastSpace + 1);
  const mendedTarget = percentEncodeHighBytes(target);
  const knownMethod = KNOWN_METHODS.has(method);
  if (knownMethod && mendedTarget === target) return undefined;
  const head = `${knownMethod ? method : PLACEHOLDER_METHOD} `;
  const extra = knownMethod ? '' : `\r\n${methodHeader}: ${method}`;
  return Buffer.concat([Buffer.from(head, 'latin1'), mendedTarget, Buffer.from(' '), version, Buffer.from(extra, 'latin1')]);
}

type State =
  | { kind: 'head' }
  | { kind: 'body'; remaining: number }
  | { kind: 'chunk-size' }
  | { kind: 'chunk-data'; remaining: number }
  | { kind: 'trailers' }
  /** Framing it cannot follow: everything passes unchanged. */
  | { kind: 'opaque' };

interface Framing {
  next: State;
}

/** What follows a request head, read from its header lines as llhttp frames a request. */
function framingOf(head: string): Framing {
  const lines = head.split(/\r?\n/);
  const method = lines[0]!.split(' ')[0]!;
  let transferEncoding: string | undefined;
  let contentLength: string | undefined;
  let connection = '';
  let upgrade = false;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === 'transfer-encoding') transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
    else if (name === 'content-length') contentLength = contentLength === undefined ? value : 'repeated';
    else if (name === 'connection') connection += `,${value.toLowerCase()}`;
    else if (name === 'upgrade') upgrade = true;
  }
  if (method === 'CONNECT' || (upgrade && /(^|,)\s*upgrade\s*(,|$)/.test(connection))) return { next: { kind: 'opaque' } };
  if (transferEncoding !== undefined) {
    const codings = transferEncoding.split(',').map((coding) => coding.trim().toLowerCase());
    // Only a final `chunked` frames a request; llhttp refuses anything else (and Content-Length with it).
    return { next: codings.at(-1) === 'chunked' && contentLength === undefined ? { kind: 'chunk-size' } : { kind: 'opaque' } };
  }
  if (contentLength !== undefined) {
    if (!/^\d+$/.test(contentLength)) return { next: { kind: 'opaque' } };
    const length = Number(contentLength);
    return { next: length === 0 ? { kind: 'head' } : { kind: 'body', remaining: length } };
  }
  return { next: { kind: 'head' } };
}

export class RequestStreamRewriter {
  private state: State = { kind: 'head' };
  /** Bytes of an unfinished head, chunk-size line or trailer section. */
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly methodHeader: string) {}

  /** The bytes to hand Node's parser for `chunk` (possibly none yet, or more than one piece). */
  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = Buffer.alloc(0);
    while (data.length > 0) {
      const state = this.state;
      switch (state.kind) {
        case 'opaque':
          out.push(data);
          return out;
        case 'body':
        case 'chunk-data': {
          const take = Math.min(state.remaining, data.length);
          out.push(data.subarray(0, take));
          data = data.subarray(take);
          state.remaining -= take;
          if (state.remaining === 0) this.state = state.kind === 'body' ? { kind: 'head' } : { kind: 'chunk-size' };
          break;
        }
        case 'head': {
          // Empty lines before a request line are skipped by llhttp; pass them on as they are.
          let start = 0;
          while (start < data.length && (data[start] === 0x0d || data[start] === 0x0a)) start++;
          if (start > 0) {
            out.push(data.subarray(0, start));
            data = data.subarray(start);
            if (data.length === 0) break;
          }
          const end = headEnd(data);
          if (end === undefined) {
            if (data.length > MAX_HEAD_BYTES) {
              this.state = { kind: 'opaque' };
              out.push(data);
              return out;
            }
            this.pending = data;
            return out;
          }
          const head = data.subarray(0, end);
          data = data.subarray(end);
          const lineEnd = head.indexOf(0x0a);
          const line = head.subarray(0, lineEnd > 0 && head[lineEnd - 1] === 0x0d ? lineEnd - 1 : lineEnd);
          const mended = mendRequestLine(line, this.methodHeader);
          out.push(mended ? Buffer.concat([mended, head.subarray(line.length)]) : head);
          this.state = framingOf(head.toString('latin1')).next;
          break;
        }
        case 'chunk-size': {
          const newline = data.indexOf(0x0a);
          if (newline < 0) {
            if (data.length > MAX_HEAD_BYTES) {
              this.state = { kind: 'opaque' };
              out.push(data);
            } else {
              this.pending = data;
            }
            return out;
          }
          const line = data.subarray(0, newline + 1);
          out.push(line);
          data = data.subarray(newline + 1);
          const size = /^\s*([0-9A-Fa-f]+)/.exec(line.toString('latin1'));
          if (!size) {
            this.state = { kind: 'opaque' };
            break;
          }
          const length = parseInt(size[1]!, 16);
          // Each chunk's data is followed by CRLF, passed on with it.
          this.state = length === 0 ? { kind: 'trailers' } : { kind: 'chunk-data', remaining: length + CRLF.length };
          break;
        }
        case 'trailers': {
          const newline = data.indexOf(0x0a);
          if (newline < 0) {
            this.pending = data;
            return out;
          }
          const line = data.subarray(0, newline + 1);
          out.push(line);
          data = data.subarray(newline + 1);
          if (line.length <= 2 && line.toString('latin1').trim() === '') this.state = { kind: 'head' };
          break;
        }
      }
    }
    return out;
  }
}

/** Where a request head ends (after its empty line), or undefined when it has not yet. */
function headEnd(data: Buffer): number | undefined {
  for (let at = data.indexOf(0x0a); at >= 0; at = data.indexOf(0x0a, at + 1)) {
    if (data[at + 1] === 0x0a) return at + 2;
    if (data[at + 1] === 0x0d && data[at + 2] === 0x0a) return at + 3;
  }
  return undefined;
}
