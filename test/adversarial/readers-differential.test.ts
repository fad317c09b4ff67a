/**
 * The proxy's general readers against Swift's own (readers_reference.py runs Swift 2.30.1's code: eventlet's
 * request parsing as Swift's server drives it, swob, split_path, slo's manifest PUT, s3api's completion reader).
 * Seed 21; inputs per reader (readers-inputs.ts builds them): 3,000 request targets, 3,000 query strings,
 * 1,500 request heads (parsed by Node's own HTTP parser), 1,500 numbers, 2,000 SLO manifests, 1,500 S3
 * completion bodies (12,500 in all; READERS_SCALE multiplies them). Where the proxy reads an input it must
 * read it as Swift does (the same names, parameters, header values, numbers, stored manifest size); otherwise
 * it refuses it. What each check found when it was written is in docs/security.md ("Readers checked against
 * Swift's own").
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseSwiftPath } from '../../src/swift/path.js';
import { requestIntent } from '../../src/quota/intent.js';
import { SwiftHeaders, SwiftQuery, swiftTrue } from '../../src/swift/request.js';
import { mendRequestLine } from '../../src/proxy/request-lines.js';
import { forwardedRequestHeaders } from '../../src/proxy/request-headers.js';
import { tempUrlExpiry } from '../../src/auth/signatures.js';
import { largestStoredManifest, parseManifest, segmentRef, storedManifestSize, type ManifestEntry, type SegmentHead } from '../../src/quota/slo-manifest.js';
import { throughReference } from './differential.js';
import { DECISION_HEADERS, QUERY_NAMES, SEGMENTS, UPLOADED_PARTS, makeCompletion, makeHead, makeManifest, makeNumber, makeQuery, makeTarget } from './readers-inputs.js';

const REFERENCE = fileURLToPath(new URL('./readers_reference.py', import.meta.url));
const SEED = 21;
const SCALE = Number(process.env.READERS_SCALE ?? 1);
const count = (n: number) => Math.round(n * SCALE);

/** Runs the inputs through Swift's code, one Python process for all of them. */
const swiftReads = <T>(cases: readonly object[]): Promise<T[]> => throughReference<T>(REFERENCE, cases);

const b64 = (bytes: Buffer) => bytes.toString('base64');

/** Collects every input the two readers disagree on, so that a failure lists them all (the first 30). */
class Mismatches {
  private readonly found: string[] = [];
  check(ok: boolean, what: string): void {
    if (!ok) this.found.push(what);
  }
  equal(actual: unknown, expected: unknown, what: string): void {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) this.found.push(`${what}: proxy ${JSON.stringify(actual)}, Swift ${JSON.stringify(expected)}`);
  }
  assertNone(): void {
    assert.equal(this.found.length, 0, `${this.found.length} inputs read differently:\n${this.found.slice(0, 30).join('\n')}`);
  }
}

/** Raw bytes >= 0x80 as the proxy forwards them (request-lines.ts): percent-encoded. */
const mended = (text: string) => text.replace(/[\u0080-\u00ff]/g, (char) => `%${char.charCodeAt(0).toString(16).toUpperCase()}`);
/** A Python WSGI string (latin-1, one char per byte) as the text it holds in UTF-8, or undefined if it holds none. */
function wsgiText(value: string): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(value, 'latin1'));
  } catch {
    return undefined;
  }
}

describe('the proxy\'s readers read requests as Swift 2.30.1 does', () => {
  test(`${count(3000)} request targets: the same version, account, container and object, or no storage path`, async () => {
    type Read = { status: number | string; version?: string; account?: string; container?: string | null; object?: string | null; extract_base?: string | null };
    // What reaches Swift is the target after the proxy mended raw high bytes (request-lines.ts).
    const targets = Array.from({ length: count(3000) }, (_, i) => {
      const raw = Buffer.from(`GET ${makeTarget(SEED * 100_000 + i)} HTTP/1.1`, 'latin1');
      return (mendRequestLine(raw, 'x-m') ?? raw).toString('latin1').slice(4, -9);
    });
    const swift = await swiftReads<Read>(targets.map((target) => ({ kind: 'path', target })));
    let stored = 0;
    const mismatches = new Mismatches();
    targets.forEach((target, i) => {
      const proxy = parseSwiftPath(target);
      const theirs = swift[i]!;
      if (theirs.status === 'ok') {
        stored++;
        const what = `target ${JSON.stringify(target)}: Swift ${JSON.stringify(theirs)}, proxy ${JSON.stringify(proxy && { ...proxy, query: undefined })}`;
        mismatches.check(proxy !== undefined, what);
        if (proxy) mismatches.equal([proxy.version, proxy.account, proxy.container ?? null, proxy.object ?? null], [theirs.version, theirs.account, theirs.container, theirs.object], what);
        // An archive PUT there is extracted where bulk's own reading of the path says.
        const extract = proxy && requestIntent({ method: 'PUT', path: { ...proxy, query: SwiftQuery.parse('extract-archive=tar') }, headers: SwiftHeaders.from({}), framing: { contentLength: '0', transferEncoding: undefined }, bulk: true });
        if (extract) mismatches.equal(extract.type === 'extract-archive' ? extract.base.replace(/\/+$/, '') : extract.type, theirs.extract_base, `${what} (extract-archive base)`);
      } else {
        // A path Swift refuses is no storage path to the proxy either (it would count a write that fails).
        mismatches.check(proxy === undefined, `target ${JSON.stringify(target)}: Swift ${theirs.status}, proxy ${JSON.stringify(proxy && { ...proxy, query: undefined })}`);
      }
    });
    mismatches.assertNone();
    assert.ok(stored > targets.length / 5, `only ${stored} targets reach a controller`);
  });

  test(`${count(3000)} query strings: the parameters that change what Swift writes`, async () => {
    type Read = { params: Record<string, string | null>; true: Record<string, boolean>; first: Record<string, string | null> };
    const queries = Array.from({ length: count(3000) }, (_, i) => mended(makeQuery(SEED * 200_000 + i)));
    const mismatches = new Mismatches();
    const swift = await swiftReads<Read>(queries.map((query) => ({ kind: 'query', query, names: QUERY_NAMES })));
    let present = 0;
    queries.forEach((query, i) => {
      const proxy = SwiftQuery.parse(query);
      const theirs = swift[i]!;
      for (const name of QUERY_NAMES) {
        const what = `query ${JSON.stringify(query)}, ${name}`;
        const value = theirs.params[name] ?? null;
        const mine = proxy.last(name);
        mismatches.equal(mine === undefined, value === null, what);
        if (value === null || mine === undefined) continue;
        present++;
        // swob keeps bytes (latin-1); the proxy decodes UTF-8: the same text wherever the bytes are UTF-8.
        const text = wsgiText(value);
        if (text !== undefined) mismatches.equal(mine, text, what);
        mismatches.equal(mine === 'put', value === 'put', `${what} (multipart-manifest=put)`);
        mismatches.equal(swiftTrue(mine), theirs.true[name], `${what} (config_true_value)`);
        // bulk: the archive type, lower-cased with dots stripped (Python lower-cases the latin-1 characters).
        mismatches.equal(archiveType(mine), archiveType(value), `${what} (archive type)`);
      }
      for (const name of QUERY_NAMES) mismatches.equal(proxy.first(name) ?? null, theirs.first[name], `query ${JSON.stringify(query)}, first ${name}`);
    });
    mismatches.assertNone();
    assert.ok(present > queries.length / 2, `only ${present} parameters found`);
  });

  describe('request heads', () => {
    let server: http.Server;
    const seen = new Map<string, { rawHeaders: string[]; contentLength: string | undefined }>();
    before(async () => {
      server = http.createServer((request, response) => {
        seen.set(request.headers['x-case'] as string, { rawHeaders: request.rawHeaders, contentLength: request.headers['content-length'] });
        response.writeHead(204, { connection: 'close' }).end();
        request.socket.destroySoon();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    });
    after(() => server.close());

    /** Sends a head (and its body) to Node's own HTTP server: the status it answers. */
    function nodeReads(head: Buffer, body: number): Promise<number> {
      const { port } = server.address() as net.AddressInfo;
      return new Promise((resolve) => {
        const socket = net.connect(port, '127.0.0.1', () => socket.write(Buffer.concat([head, Buffer.alloc(Math.min(body, 16), 'x')])));
        let answer = '';
        socket.on('data', (chunk: Buffer) => (answer += chunk.toString('latin1')));
        socket.on('error', () => {});
        socket.on('close', () => resolve(Number(answer.split(' ')[1] ?? 0)));
      });
    }

    test(`${count(1500)} heads: eventlet's environ for every header that decides a write, before and after the proxy forwards it`, async () => {
      type Read = { environ?: Record<string, string>; error?: string };
      const heads = Array.from({ length: count(1500) }, (_, i) => {
        const head = makeHead(SEED * 300_000 + i);
        const at = head.bytes.indexOf('\r\n') + 2;
        return { ...head, bytes: Buffer.concat([head.bytes.subarray(0, at), Buffer.from(`X-Case: ${i}\r\n`), head.bytes.subarray(at)]) };
      });
      const statuses: number[] = [];
      for (let i = 0; i < heads.length; i += 25) statuses.push(...(await Promise.all(heads.slice(i, i + 25).map((h) => nodeReads(h.bytes, h.body)))));
      const accepted = heads.flatMap((head, i) => (seen.has(String(i)) ? [{ head, i, node: seen.get(String(i))! }] : []));
      const original = await swiftReads<Read>(accepted.map(({ head }) => ({ kind: 'head', head: b64(head.bytes) })));
      const proxyViews = accepted.map(({ node }) => SwiftHeaders.fromRaw(node.rawHeaders));
      // What Swift gets from the proxy: the headers it read, one per name (request-headers.ts), as undici writes them.
      const forwardedHeads = proxyViews.map((headers) => {
        const out = forwardedRequestHeaders(headers, new Map(), { upstreamHost: 'h', remoteAddress: undefined });
        return Buffer.from(`PUT /v1/AUTH_a/c/o HTTP/1.1\r\n${Object.entries(out).map(([name, value]) => `${name}: ${value}\r\n`).join('')}\r\n`, 'latin1');
      });
      const forwarded = await swiftReads<Read>(forwardedHeads.map((head) => ({ kind: 'head', head: b64(head) })));
      const mismatches = new Mismatches();
      accepted.forEach(({ head, node }, k) => {
        const what = `head ${JSON.stringify(head.bytes.toString('latin1'))}`;
        const theirs = original[k]!.environ;
        const after = forwarded[k]!.environ;
        if (!theirs || !after) return mismatches.check(false, `${what}: ${original[k]!.error ?? forwarded[k]!.error}`);
        for (const name of DECISION_HEADERS) {
          const key = name === 'content-type' || name === 'content-length' ? name.toUpperCase().replace('-', '_') : `HTTP_${name.toUpperCase().replaceAll('-', '_')}`;
          const mine = proxyViews[k]!.get(name) ?? (name === 'content-type' ? '' : undefined);
          // Swift acts on what the proxy forwards: that must be what the proxy read (transfer-encoding is
          // hop-by-hop: undici frames the body itself).
          if (name !== 'transfer-encoding') mismatches.equal(mine, after[key], `${what}: ${name} as forwarded`);
          // And what the proxy read is what Swift would have read of the client's own head, but for the
          // outer whitespace eventlet leaves on Content-Type and Content-Length (Node trims it; the proxy
          // forwards the trimmed value, which Swift reads as the proxy did).
          const untrimmed = name === 'content-type' || name === 'content-length' ? theirs[key]?.replace(/^[ \t]+|[ \t]+$/g, '') : theirs[key];
          mismatches.equal(mine, untrimmed, `${what}: ${name}`);
        }
        // The body's length as Node frames it is the number Swift reads (swob: int(CONTENT_LENGTH)).
        if (node.contentLength !== undefined) mismatches.equal(Number(node.contentLength), Number(theirs.CONTENT_LENGTH), `${what}: framing`);
      });
      mismatches.assertNone();
      assert.ok(accepted.length > heads.length / 3, `Node took only ${accepted.length} of ${heads.length} heads (statuses ${[...new Set(statuses)].join(' ')})`);
    });
  });

  test(`${count(1500)} numbers: tempurl's and formpost's expiry is the number Python's int() reads, or none where it raises`, async () => {
    const values = Array.from({ length: count(1500) }, (_, i) => makeNumber(SEED * 400_000 + i));
    const swift = await swiftReads<{ value: string | null }>(values.map((value) => ({ kind: 'int', value })));
    const mismatches = new Mismatches();
    let numbers = 0;
    values.forEach((value, i) => {
      const theirs = swift[i]!.value;
      if (theirs !== null) numbers++;
      // tempurl: int(), else the ISO 8601 form (none generated here); past (here: not positive) is 0.
      const expected = theirs === null || BigInt(theirs) < 0n ? 0n : BigInt(theirs);
      mismatches.equal(String(tempUrlExpiry(value, 0)), String(expected), `expiry ${JSON.stringify(value)}`);
    });
    mismatches.assertNone();
    assert.ok(numbers > values.length / 10 && numbers < values.length, `${numbers} of ${values.length} are numbers to Python`);
  });

  test(`${count(2000)} SLO manifests: whatever SLO stores, the proxy sizes exactly`, async (t) => {
    type Read = { status: number; stored: number | null };
    const bodies = Array.from({ length: count(2000) }, (_, i) => makeManifest(SEED * 500_000 + i));
    const swift = await swiftReads<Read>(bodies.map((body) => ({ kind: 'slo', body: b64(body), heads: SEGMENTS })));
    let stored = 0;
    let overCounted = 0;
    const mismatches = new Mismatches();
    bodies.forEach((body, i) => {
      const theirs = swift[i]!;
      const mine = proxyManifestSize(body);
      if (theirs.stored === null) {
        if (mine !== undefined) overCounted++;
        return;
      }
      stored++;
      const what = `manifest ${JSON.stringify(body.toString('latin1'))}: SLO stored ${theirs.stored}, proxy ${mine}`;
      mismatches.check(mine === theirs.stored, what);
      // Were the proxy's reading ever wrong, what it holds for a manifest it reads as refused bounds SLO's.
      mismatches.check(theirs.stored <= largestStoredManifest(body.length, 1000), `${what}: past the largest bound`);
    });
    mismatches.assertNone();
    // A manifest the proxy sizes but SLO refuses (a size_bytes or etag that does not match, "YQ" without its
    // padding) holds room until Swift answers: counted, never a way past the limit.
    t.diagnostic(`SLO stored ${stored} of ${bodies.length} manifests; the proxy also sized ${overCounted} that SLO refuses`);
    assert.ok(stored > bodies.length / 5, `SLO stored only ${stored} manifests`);
  });

  test(`${count(1500)} S3 completions: s3api lists only uploaded parts, each once, so the proxy's manifest of every part bounds it`, async () => {
    type Read = { parts: number[] | null; error: string | null };
    const bodies = Array.from({ length: count(1500) }, (_, i) => makeCompletion(SEED * 600_000 + i));
    const swift = await swiftReads<Read>(bodies.map((body) => ({ kind: 'complete', body: b64(body) })));
    const heads = new Map(UPLOADED_PARTS.map((part) => [`/b+segments/o/up/${part}`, segmentHead(5_242_880)] as const));
    const entries = (parts: readonly string[]): ManifestEntry[] => parts.map((part) => ({ kind: 'object', path: `/b+segments/o/up/${part}`, range: undefined }));
    const bound = storedManifestSize(entries(UPLOADED_PARTS), heads)!;
    let completed = 0;
    const mismatches = new Mismatches();
    bodies.forEach((body, i) => {
      const parts = swift[i]!.parts;
      if (parts === null) return;
      const what = `completion ${JSON.stringify(body.toString('utf8'))}: parts ${JSON.stringify(parts)}`;
      mismatches.check(parts.every((part, k) => Number.isSafeInteger(part) && part > 0 && (k === 0 || part > parts[k - 1]!)), what);
      const size = storedManifestSize(entries(parts.map(String)), heads);
      if (size === undefined) return; // a part that was never uploaded: SLO refuses the manifest
      completed++;
      mismatches.check(size <= bound, what);
    });
    mismatches.assertNone();
    assert.ok(completed > bodies.length / 40, `only ${completed} completions could be stored`);
  });
});

/** bulk's archive type of an `extract-archive` value. */
function archiveType(value: string): string {
  const type = value.toLowerCase().replace(/^\.+|\.+$/g, '');
  return ['tar', 'tar.gz', 'tar.bz2'].includes(type) ? type : 'other';
}

function segmentHead(length: number, spec?: { etag: string; type: string; slo?: boolean }): SegmentHead {
  return { status: 200, contentLength: length, etag: `"${spec?.etag ?? 'd41d8cd98f00b204e9800998ecf8427e'}"`, contentType: spec?.type ?? 'application/octet-stream', staticLargeObject: spec?.slo ?? false };
}

/** The size the proxy holds for a manifest (manifest-sizer.ts, with SEGMENTS as Swift's HEADs), or undefined where it lets it through uncounted. */
function proxyManifestSize(body: Buffer): number | undefined {
  const parsed = parseManifest(body);
  if (!parsed.valid) return undefined;
  const heads = new Map<string, SegmentHead>();
  for (const entry of parsed.entries) {
    if (entry.kind !== 'object') continue;
    const ref = segmentRef(entry.path);
    const spec = ref && SEGMENTS[`${ref.container}/${ref.object}`];
    heads.set(entry.path, spec ? segmentHead(spec.length, spec) : { status: 404, contentLength: 0, etag: undefined, contentType: undefined, staticLargeObject: false });
  }
  return storedManifestSize(parsed.entries, heads);
}
