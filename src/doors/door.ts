/**
 * The front doors: each protocol Swift's pipeline takes writes through (bulk, s3api, formpost, the Swift API)
 * turns a request into the plain writes Swift will make of it, and admits those through the one write path
 * (quota/writes.ts). `pickDoor` reads which door a request enters, in Swift's pipeline order; a door never
 * answers HTTP itself: it sets the exchange's reply, which the HTTP edge sends (http/quota-hooks.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import type { Log } from '../log.js';
import type { SwiftView } from '../proxy/swift-view.js';
import { SwiftQuery } from '../swift/request.js';
import { UpstreamUnavailableError } from '../swift/client.js';
import { isS3Request } from '../s3/request.js';
import { requestIntent, type Intent } from '../quota/intent.js';
import { LedgerUnavailableError } from '../quota/ledger/ledger.js';
import { PinCycle } from '../quota/pins.js';
import type { BodyHead, Exchange } from '../quota/exchange.js';

export type { BodyHead };
import type { QuotaCore } from '../quota/core.js';
import { answerS3, answerSwift, NOT_FOUND, refuse } from '../quota/answers.js';
import { settle } from '../quota/settle.js';
import { admitSwift } from './swift/door.js';
import { admitS3 } from './s3/door.js';

/** A request as a door sees it: no HTTP framework, only what deciding needs. */
export interface DoorRequest {
  readonly view: SwiftView;
  readonly exchange: Exchange;
  /** The client's request: its raw headers and its body stream. */
  readonly raw: IncomingMessage;
  /** The request's own logger (its transaction id on every line). */
  readonly log: Log;
  /**
   * Reads the first `limit` bytes of the body (sending `100 Continue` first if the client waits for it), held
   * under the body buffer budgets until the request ends; undefined when the edge answered instead (503, 408).
   */
  readBody(account: string, limit: number): Promise<BodyHead | undefined>;
  /** Takes `bytes` of the budgets until the request ends, for a body read as it streams; false: answered 503. */
  holdBuffer(account: string, bytes: number): boolean;
  /** Sends `100 Continue` now: the door reads the body as it streams. */
  sendContinue(): void;
}

/** What a door does with a request; the promise settles once it may go on to Swift (or has been answered). */
export type Admit = (request: DoorRequest) => Promise<void>;

/** Methods that can store something (a COPY is a PUT at its Destination). */
export const STORING_METHODS = new Set(['PUT', 'POST', 'COPY']);

/** The query string of a request target (after the first "?"), or undefined. */
export function queryOf(target: string): string | undefined {
  const at = target.indexOf('?');
  return at < 0 ? undefined : target.slice(at + 1);
}

/**
 * The door a request enters, or undefined for the requests that need no quota decision, most reads among them:
 * decided synchronously, so that those cost no promise.
 */
export function pickDoor(core: QuotaCore, view: SwiftView): Admit | undefined {
  // `OPTIONS *` and the like: no URL undici can send, and one Swift answers 404 to.
  if (!view.target.startsWith('/') && !/^https?:\/\//i.test(view.target)) return answerNow((exchange) => answerSwift(exchange, NOT_FOUND));
  const capabilities = core.capabilities();
  const query = queryOf(view.target);
  // bulk comes before s3api: a PUT with ?extract-archive is its, S3 credentials or not (it extracts with the
  // request's X-Auth-Token).
  const extract = view.method === 'PUT' && capabilities.has('bulk_upload') && SwiftQuery.parse(query).last('extract-archive') !== undefined;
  // s3api takes any other request with S3 credentials, whatever its path (/v1/... included).
  const s3 = !extract && capabilities.has('s3api') && isS3Request(view.headers, query);
  const unaddressable = hostAddressingRefusal(view, s3);
  if (unaddressable) return unaddressable;
  if (s3) return (request) => checked(core, request, () => admitS3(core, request, query), undefined);
  if (!view.path) return undefined;
  const intent = requestIntent({ method: view.method, path: view.path, headers: view.headers, framing: view.framing, formpost: capabilities.has('formpost'), bulk: capabilities.has('bulk_upload'), bulkDelete: capabilities.has('bulk_delete') });
  if (intent.type === 'pass') return undefined;
  return (request) => checked(core, request, () => admitSwift(core, request, intent), intent);
}

/** A write addressed by a host name the proxy cannot read as Swift will: refused (501). */
function hostAddressingRefusal(view: SwiftView, s3: boolean): Admit | undefined {
  if (!STORING_METHODS.has(view.method)) return undefined;
  if (view.hostAddressing?.kind === 'unknown') {
    const { middleware } = view.hostAddressing;
    const why = `Swift runs ${middleware}, so this host name may address any account, and the quota proxy's config has no [filter:${middleware}] section to read it with. Use the proxy's address, or ask the operator to add the section.`;
    if (s3) return answerNow((exchange) => answerS3(inS3(exchange), { status: 501, code: 'NotImplemented', message: why }));
    return answerNow((exchange) => refuse(exchange, 501, `Not Implemented: ${why}`));
  }
  if (s3 && view.hostAddressing?.kind === 'host') {
    // Which of s3api and domain_remap reads the request first depends on Swift's pipeline order, and a
    // CNAME'd host changes what s3api signs: neither can be read for certain.
    return answerNow((exchange) => answerS3(inS3(exchange), { status: 501, code: 'NotImplemented', message: 'S3 writes on a host name that domain_remap or cname_lookup maps are not supported through the quota proxy: use the S3 endpoint itself.' }));
  }
  return undefined;
}

/** The exchange, answered in S3's words from now on. */
export function inS3(exchange: Exchange): Exchange {
  exchange.dialect = 's3';
  return exchange;
}

function answerNow(answer: (exchange: Exchange) => void): Admit {
  return (request) => {
    answer(request.exchange);
    return Promise.resolve();
  };
}

/** Runs an admission, and turns usage that cannot be read into the answer fail_mode asks for. */
async function checked(core: QuotaCore, request: DoorRequest, admission: () => Promise<void> | void, intent: Intent | undefined): Promise<void> {
  const { exchange } = request;
  try {
    await admission();
  } catch (error) {
    settle(core, exchange, undefined);
    if (intent?.type === 'describe') {
      // Reads never fail because the proxy could not read usage: they go on without quota headers.
      request.log.debug({ err: error }, 'quota headers left out');
      return;
    }
    if (error instanceof PinCycle) return refuse(exchange, 503, `Service Unavailable: ${error.refusal}`, { 'retry-after': '1' });
    if (!(error instanceof UpstreamUnavailableError) && !(error instanceof LedgerUnavailableError)) throw error;
    failMode(core, request, error);
  }
}

/** Usage could not be read: the write goes on unchecked (fail_mode = open) or is refused 503 (closed). */
function failMode(core: QuotaCore, request: DoorRequest, error: UpstreamUnavailableError | LedgerUnavailableError): void {
  const cause = error instanceof LedgerUnavailableError ? 'ledger' : 'swift';
  if (core.config.quota.failMode === 'open') {
    core.metrics.checkFailures.inc({ cause, action: 'admitted' });
    request.exchange.decision = 'unchecked';
    request.log.warn({ err: error }, 'usage unavailable, letting the write through (fail_mode = open)');
    return;
  }
  core.metrics.checkFailures.inc({ cause, action: 'refused' });
  request.log.warn({ err: error }, 'usage unavailable, refusing the write (fail_mode = closed)');
  const why = error instanceof LedgerUnavailableError ? 'the quota proxy cannot reach its usage ledger; try again later.' : 'the quota proxy cannot read usage from Swift; try again later.';
  refuse(request.exchange, 503, `Service Unavailable: ${why}`, { 'retry-after': String(core.config.quota.retryAfterSeconds) });
}

