/**
 * The quota gate: where requests meet the quota rules. For each request it reads what the request does, as
 * Swift reads it (intent.ts on proxy/swift-view.ts); for a write, it makes sure Swift authorises the caller
 * before anything is held, refused or recorded (auth/authority.ts), admits the write (admission.ts) and
 * answers a refusal; when Swift has answered, it settles what the request held.
 */
import { isIP } from 'node:net';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/load.js';
import type { Limits } from '../config/quota-levels.js';
import type { Metrics } from '../metrics.js';
import { ResellerCheck } from '../auth/reseller.js';
import { Authority, callerCredentials, callerToken, type Credentials, type SwiftAnswer, type Verdict } from '../auth/authority.js';
import { checkFormPost, checkTempUrl, tempUrlParams } from '../auth/signatures.js';
import { createFormLimiter, type FormAttributes } from './formpost.js';
import { encodePath } from '../swift/path.js';
import { SwiftQuery, swiftTrue } from '../swift/request.js';
import { countHeader, UpstreamUnavailableError, type SwiftClient } from '../swift/client.js';
import type { SwiftCapabilities } from '../swift/capabilities.js';
import type { Usage } from './decide.js';
import { requestIntent, type CopySource, type Intent, type ObjectRef } from './intent.js';
import { accountKey, containerKey, LedgerUnavailableError, scopeKey, type Reservation, type UsageLedger } from './ledger/ledger.js';
import { Admissions, type Denied, type LevelInfo, type Write } from './admission.js';
import { createUploadLimiter, UploadLimitError } from './upload-limiter.js';
import { quotaHeaders, rejectionResponse, type Rejection } from './responses.js';
import type { PersistedQuotaState } from '../swift/quota-metadata.js';
import type { TokenIdentities } from '../auth/identities.js';
import type { ContextSource, EventContext, QuotaWatch, Scope } from './watch.js';
import { swiftView, type SwiftView } from '../proxy/swift-view.js';
import { expectsContinue } from '../proxy/request-headers.js';
import { DEFAULT_S3_CONFIG, isS3Request, s3Action, s3Address, SEGMENTS_SUFFIX } from '../s3/request.js';
import { splitHostPort } from '../swift/host-addressing.js';
import { checkS3Signature, s3Credential, type S3Error } from '../s3/signature.js';
import { accountOfUser, serviceResellerPrefix, type TempauthUser } from '../config/load.js';
import type { SwiftHeaders } from '../swift/request.js';
import { ObjectPins, PinCycle, type PinBoard } from './pins.js';
import { Exchange, type ExchangeEnd } from './exchange.js';
import { requestEventContext } from './write-trace.js';
import { GrantedWrites } from './grants.js';
import { sizeManifest, type ManifestSize } from './manifest-sizer.js';
import type { BodyBuffers } from './body-buffer.js';
import { MAX_EXTENDED_HEADER } from './tar-reader.js';
import { manifestOfTwin } from './manifest-twin.js';
import { createDeleteListChecker, DeleteListRefused } from './bulk-delete.js';
import { boundingRange, copyRange, sameEtag, servedSource } from './copy-range.js';
import type { ByteRangeSpec } from '../swift/range.js';
import { filterArchive, type ArchiveFile, type FileVerdict } from './archive.js';
import { formatBulkAnswer, parseBulkAnswer, withRefusal } from './bulk-response.js';
import { LRUCache } from 'lru-cache';
import type { Versioning } from './ledger/ledger.js';
import { archivedByDelete, archivedByWrite, archivePrefix, overwriteCredit, restorable, versionsContainer } from './versioning.js';
import type { Readable } from 'node:stream';

/** What the gate remembers about a request between admission and Swift's answer. */
interface RequestState {
  /** What the request holds: one write, or each file of a form upload. */
  reservations?: Reservation[];
  /**
   * Swift may have stored some of the request's writes whatever it answers (a form stores each file as it
   * arrives): what was held is counted as written, and Swift's usage read afresh settles it.
   */
  partial?: boolean;
  /** Keys whose cached usage is wrong once Swift has done this request. */
  invalidates?: string[];
  /** Only a 201 (new container) counts; Swift answers 202 to a PUT of an existing container. */
  commitOnlyOn?: number;
  describe?: { level: string; limits: Limits; soft: Limits; container: boolean };
  /** The scope whose usage this request changes, watched against soft limits once Swift has answered. */
  watched?: { scope: Scope; persisted: PersistedQuotaState | undefined };
  /** A delete: usage went down in these scopes (account and/or container), by an amount only Swift knows. */
  shrinks?: { account: string; container?: string };
  /** The proxy's own metadata was changed (by a reseller admin): forget what we held of it. */
  forgets?: string[];
  /** An account whose level this request changes: its soft-limit episodes are looked at again once Swift took it. */
  levelChanged?: string;
  /**
   * A form upload was cut (formpost.ts): Swift's answer to the shortened form is replaced with this refusal,
   * and a file Swift stored only in part is removed.
   */
  cut?: { refusal: FormRefusal; partial: ObjectRef | undefined; unknownPartial: boolean };
  /** A bulk extraction stopped before a file past a limit: Swift's answer gets that refusal added. */
  extractStopped?: { path: string; decision: Denied } | { path: string; reason: string };
  /** Lets writes to the segments of a manifest go on once Swift has answered it (pins.ts). */
  unpin?: () => void;
  /**
   * Swift answers before it has done the write (a manifest with `heartbeat=on` answers 202 at once and reports
   * in the body): the request is settled when the answer ends, as a write that may have happened.
   */
  settleAtEnd?: boolean;
  /** Settled already (by the end of the exchange, or by Swift's answer for requests that hold nothing). */
  settled?: boolean;
}

declare module 'fastify' {
  interface FastifyRequest {
    quota?: RequestState;
    /** What the gate decided, for the access log: admitted, rejected:<kind>, refused:<status>, unchecked. */
    quotaDecision?: string;
    /** The gate has sent `100 Continue` itself (it had to read the body to decide). */
    quotaContinued?: boolean;
    /** An S3 request: the gate's own answers are S3's (XML errors). */
    quotaS3?: boolean;
    /** The request's exchange with Swift, which what it holds lasts for (exchange.ts). */
    quotaExchange?: Exchange;
  }
}

/** Why form, S3 multipart and bulk uploads into a legacy-versioned container are refused. */
const BULK_DELETE_VERSIONING_REFUSED = 'Legacy object versioning (X-Versions-Location / X-History-Location) is on for a container this bulk delete lists: Swift stores objects when it deletes there, which the quota proxy counts only for deletes sent one by one.';
const LEGACY_VERSIONING_REFUSED = 'Legacy object versioning (X-Versions-Location / X-History-Location) is on for this container: form, S3 multipart and bulk uploads into it are not counted by the quota proxy yet; upload the objects one by one.';

/**
 * A copy of several byte ranges of a symlink: every part carries the target's content type, and any link of the
 * chain can be re-pointed (at an object with the same ETag) between the proxy's check and Swift's copy.
 */
const SYMLINK_RANGES_REFUSED = 'A copy of several byte ranges of a symlink is not supported through the quota proxy: copy its target, or one range at a time.';

/** The most of Swift's bulk answer read to add a refusal to (its body is a few lines per failed file). */
const MAX_BULK_ANSWER = 4 * 1024 * 1024;

/** What a request holds: its state's reservations, and any its exchange holds that its state does not list yet. */
function heldBy(request: FastifyRequest): Reservation[] {
  const listed = request.quota?.reservations ?? [];
  const held = request.quotaExchange?.reservations ?? [];
  return held.length === 0 ? listed : [...new Set([...listed, ...held])];
}

/** How long a kept grant is trusted for a write held open before Swift has seen it (authority.ts keeps grants 10 s). */
const GRANT_RECHECK_MS = 10_000;

/** Both releases, in order (either may be missing). */
function chain(first: (() => void) | undefined, second: () => void): () => void {
  return first ? () => (first(), second()) : second;
}

/** The query string of a request target (after the first "?"), or undefined. */
function queryOf(target: string): string | undefined {
  const at = target.indexOf('?');
  return at < 0 ? undefined : target.slice(at + 1);
}

/** Methods that can store something (a COPY is a PUT at its Destination). */
const STORING_METHODS = new Set(['PUT', 'POST', 'COPY']);

function pathOf(target: string): string {
  const at = target.indexOf('?');
  return at < 0 ? target : target.slice(0, at);
}


/** An S3 error answer (s3response.py's XML). */
function s3ErrorBody(error: S3Error, resource?: string): string {
  const escape = (text: string) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
  return `<?xml version='1.0' encoding='UTF-8'?>\n<Error><Code>${error.code}</Code><Message>${escape(error.message)}</Message>${resource ? `<Resource>${escape(resource)}</Resource>` : ''}</Error>`;
}

/** How much of a completion's XML s3api reads (multi_upload.py MAX_COMPLETE_UPLOAD_BODY_SIZE); more, it refuses. */
const S3_COMPLETE_BODY_LIMIT = 2048 * 1024;

/** How the caller of a write is authorised, as far as the proxy's own lookups for it go. */
type Caller =
  | { readonly kind: 'credentials'; readonly credentials: Credentials }
  /** A tempurl signature Swift will accept: it authorises the whole account, or one container. */
  | { readonly kind: 'tempurl'; readonly account: string; readonly container?: string };

/** Swift's tempurl answer to a signature it does not accept. */
const TEMPURL_INVALID: SwiftAnswer = Object.freeze({
  status: 401,
  headers: { 'content-type': 'text/plain; charset=UTF-8' },
  body: Buffer.from('401 Unauthorized: Temp URL invalid\n'),
});

/** Swift's answer to a path it does not know. */
const NOT_FOUND: SwiftAnswer = Object.freeze({
  status: 404,
  headers: { 'content-type': 'text/html; charset=UTF-8' },
  body: Buffer.from('<html><h1>Not Found</h1><p>The resource could not be found.</p></html>'),
});

/** Swift's answer to a request whose If-Match the object does not meet. */
const PRECONDITION_FAILED: SwiftAnswer = Object.freeze({
  status: 412,
  headers: { 'content-type': 'text/html; charset=UTF-8' },
  body: Buffer.from('<html><h1>Precondition Failed</h1><p>A precondition for this request was not met.</p></html>'),
});

/** Swift's answer to an upload announcing more than max_file_size (constraints.check_object_creation). */
const TOO_LARGE: SwiftAnswer = Object.freeze({
  status: 413,
  headers: { 'content-type': 'text/plain' },
  body: Buffer.from('Your request is too large.'),
});

/** Why a form upload is cut: a refusal of Swift's own (the form's signature), or a quota. */
type FormRefusal = { readonly answer: SwiftAnswer } | { readonly decision: Denied };

/** formpost's answer to a form it refuses, as it words it. */
function formAnswer(status: 400 | 401, message: string): SwiftAnswer {
  return { status, headers: { 'content-type': 'text/plain' }, body: Buffer.from(`FormPost: ${message}`) };
}

/** A copy source as the caller's own HEAD found it. */
type SourceHead = { readonly status: number; readonly headers: Record<string, string> };

/** An ETag no object has: Swift refuses a copy pinned to it (412), whatever the source has become. */
const NO_SUCH_ETAG = '"quota-proxy-unknown-source"';

export interface QuotaGateOptions {
  config: Config;
  swift: SwiftClient;
  metrics: Metrics;
  log: FastifyBaseLogger;
  watch: QuotaWatch;
  identities: TokenIdentities;
  capabilities: () => SwiftCapabilities;
  ledger: UsageLedger;
  /** Pins shared with the other processes of a shared ledger (ledger/create.ts); this process's own by default. */
  pins?: PinBoard;
  /** Where the bodies the gate reads (manifests, S3 completions) are held, under a budget. */
  bodyBuffers: BodyBuffers;
}

export class QuotaGate {
  readonly ledger: UsageLedger;
  readonly admissions: Admissions;
  private readonly resellers: ResellerCheck;
  private readonly authority: Authority;
  /** Writes admitted on a kept grant that Swift has not seen yet (grants.ts). */
  private readonly grants: GrantedWrites;
  private config: Config;
  private readonly swift: SwiftClient;
  private readonly metrics: Metrics;
  readonly watch: QuotaWatch;
  private readonly identities: TokenIdentities;
  private readonly capabilities: () => SwiftCapabilities;
  private readonly pins: PinBoard;
  private readonly bodyBuffers: BodyBuffers;
  /**
   * How each container versions its objects, as last read (cached mode): kept apart from its usage, which every
   * delete makes stale, so that a run of deletes reads it once per cache_timeout rather than once each.
   */
  private readonly versionings: LRUCache<string, Versioning | 'none'>;

  constructor({ config, swift, metrics, log, watch, identities, capabilities, ledger, pins, bodyBuffers }: QuotaGateOptions) {
    this.config = config;
    this.pins = pins ?? new ObjectPins();
    this.bodyBuffers = bodyBuffers;
    this.swift = swift;
    this.metrics = metrics;
    this.watch = watch;
    this.identities = identities;
    this.capabilities = capabilities;
    // An account of the service identity's auth system (keystoneauth or tempauth): only that system may grant it.
    this.resellers = new ResellerCheck(swift, `${serviceResellerPrefix(config)}${config.quota.resellerProbeAccount}`);
    this.authority = new Authority(swift);
    this.grants = new GrantedWrites((credentials, account, container) => this.authority.mayWriteNow(credentials, account, container));
    // Writes held here on a grant since revoked would keep writes through other proxies out: asked again while held.
    setInterval(() => void this.grants.sweep(GRANT_RECHECK_MS), GRANT_RECHECK_MS / 2).unref();
    this.ledger = ledger;
    this.admissions = new Admissions({ config, ledger, watch, log });
    this.versionings = new LRUCache({ max: config.quota.cacheMaxEntries, ttl: Math.max(config.quota.cacheTimeoutSeconds * 1000, 1) });
  }

  /** The configuration decisions follow. */
  get currentConfig(): Config {
    return this.config;
  }

  /**
   * Decides by `config` from now on (a reload: config/reload.ts decides which settings may differ). Decisions
   * under way finish by the rules they started with; reservations are untouched.
   */
  useConfig(config: Config): void {
    this.config = config;
    this.admissions.useConfig(config);
    this.watch.useQuota(config.quota);
  }

  /** Whether the token's holder is a reseller admin (asked of Swift; see auth/reseller.ts). */
  isResellerAdmin(token: string | undefined): Promise<boolean> {
    return this.resellers.isResellerAdmin(token);
  }

  /** The account a token's login went through this proxy for, when known. */
  callerOf(token: string | undefined): string | undefined {
    return this.identities.caller(token);
  }

  /** Who asked and what, for quota events. */
  private eventContext(request: FastifyRequest, transactionId?: string): EventContext {
    return requestEventContext(request, this.identities.caller(callerToken(swiftView(request.raw).headers)), transactionId);
  }

  // ---- admission ---------------------------------------------------------------------------------------

  /**
   * Decides what a request needs before it goes to Swift. Answers synchronously (undefined) for the requests
   * that need no quota decision, most reads among them, so that those cost no promise; otherwise the returned
   * promise settles once the request may go on (or has been answered).
   */
  admit(request: FastifyRequest, reply: FastifyReply): Promise<void> | undefined {
    const view = swiftView(request.raw);
    // `OPTIONS *` and the like: no URL undici can send, and one Swift answers 404 to.
    if (!view.target.startsWith('/') && !/^https?:\/\//i.test(view.target)) {
      this.answer(reply, NOT_FOUND);
      return undefined;
    }
    const capabilities = this.capabilities();
    const query = queryOf(view.target);
    // bulk comes before s3api: a PUT with ?extract-archive is its, S3 credentials or not (it extracts with the
    // request's X-Auth-Token).
    const extract = view.method === 'PUT' && capabilities.has('bulk_upload') && SwiftQuery.parse(query).last('extract-archive') !== undefined;
    // s3api takes any other request with S3 credentials, whatever its path (/v1/... included).
    const s3 = !extract && capabilities.has('s3api') && isS3Request(view.headers, query);
    const writes = STORING_METHODS.has(view.method);
    if (writes && view.hostAddressing?.kind === 'unknown') {
      const { middleware } = view.hostAddressing;
      const why = `Swift runs ${middleware}, so this host name may address any account, and the quota proxy's config has no [filter:${middleware}] section to read it with. Use the proxy's address, or ask the operator to add the section.`;
      if (s3) {
        request.quotaS3 = true;
        this.answerS3(reply, { status: 501, code: 'NotImplemented', message: why });
      } else {
        this.refuse(reply, 501, `Not Implemented: ${why}`);
      }
      return undefined;
    }
    if (s3 && writes && view.hostAddressing?.kind === 'host') {
      // Which of s3api and domain_remap reads the request first depends on Swift's pipeline order, and a
      // CNAME'd host changes what s3api signs: neither can be read for certain.
      request.quotaS3 = true;
      this.answerS3(reply, { status: 501, code: 'NotImplemented', message: 'S3 writes on a host name that domain_remap or cname_lookup maps are not supported through the quota proxy: use the S3 endpoint itself.' });
      return undefined;
    }
    if (s3) return this.admitChecked(request, reply, () => this.admitS3(view, query, request, reply), undefined);
    if (!view.path) return undefined;
    const intent = requestIntent({ method: view.method, path: view.path, headers: view.headers, framing: view.framing, formpost: capabilities.has('formpost'), bulk: capabilities.has('bulk_upload'), bulkDelete: capabilities.has('bulk_delete') });
    if (intent.type === 'pass') return undefined;
    return this.admitChecked(request, reply, () => this.admitIntent(intent, view, request, reply), intent);
  }

  /** Runs an admission, and turns usage that cannot be read into the answer fail_mode asks for. */
  private async admitChecked(request: FastifyRequest, reply: FastifyReply, admission: () => Promise<void>, intent: Intent | undefined): Promise<void> {
    try {
      await admission();
      const written = intent && !reply.sent ? writtenObject(intent) : undefined;
      const entering = written && this.enterWrite(written, request, reply);
      if (entering) await entering;
    } catch (error) {
      this.settle(request, undefined);
      if (intent?.type === 'describe') {
        // Reads never fail because the proxy could not read usage: they go on without quota headers.
        request.log.debug({ err: error }, 'quota headers left out');
        return;
      }
      if (error instanceof PinCycle) {
        reply.header('retry-after', '1');
        return this.refuse(reply, 503, `Service Unavailable: ${error.refusal}`);
      }
      if (!(error instanceof UpstreamUnavailableError) && !(error instanceof LedgerUnavailableError)) throw error;
      const cause = error instanceof LedgerUnavailableError ? 'ledger' : 'swift';
      if (this.config.quota.failMode === 'open') {
        this.metrics.checkFailures.inc({ cause, action: 'admitted' });
        request.quotaDecision = 'unchecked';
        request.log.warn({ err: error }, 'usage unavailable, letting the write through (fail_mode = open)');
        return;
      }
      this.metrics.checkFailures.inc({ cause, action: 'refused' });
      request.log.warn({ err: error }, 'usage unavailable, refusing the write (fail_mode = closed)');
      reply.header('retry-after', String(this.config.quota.retryAfterSeconds));
      this.refuse(reply, 503, error instanceof LedgerUnavailableError
        ? 'Service Unavailable: the quota proxy cannot reach its usage ledger; try again later.'
        : 'Service Unavailable: the quota proxy cannot read usage from Swift; try again later.');
    }
  }

  // ---- S3 --------------------------------------------------------------------------------------------

  /**
   * An S3 request (s3api): read as the Swift requests s3api makes of it, and admitted as those. The caller is
   * the tempauth user whose access key signed it (`account:user`, the key is the secret): the signature is
   * checked as s3api checks it, and the proxy asks Swift with that user's own token.
   */
  private async admitS3(view: SwiftView, query: string | undefined, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const rawPath = pathOf(view.target);
    const host = view.upstream.get('host') ?? view.headers.get('host') ?? this.config.upstream.host;
    if (!this.config.s3 && STORING_METHODS.has(view.method) && isIP(splitHostPort(host).domain) === 0) {
      // s3api's storage_domain is not in /info: without its section, a host name may be a bucket's.
      request.quotaS3 = true;
      return this.answerS3(reply, {
        status: 501,
        code: 'NotImplemented',
        message: "S3 writes on a host name need Swift's [filter:s3api] section in the quota proxy's config (its storage_domain says which host names are buckets).",
      });
    }
    const s3Config = this.config.s3 ?? DEFAULT_S3_CONFIG;
    const address = s3Address(rawPath, host, s3Config);
    if (!address) {
      // s3api answers 400 InvalidURI itself; a write is answered so here, so that it never goes on uncounted.
      if (!STORING_METHODS.has(view.method)) return;
      request.quotaS3 = true;
      return this.answerS3(reply, { status: 400, code: 'InvalidURI', message: "Couldn't parse the specified URI." });
    }
    const action = s3Action(view.method, address, query, view.headers, s3Config);
    if (action.kind === 'refuse') {
      request.quotaS3 = true;
      return this.answerS3(reply, action.error);
    }
    const header = (name: string) => view.headers.get(name);
    const credential = s3Credential({ method: view.method, rawPath, decodedPath: address.decodedPath, query, rawHeaders: request.raw.rawHeaders, bucketInHost: address.bucketInHost }, header);
    if ('code' in credential) {
      // s3api answers it, before anything is written; a write is answered so here, never passed on uncounted.
      if (action.kind === 'pass') return;
      request.quotaS3 = true;
      return this.answerS3(reply, credential);
    }
    const user = this.s3User(credential.accessKey);
    if (action.kind === 'pass') {
      if (action.shrinks && user) {
        const account = accountOfUser(user, this.config.resellerPrefix);
        request.quota = {
          invalidates: [containerKey(account, action.shrinks.bucket), containerKey(account, `${action.shrinks.bucket}${SEGMENTS_SUFFIX}`), accountKey(account)],
          shrinks: { account },
        };
      }
      return;
    }
    request.quotaS3 = true;
    if (!user) {
      // Access keys tempauth does not know (Keystone's, through s3token) cannot be tied to an account here.
      return this.answerS3(reply, { status: 403, code: 'AccessDenied', message: 'The quota proxy counts S3 writes of tempauth users only: this access key is not one.' });
    }
    const signed = { method: view.method, rawPath, decodedPath: address.decodedPath, query, rawHeaders: request.raw.rawHeaders, bucketInHost: address.bucketInHost };
    const error = checkS3Signature(signed, header, credential, user.key, s3Config, Date.now() / 1000);
    if (error) return this.answerS3(reply, error);
    const account = accountOfUser(user, this.config.resellerPrefix);
    const credentials: Credentials = { headers: { 'x-auth-token': await this.swift.userToken(user) }, key: `s3 ${user.account}:${user.user}` };

    // The Swift request s3api makes: its path, the client's headers (s3api passes them on), no client query.
    const swiftRequest = (method: string, container: string, object: string | undefined, headers: SwiftHeaders, rawQuery?: string, copyRange?: number, framing = view.framing): SwiftView => {
      const decoded = `/v1/${account}/${container}${object === undefined ? '' : `/${object}`}`;
      return {
        method,
        target: view.target,
        headers,
        path: { version: 'v1', account, container, ...(object === undefined ? {} : { object }), query: SwiftQuery.parse(rawQuery), decoded, rawQuery },
        framing,
        upstream: view.upstream,
        s3: { credentials, ...(copyRange !== undefined ? { copyRange } : {}) },
      };
    };
    const admitAs = async (swift: SwiftView) => {
      const intent = requestIntent({ method: swift.method, path: swift.path!, headers: swift.headers, framing: swift.framing });
      if (intent.type === 'pass') return;
      await this.admitIntent(intent, swift, request, reply);
      // A part, like a Swift object, is on its way until Swift answers: a completion checked meanwhile reads it
      // once it has landed.
      const written = reply.sent ? undefined : writtenObject(intent);
      const entering = written && this.enterWrite(written, request, reply);
      if (entering) await entering;
    };
    switch (action.kind) {
      case 'bucket-create':
        return admitAs(swiftRequest('PUT', action.bucket, undefined, view.headers));
      case 'bucket-update':
        return admitAs(swiftRequest('POST', action.bucket, undefined, view.headers));
      case 'object-put': {
        if (!action.copy) return admitAs(swiftRequest('PUT', action.container, action.object, view.headers));
        const from = `/${encodeURIComponent(action.copy.container)}/${action.copy.object.split('/').map(encodeURIComponent).join('/')}`;
        const versionQuery = action.copy.versionId === undefined ? undefined : `version-id=${encodeURIComponent(action.copy.versionId)}`;
        // s3api sends every x-amz-copy-source PUT with CONTENT_LENGTH 0, whatever body the client sent: Swift copies.
        const zeroBody = { contentLength: '0', transferEncoding: undefined };
        return admitAs(swiftRequest('PUT', action.container, action.object, view.headers.with({ 'x-copy-from': from }), versionQuery, action.copyRange, zeroBody));
      }
      case 'initiate':
        return this.admitS3Initiate(swiftRequest('PUT', `${action.bucket}${SEGMENTS_SUFFIX}`, undefined, view.headers), action.key, request, reply);
      case 'complete':
        return this.admitS3Complete(swiftRequest('PUT', action.bucket, action.key, view.headers), action.uploadId, request, reply);
    }
  }

  private s3User(accessKey: string): TempauthUser | undefined {
    // The key is bytes here and UTF-8 text to s3api: only ASCII keys name the same user on both sides.
    if (!/^[\x20-\x7e]*$/.test(accessKey)) return undefined;
    return this.config.users.find((user) => `${user.account}:${user.user}` === accessKey);
  }

  /**
   * POST ?uploads: s3api makes `<bucket>+segments` if it is missing (one more container) and stores a 0-byte
   * marker object in it (one more object). Both are admitted.
   */
  private async admitS3Initiate(segments: SwiftView, key: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { account, container } = segments.path as { account: string; container: string };
    const { verdict, caller } = await this.authorise(segments, account, undefined, undefined);
    if (!verdict.allowed) return this.answer(reply, verdict.answer);
    const levelInfo = await this.admissions.levelOf(account);
    const accountScope = this.admissions.scope(account, undefined, levelInfo);
    const containerScope = this.admissions.scope(account, container, levelInfo);
    if (await this.refusedForArchiveVersioning(account, container, reply)) return;
    const reservations: Reservation[] = [];
    if (this.admissions.enforces(accountScope)) {
      const made = await this.admissions.admit(this.containerWrite(accountScope, container, caller, request));
      if (!made.admitted) return this.reject(reply, made.decision);
      reservations.push(this.hold(request, reply, made.reservation));
    }
    if (this.admissions.enforces(containerScope)) {
      const marker = await this.admissions.admit({ scope: containerScope, add: { count: 1, bytes: 0 }, target: key, context: () => this.eventContext(request) });
      if (!marker.admitted) {
        for (const reservation of reservations) this.ledger.release(reservation);
        return this.reject(reply, marker.decision);
      }
      reservations.push(this.hold(request, reply, marker.reservation));
    }
    request.quota = { reservations, invalidates: [accountKey(account), containerScope.key], partial: true };
    request.quotaDecision = 'admitted';
  }

  /**
   * POST ?uploadId: s3api stores an SLO manifest of the parts the request lists, as the bucket's object.
   * Which parts it lists is in the body; a manifest lists each part at most once (part numbers strictly
   * increase), so the manifest of every part the upload has is the largest it can be: that is what is held.
   * The upload's parts are pinned (no part is added or changed meanwhile through this proxy).
   */
  private async admitS3Complete(target: SwiftView, uploadId: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { account, container, object } = target.path as { account: string; container: string; object: string };
    await this.unpinned(account, container, object);
    const { verdict, caller } = await this.authorise(target, account, container, object);
    if (!verdict.allowed) return this.answer(reply, verdict.answer);
    const levelInfo = await this.admissions.levelOf(account);
    const scope = this.admissions.scope(account, container, levelInfo);
    if (await this.refusedForArchiveVersioning(account, container, reply)) return;
    if (!this.admissions.enforces(scope)) return;
    // s3api lists the parts to complete only once it has read the request's XML: a client holding the body after
    // the decision could change a part meanwhile, through another proxy whose writes this one cannot see. So
    // the body is read first (as far as s3api reads it: past that it refuses the request), and the parts after.
    const completion = await this.bodyBuffers.read(request, reply, account, S3_COMPLETE_BODY_LIMIT);
    if (completion === undefined) return; // answered: 503 past the buffer budget, 408 for a stalled body
    request.body = completion.body;
    const segments = `${container}${SEGMENTS_SUFFIX}`;
    const prefix = `${object}/${uploadId}/`;
    const unpinPrefix = await this.pins.pin([], [ObjectPins.key(account, segments, prefix)], request.raw);
    let unpin = unpinPrefix;
    try {
      const parts = await this.uploadParts(caller, account, segments, prefix);
      const manifest = Buffer.from(JSON.stringify(parts.map((part) => ({ path: `/${segments}/${part}` }))));
      const sized = await this.manifestSize(manifest, account, 'v1', caller, request.raw);
      unpin = () => {
        sized.unpin();
        unpinPrefix();
      };
      const holding = this.pins.versioningSteady(account, container); // as for admitObjectWrite
      const steady = typeof holding === 'function' ? holding : await holding;
      this.endsWith(reply, steady);
      const result = await this.admissions.admit({
        scope,
        add: { count: 1, bytes: sized.stored },
        target: object,
        replaced: () => this.replacedObject(caller, { account, container, object }),
        context: () => this.eventContext(request),
        alsoCounted: [{ scope: this.admissions.scope(account, undefined, levelInfo), snapshot: levelInfo.snapshot }],
      });
      if (!result.admitted) {
        unpin();
        return this.reject(reply, result.decision);
      }
      if (result.reservation.keepsVersions) steady();
      else unpin = chain(unpin, steady);
      request.quota = {
        reservations: [this.hold(request, reply, result.reservation)],
        watched: { scope, persisted: result.snapshot.persisted },
        invalidates: [scope.key, containerKey(account, segments)],
        unpin,
        // s3api answers 200 at once and reports the outcome in the streamed body.
        settleAtEnd: true,
        partial: true,
      };
      this.endsWith(reply, unpin);
      request.quotaDecision = 'admitted';
    } catch (error) {
      unpin();
      throw error;
    }
  }

  /** The part objects of a multipart upload (`<key>/<uploadId>/<n>`), as the caller may list them. */
  private async uploadParts(caller: Caller, account: string, segments: string, prefix: string): Promise<string[]> {
    if (caller.kind !== 'credentials') return [];
    const parts: string[] = [];
    for (let marker = ''; ; ) {
      const path = `${encodePath('v1', account, segments)}?format=json&prefix=${encodeURIComponent(prefix)}&marker=${encodeURIComponent(marker)}`;
      const page = await this.swift.asCaller('GET', path, { ...caller.credentials.headers, accept: 'application/json' }, 'listing', 16 * 1024 * 1024);
      if (page.status === 204 || page.status === 404 || !page.body) return parts;
      if (page.status >= 300) throw new UpstreamUnavailableError(`Swift answered ${page.status} to listing the parts of ${prefix}`);
      const items = JSON.parse(page.body.toString('utf8')) as Array<{ name: string }>;
      parts.push(...items.map((item) => item.name).filter((name) => /^\d+$/.test(name.slice(prefix.length))));
      if (items.length === 0) return parts;
      marker = items[items.length - 1]!.name;
    }
  }

  private async admitIntent(intent: Exclude<Intent, { type: 'pass' }>, view: SwiftView, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    switch (intent.type) {
      case 'refuse':
        return this.refuse(reply, intent.status, intent.reason);
      case 'level-change':
        return this.admitLevelChange(intent.account, intent.level, view, request, reply);
      case 'protected-metadata': {
        if (!(await this.resellers.isResellerAdmin(callerToken(view.headers)))) {
          const verdict = await this.authority.mayWrite(callerCredentials(view.headers, view.s3), intent.account);
          if (!verdict.allowed) return this.answer(reply, verdict.answer);
          return this.refuse(reply, 403, 'Forbidden: the quota proxy\'s own metadata (X-*-Meta-Quota-Proxy-*) may be changed by reseller admins only.');
        }
        if (intent.then.type !== 'pass') await this.admitIntent(intent.then, view, request, reply);
        if (reply.sent) return;
        const key = scopeKey(intent.account, intent.container);
        request.quota = { ...request.quota, invalidates: [...(request.quota?.invalidates ?? []), key], forgets: [key] };
        return;
      }
      case 'describe': {
        const { level, limits, soft } = await this.admissions.levelOf(intent.account);
        // A container's reader need not be the account's: quota details go to those Swift lets read the account.
        if (intent.container !== undefined && !(await this.authority.mayReadAccount(callerCredentials(view.headers, view.s3), intent.account))) return;
        request.quota = { describe: { level, limits, soft, container: intent.container !== undefined } };
        return;
      }
      case 'container-create':
        return this.admitContainerCreate(intent.account, intent.container, view, request, reply);
      case 'container-delete':
        request.quota = {
          invalidates: [accountKey(intent.account), containerKey(intent.account, intent.container)],
          forgets: [containerKey(intent.account, intent.container)],
          shrinks: { account: intent.account },
        };
        return;
      case 'object-update':
        await this.unpinned(intent.account, intent.container, intent.object);
        return;
      case 'object-delete':
        return this.admitObjectDelete(intent, view, request, reply);
      case 'versioning-change':
        return this.admitVersioningChange(intent, view, request, reply);
      case 'object-write':
        return this.admitObjectWrite(intent, view, request, reply);
      case 'form-upload':
        return this.admitFormUpload(intent, view, request, reply);
      case 'extract-archive':
        return this.admitExtract(intent, view, request, reply);
      case 'bulk-delete':
        return this.admitBulkDelete(intent.account, request, reply);
    }
  }

  private async admitLevelChange(account: string, level: string | undefined, view: SwiftView, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (!(await this.resellers.isResellerAdmin(callerToken(view.headers)))) {
      const verdict = await this.authority.mayWrite(callerCredentials(view.headers, view.s3), account);
      if (!verdict.allowed) return this.answer(reply, verdict.answer);
      this.metrics.levelChanges.inc({ outcome: 'forbidden' });
      return this.refuse(reply, 403, 'Forbidden: only a reseller admin may set or remove an account quota level.');
    }
    if (level !== undefined && !this.config.quota.levels.byLevel.has(level)) {
      this.metrics.levelChanges.inc({ outcome: 'invalid' });
      return this.refuse(reply, 400, `Unknown quota level "${level}". Valid levels: ${this.config.quota.levels.names.join(', ')}.`);
    }
    this.metrics.levelChanges.inc({ outcome: 'passed' });
    request.quota = { invalidates: [accountKey(account)], levelChanged: account };
  }

  /**
   * Who Swift will take the write for. Swift's tempurl middleware takes over any request carrying tempurl
   * parameters: its signature is checked here as Swift checks it. Anyone else is asked of Swift (authority.ts).
   */
  private async authorise(view: SwiftView, account: string, container: string | undefined, object: string | undefined): Promise<{ verdict: Verdict; caller: Caller }> {
    const capabilities = this.capabilities();
    const params = capabilities.has('tempurl') && view.method !== 'OPTIONS' ? tempUrlParams(view.path!.query) : undefined;
    if (!params) {
      const credentials = callerCredentials(view.headers, view.s3);
      return { verdict: await this.authority.mayWrite(credentials, account, container), caller: { kind: 'credentials', credentials } };
    }
    const denied = { verdict: { allowed: false, answer: TEMPURL_INVALID } as Verdict, caller: { kind: 'tempurl', account } as Caller };
    // tempurl signs object requests only (a container request with its parameters is refused).
    if (container === undefined || object === undefined) return denied;
    const check = async (fresh: boolean) => {
      const notBefore = fresh ? this.ledger.now() + 1 : 0;
      const [accountUsage, containerUsage] = await Promise.all([this.ledger.read(accountKey(account), notBefore), this.ledger.read(containerKey(account, container), notBefore)]);
      return checkTempUrl({
        method: view.method,
        version: view.path!.version,
        account,
        container,
        object,
        params,
        keys: { account: accountUsage.tempUrlKeys ?? [], container: containerUsage.tempUrlKeys ?? [] },
        methods: capabilities.tempurlMethods,
        digests: capabilities.tempurlDigests,
        nowSeconds: Date.now() / 1000,
      });
    };
    // Keys may have changed since they were read: a signature is refused only on keys read just now.
    let result = await check(false);
    if (!result.valid) result = await check(true);
    if (!result.valid) return denied;
    return { verdict: { allowed: true }, caller: { kind: 'tempurl', account, ...(result.scope === 'container' ? { container } : {}) } };
  }

  /** A HEAD on the caller's behalf, with its own rights: it learns nothing it could not read itself. */
  private headFor(caller: Caller, ref: { account: string; container: string; object?: string }, query: string, version = 'v1'): Promise<{ status: number; headers: Record<string, string> }> {
    return this.readFor(caller, 'HEAD', ref, query, version);
  }

  /** A HEAD or GET on the caller's behalf (a GET's body up to `maxBody` bytes, the rest left unread). */
  private readFor(caller: Caller, method: 'HEAD' | 'GET', ref: { account: string; container: string; object?: string }, query: string, version = 'v1', maxBody = 0, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string>; body?: Buffer }> {
    const path = encodePath(version, ref.account, ref.container, ref.object) + (query ? `?${query}` : '');
    const target = ref.object === undefined ? 'container' : 'object';
    if (caller.kind === 'credentials') return this.swift.asCaller(method, path, { ...caller.credentials.headers, ...headers }, target, maxBody, true);
    // A tempurl signature lets Swift read within its scope (the account, or the one container).
    const inScope = ref.account === caller.account && (caller.container === undefined || caller.container === ref.container);
    if (!inScope) return Promise.resolve({ status: 401, headers: {} });
    return method === 'HEAD' ? this.swift.head(path, target) : this.swift.getAsService(path, target, maxBody, headers);
  }

  /**
   * One more container in an account (`scope`). A PUT of an existing container is an update (Swift answers
   * 202), not a new container: it may pass on that credit, but holds its place until Swift has answered.
   */
  private containerWrite(scope: Scope, container: string, caller: Caller, request: FastifyRequest): Write {
    return {
      scope,
      add: { count: 1, bytes: 0 },
      target: container,
      replaced: async () => {
        const { status } = await this.headFor(caller, { account: scope.account, container }, '');
        return status >= 200 && status < 300 ? { count: 1, bytes: 0 } : undefined;
      },
      context: () => this.eventContext(request),
    };
  }

  private async admitContainerCreate(account: string, container: string, view: SwiftView, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { verdict, caller } = await this.authorise(view, account, undefined, undefined);
    if (!verdict.allowed) return this.answer(reply, verdict.answer);
    const levelInfo = await this.admissions.levelOf(account);
    const scope = this.admissions.scope(account, undefined, levelInfo);
    if (!this.admissions.enforces(scope)) return;
    const result = await this.admissions.admit(this.containerWrite(scope, container, caller, request));
    if (!result.admitted) return this.reject(reply, result.decision);
    request.quota = {
      reservations: [this.hold(request, reply, result.reservation)],
      // s3api answers 200 to a new bucket and 409 to an existing one.
      commitOnlyOn: view.s3 ? 200 : 201,
      invalidates: [containerKey(account, container)],
      watched: { scope, persisted: result.snapshot.persisted },
    };
    request.quotaDecision = 'admitted';
  }

  /**
   * A container's versioning changes. Object writes through this proxy that decided on the versioning as it was
   * (counting on what an overwrite, or writes of one name, free) go first; those that have not read it yet wait
   * until Swift has answered the change (pins.ts). Turning object_versioning on for the first time makes the
   * hidden versions container: one more in the account.
   */
  private async admitVersioningChange(intent: Extract<Intent, { type: 'versioning-change' }>, view: SwiftView, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { account, container } = intent;
    const key = containerKey(account, container);
    const changed = await this.pins.versioningChange(account, container);
    this.endsWith(reply, changed);
    if (intent.then.type !== 'pass') await this.admitIntent(intent.then, view, request, reply);
    if (reply.sent) return;
    const reservations = [...(request.quota?.reservations ?? [])];
    if (intent.enablesObjectVersioning && (await this.ledger.read(key, this.admissions.readNotBefore())).versioning?.kind !== 'object') {
      const { verdict, caller } = await this.authorise(view, account, undefined, undefined);
      if (!verdict.allowed) return this.answer(reply, verdict.answer);
      const levelInfo = await this.admissions.levelOf(account);
      const scope = this.admissions.scope(account, undefined, levelInfo);
      if (this.admissions.enforces(scope)) {
        const hidden = { ...this.containerWrite(scope, versionsContainer(container), caller, request), replaced: undefined };
        const result = await this.admissions.admit(hidden);
        if (!result.admitted) {
          for (const reservation of reservations) this.ledger.release(reservation);
          return this.reject(reply, result.decision);
        }
        reservations.push(this.hold(request, reply, result.reservation));
        request.quotaDecision = 'admitted';
      }
    }
    const invalidates = [...(request.quota?.invalidates ?? []), key, accountKey(account)];
    const unpin = chain(request.quota?.unpin, changed);
    request.quota = { ...request.quota, reservations, invalidates, forgets: [...(request.quota?.forgets ?? []), key], unpin };
  }

  /**
   * An object delete frees usage, except where legacy versioning stores on a delete: history mode archives the
   * object and a delete marker in the location; stack mode copies the newest version back over the object (the
   * container may grow by it). Those are admitted, the object's writes and deletes taking turns as for an
   * overwrite, and the stack's versions held still.
   */
  private async admitObjectDelete(intent: Extract<Intent, { type: 'object-delete' }>, view: SwiftView, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { account, container, object } = intent;
    await this.unpinned(account, container, object);
    // Decided on the container's versioning: held still until Swift has answered (in every process), or a change
    // made meanwhile (history mode turned on) would have Swift archive the object uncounted (as writes do).
    const holding = this.pins.deleteSteady(account, container);
    this.endsWith(reply, typeof holding === 'function' ? holding : await holding);
    const key = containerKey(account, container);
    const freed: RequestState = { invalidates: [key], shrinks: { account, container } };
    const versioning = await this.versioningOf(key);
    if (versioning?.kind !== 'archive') {
      request.quota = freed;
      return;
    }
    const notBefore = this.admissions.readNotBefore();
    const { verdict, caller } = await this.authorise(view, account, container, object);
    if (!verdict.allowed) return this.answer(reply, verdict.answer);
    const levelInfo = await this.admissions.levelOf(account);
    const scope = this.admissions.scope(account, container, levelInfo);
    const invalidates = [key, containerKey(account, versioning.location)];
    if (!this.admissions.enforces(scope)) {
      request.quota = { ...freed, invalidates };
      return;
    }
    const releases = [await this.pins.exclusive(ObjectPins.key(account, container, object), request.raw)];
    const unpin = () => releases.forEach((release) => release());
    this.endsWith(reply, unpin);
    try {
      const current = await this.replacedObject(caller, { account, container, object });
      let write: Write | undefined;
      if (versioning.mode === 'history') {
        write = { scope: this.admissions.scope(account, versioning.location, levelInfo), add: archivedByDelete(versioning, current)!, target: undefined, context: () => this.eventContext(request) };
      } else {
        const prefix = archivePrefix(object);
        releases.push(await this.pins.pin([], [ObjectPins.key(account, versioning.location, prefix)], request.raw));
        const restored = restorable(await this.listVersions(account, versioning.location, prefix));
        if (restored) write = { scope, add: restored, target: object, replaced: () => Promise.resolve(current), context: () => this.eventContext(request), notBefore };
      }
      const reservations: Reservation[] = [];
      if (write) {
        const result = await this.admissions.admit(write);
        if (!result.admitted) {
          unpin();
          return this.reject(reply, result.decision);
        }
        reservations.push(this.hold(request, reply, result.reservation));
        request.quotaDecision = 'admitted';
      }
      // Swift archives before it deletes, and writes a marker even for a missing object (then answers 404).
      request.quota = { ...freed, reservations, invalidates, partial: true, unpin };
    } catch (error) {
      unpin();
      throw error;
    }
  }

  /** The versions of one object in a legacy location (`<prefix>`), as the service reads them. */
  private async listVersions(account: string, container: string, prefix: string): Promise<Array<{ name: string; bytes: number; content_type?: string }>> {
    const versions: Array<{ name: string; bytes: number; content_type?: string }> = [];
    for (let marker = ''; ; ) {
      const path = `${encodePath('v1', account, container)}?format=json&prefix=${encodeURIComponent(prefix)}&marker=${encodeURIComponent(marker)}`;
      const page = await this.swift.getAsService(path, 'listing', 64 * 1024 * 1024);
      if (page.status === 204 || page.status === 404 || !page.body) return versions;
      if (page.status >= 300) throw new UpstreamUnavailableError(`Swift answered ${page.status} to listing the versions ${prefix} in ${container}`);
      const items = JSON.parse(page.body.toString('utf8')) as Array<{ name: string; bytes: number; content_type?: string }>;
      if (items.length === 0) return versions;
      versions.push(...items);
      marker = items[items.length - 1]!.name;
    }
  }

  /**
   * A container's versioning where no usage read is needed otherwise (deletes). In precise mode it is read as a
   * check's usage is (sent after the request came: a change made elsewhere is seen); in cached mode remembered for
   * cache_timeout, as a delete's invalidation of the usage reading would otherwise cost a HEAD per delete, and
   * forgotten when the versioning changes through this proxy.
   */
  private async versioningOf(key: string): Promise<Versioning | undefined> {
    if (this.config.quota.preciseMode) return (await this.ledger.read(key, this.admissions.readNotBefore())).versioning;
    const known = this.versionings.get(key);
    if (known !== undefined) return known === 'none' ? undefined : known;
    const { versioning } = await this.ledger.read(key);
    this.versionings.set(key, versioning ?? 'none');
    return versioning;
  }

  /**
   * Form uploads and S3 multipart uploads (and bulk extractions, file by file) into a container with legacy versioning would archive the objects
   * they replace, file by file, inside Swift: not counted yet, so such containers take none through the proxy
   * (object_versioning counts versions in the container itself and takes them).
   */
  private async refusedForArchiveVersioning(account: string, container: string, reply: FastifyReply): Promise<boolean> {
    if ((await this.versioningOf(containerKey(account, container)))?.kind !== 'archive') return false;
    this.refuse(reply, 400, LEGACY_VERSIONING_REFUSED);
    return true;
  }

  /**
   * The size of what Swift will store for a copy, and the ETag that pins it: the source is read as Swift's copy
   * middleware will read it (same query, same Range), with the caller's own rights, and the copy goes to Swift with
   * `If-Match` on that ETag, so Swift copies that very version or nothing. Undefined when the caller cannot
   * read the source now: Swift will refuse the copy as well (the pin makes sure of it).
   */
  private async sizeCopy(copy: CopySource, target: ObjectRef, caller: Caller, view: SwiftView, manifestPut: boolean, owner: object, source?: SourceHead): Promise<{ size: number; unpin?: () => void } | 'unsizable' | 'precondition-failed' | 'symlink-ranges'> {
    const { status, headers } = source ?? (await this.headFor(caller, copy.ref, copy.query ?? ''));
    if (view.s3) return this.boundS3Copy(view, status, countHeader(headers['content-length']));
    const etag = headers.etag;
    if (status < 200 || status >= 300 || !etag) {
      view.upstream.set('if-match', NO_SUCH_ETAG);
      return 'unsizable';
    }
    const quoted = etag.startsWith('"') || etag.startsWith('W/') ? etag : `"${etag}"`;
    const asked = view.headers.get('if-match');
    if (asked !== undefined) {
      // The client's own condition: Swift would copy only a version it names.
      const tags = asked.split(',').map((tag) => tag.trim().replace(/^W\//, '').replace(/^"|"$/g, ''));
      if (!tags.includes('*') && !tags.includes(quoted.replace(/^W\//, '').replace(/^"|"$/g, ''))) return 'precondition-failed';
    }
    view.upstream.set('if-match', quoted);
    // Swift copies what its GET of the source serves for the request's Range (copy-range.ts), sent as read.
    const range = copyRange(view.headers.get('range'));
    if (range.forward) view.upstream.set('range', range.forward.value);
    const served = servedSource(range.specs, headers, copy.query);
    if (served.status === 416) return 'unsizable'; // Swift's answer; nothing is stored
    // A manifest copied as a manifest (multipart-manifest=get of an SLO), or a copy made into one
    // (multipart-manifest=put): SLO stores a manifest of its own, built from what the copy reads.
    const query = SwiftQuery.parse(copy.query);
    const manifestGet = query.last('multipart-manifest') === 'get' && swiftTrue(headers['x-static-large-object']);
    if (!manifestPut && !manifestGet) {
      if (served.parts === 1) {
        const bound = boundingRange(range.specs, headers, copy.query);
        if (bound !== undefined) view.upstream.set('range', bound);
        if (query.last('multipart-manifest') === 'get') return this.sizeManifestTwin(copy, target, caller, view, served.size, quoted, bound, owner);
        return { size: served.size };
      }
      return headers['content-location'] === undefined ? this.sizeMultipartCopy(copy, caller, range.specs, quoted, owner) : 'symlink-ranges';
    }
    const limit = this.capabilities().maxManifestSize;
    // Read with the same Range: what SLO is given is what Swift serves the copy (a multipart body is no manifest);
    // and at the ETag the copy is pinned to, or the source read could be another manifest than the one copied.
    const ranged: Record<string, string> = { 'if-match': quoted, ...(range.forward?.value === undefined ? {} : { range: range.forward.value }) };
    const read = await this.readFor(caller, 'GET', copy.ref, manifestGet ? `${copy.query}&format=raw` : copy.query ?? '', view.path!.version, limit, ranged);
    if (read.status < 200 || read.status >= 300 || read.body === undefined) {
      // Not read (gone since the HEAD, or past max_manifest_size): never passed uncounted on that reading alone.
      view.upstream.set('if-match', NO_SUCH_ETAG);
      return 'unsizable';
    }
    // The manifest is the copy's: its segments are looked up in the account copied into.
    const sized = await this.manifestSize(read.body, target.account, view.path!.version, caller, owner);
    return { size: sized.stored, unpin: sized.unpin };
  }

  /**
   * A copy with `multipart-manifest=get` of what is no SLO manifest now: Swift copies it as a manifest if it has
   * become one with the same ETag (manifest-twin.ts). Counted at the larger of its bytes and what SLO would store
   * from them, read at the ETag and Range the copy is pinned to; the segments are pinned as a manifest's are.
   */
  private async sizeManifestTwin(copy: CopySource, target: ObjectRef, caller: Caller, view: SwiftView, size: number, etag: string, range: string | undefined, owner: object): Promise<{ size: number; unpin?: () => void } | 'unsizable'> {
    const limit = this.capabilities().maxManifestSize;
    // Past max_manifest_size SLO refuses it as a manifest (413); an empty body is no manifest.
    if (size === 0 || size > limit) return { size };
    const pinned: Record<string, string> = { 'if-match': etag, ...(range === undefined ? {} : { range }) };
    const read = await this.readFor(caller, 'GET', copy.ref, copy.query ?? '', view.path!.version, limit, pinned);
    if (read.status < 200 || read.status >= 300 || read.body === undefined) {
      view.upstream.set('if-match', NO_SUCH_ETAG);
      return 'unsizable';
    }
    const manifest = manifestOfTwin(read.body);
    if (manifest === undefined) return { size };
    const sized = await this.manifestSize(manifest, target.account, view.path!.version, caller, owner);
    return { size: Math.max(size, sized.stored), unpin: sized.unpin };
  }

  /**
   * A copy of several ranges stores every part with the source's content type, which a POST changes without
   * changing the ETag the copy is pinned to: the source is pinned (pins.ts) and read again once the writes to
   * it already on their way have landed, so the content type counted is the one Swift copies.
   */
  private async sizeMultipartCopy(copy: CopySource, caller: Caller, specs: ByteRangeSpec[] | undefined, etag: string, owner: object): Promise<{ size: number; unpin: () => void } | 'unsizable'> {
    const key = ObjectPins.key(copy.ref.account, copy.ref.container, copy.ref.object);
    const unpin = await this.pins.pin([key], [], owner);
    try {
      const draining = this.pins.drained([key]);
      if (draining) await draining;
      const { status, headers } = await this.headFor(caller, copy.ref, copy.query ?? '');
      if (status >= 200 && status < 300 && sameEtag(headers.etag, etag)) return { size: servedSource(specs, headers, copy.query).size, unpin };
      // Another version now: Swift's copy, pinned to the one read first, stores nothing.
      unpin();
      return 'unsizable';
    } catch (error) {
      unpin();
      throw error;
    }
  }

  /**
   * The write goes to Swift now: once no other request's pin is on its object (a manifest resting on it, a write
   * taking its turn), it is marked as on its way until Swift answers, so a manifest checked meanwhile reads the
   * object only after it has landed (pins.ts).
   */
  private enterWrite(written: { account: string; container: string; object: string }, request: FastifyRequest, reply: FastifyReply): Promise<void> | undefined {
    // Other processes' pins (shared-pins.ts): a reservation of the object was checked against them as the ledger
    // made it; a delete cannot make what a pin holds larger (a manifest or copy resting on the object then fails).
    const checked = request.method === 'DELETE' || (request.quota?.reservations?.some((held) => held.key === containerKey(written.account, written.container) && held.target === written.object) ?? false);
    const entered = this.pins.enter(ObjectPins.key(written.account, written.container, written.object), request.raw, checked);
    const marked = (leave: () => void) => {
      const state = (request.quota ??= {});
      const unpin = state.unpin;
      state.unpin = unpin ? () => { unpin(); leave(); } : leave;
      this.endsWith(reply, leave);
    };
    if (typeof entered !== 'function') return entered.then(marked);
    marked(entered);
    return undefined;
  }

  /** What to wait for while a manifest on its way to Swift rests on this object (pins.ts); undefined: nothing. */
  private unpinned(account: string, container: string, object: string): Promise<void> | undefined {
    return this.pins.waitFor(ObjectPins.key(account, container, object));
  }

  /** What SLO will store for the manifest `body`, segments HEADed with the caller's rights and pinned. */
  private manifestSize(body: Buffer, account: string, version: string, caller: Caller, owner: object): Promise<ManifestSize> {
    return sizeManifest(body, account, this.pins, (container, object, query = '', inAccount = account) => this.headFor(caller, { account: inAccount, container, object }, query, version), owner, this.capabilities().maxManifestSegments);
  }

  /**
   * An S3 copy cannot be pinned with If-Match (s3api refuses conditional PUTs), but a Range bounds what Swift
   * copies whatever the source has become: at most the size read now (or the part's copy range, which s3api
   * puts in a Range itself), and at most one byte of a source the caller cannot read now.
   */
  private boundS3Copy(view: SwiftView, status: number, sourceSize: number): { size: number } {
    const copyRange = view.s3!.copyRange;
    if (copyRange !== undefined) return { size: copyRange };
    const asked = /^bytes=(\d+)-(\d+)$/.exec(view.headers.get('range') ?? '');
    if (asked && Number(asked[2]) >= Number(asked[1])) return { size: Number(asked[2]) - Number(asked[1]) + 1 };
    const size = status >= 200 && status < 300 ? Math.max(sourceSize, 1) : 1;
    view.upstream.set('range', `bytes=0-${size - 1}`);
    return { size };
  }

  private async admitObjectWrite(intent: Extract<Intent, { type: 'object-write' }>, view: SwiftView, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { account, container, object } = intent.target;
    const pinned = this.unpinned(account, container, object);
    if (pinned) await pinned;
    let source: SourceHead | undefined;
    if (intent.copy && !view.s3 && !tempUrlParams(view.path!.query)) {
      // Swift's copy reads its source before it asks whether the caller may write the destination: a
      // source the caller cannot read ends the copy with that answer (404, 403), which Swift gives itself.
      // Pinned to no version, the copy stores nothing whatever the source becomes meanwhile.
      source = await this.headFor({ kind: 'credentials', credentials: callerCredentials(view.headers) }, intent.copy.ref, intent.copy.query ?? '');
      if (source.status < 200 || source.status >= 300 || !source.headers.etag) {
        view.upstream.set('if-match', NO_SUCH_ETAG);
        return;
      }
    }
    const { verdict, caller } = await this.authorise(view, account, container, object);
    if (!verdict.allowed) return this.answer(reply, verdict.answer);
    if (await this.tooLarge(intent, view)) return this.answer(reply, TOO_LARGE);
    const levelInfo = await this.admissions.levelOf(account);
    const scope = this.admissions.scope(account, container, levelInfo);
    if (!this.admissions.enforces(scope)) return;
    // The container's versioning, held still from before it is read until Swift has answered (see below).
    const holding = this.pins.versioningSteady(account, container);
    const steady = typeof holding === 'function' ? holding : await holding;
    this.endsWith(reply, steady);
    const notBefore = this.admissions.readNotBefore();
    const versioningRead = await this.ledger.read(scope.key, notBefore);
    const { versioning } = versioningRead;

    let size = intent.size;
    let unpin: (() => void) | undefined;
    const version = view.path!.version;
    if (intent.copy) {
      const sized = await this.sizeCopy(intent.copy, intent.target, caller, view, intent.manifest === true, request.raw, source);
      if (sized === 'precondition-failed') return this.answer(reply, PRECONDITION_FAILED);
      if (sized === 'symlink-ranges') return this.refuse(reply, 400, SYMLINK_RANGES_REFUSED);
      // Nothing to count: pinned to no version, or a manifest SLO refuses, Swift stores nothing.
      if (sized === 'unsizable') return;
      size = sized.size;
      unpin = sized.unpin;
    } else if (intent.manifest) {
      // SLO stores its own manifest, not the body: read the body (SLO reads at most max_manifest_size of it).
      const limit = this.capabilities().maxManifestSize;
      if (intent.size !== undefined && intent.size > limit) return; // Swift: 413 "Manifest File > ..."
      const read = await this.bodyBuffers.read(request, reply, account, limit);
      if (read === undefined) return; // answered: 503 past the buffer budget, 408 for a stalled body
      const { head, body } = read;
      request.body = body;
      // Read as one SLO refuses, it is still counted at the most SLO could store (manifest-sizer.ts).
      const sized = await this.manifestSize(head, account, version, caller, request.raw);
      size = sized.stored;
      unpin = sized.unpin;
    }
    // Legacy versioning archives the object this write replaces: writes of the object take turns, so the
    // object read now is the one Swift archives (versioning.ts).
    let replaced = () => this.replacedObject(caller, intent.target);
    let archived: Usage | undefined;
    if (versioning?.kind === 'archive') {
      unpin = chain(unpin, await this.pins.exclusive(ObjectPins.key(account, container, object), request.raw));
      const current = await replaced().catch((error: unknown) => {
        unpin!();
        throw error;
      });
      replaced = () => Promise.resolve(current);
      archived = archivedByWrite(versioning, current);
    }
    if (unpin) this.endsWith(reply, unpin);
    const write: Write = {
      scope,
      add: { count: 1, bytes: size ?? 0 },
      target: object,
      replaced: async () => overwriteCredit(versioning, await replaced()),
      context: () => this.eventContext(request),
      alsoCounted: [{ scope: this.admissions.scope(account, undefined, levelInfo), snapshot: levelInfo.snapshot }],
      notBefore,
      versioningRead,
    };
    let result = await this.admissions.admit(write);
    // Room held by writes on a grant revoked since: Swift will refuse them, so they give their room back now.
    if (!result.admitted && caller.kind === 'credentials' && (await this.grants.revokeStale(scope.key, caller.credentials.key))) {
      result = await this.admissions.admit(write);
    }
    if (!result.admitted) {
      unpin?.();
      return this.reject(reply, result.decision);
    }
    const reservations = [this.hold(request, reply, result.reservation)];
    if (caller.kind === 'credentials') this.trackGrant(request, reply, scope.key, caller.credentials, account, container);
    if (archived && versioning?.kind === 'archive') {
      const archive = await this.admissions.admit({
        scope: this.admissions.scope(account, versioning.location, levelInfo),
        add: archived,
        target: undefined,
        context: () => this.eventContext(request),
      });
      if (!archive.admitted) {
        this.ledger.release(result.reservation);
        unpin?.();
        return this.reject(reply, archive.decision);
      }
      reservations.push(this.hold(request, reply, archive.reservation));
    }
    // Admitted as freeing bytes (the replaced object's, those of other writes of the object in flight), it rests
    // on versioning staying off: a change of the container's versioning waits for this write. Kept as a version,
    // it frees nothing: the change need not wait.
    if (result.reservation.keepsVersions) steady();
    else unpin = chain(unpin, steady);

    // SLO answers a manifest PUT with heartbeat=on at once (202) and reports in the body; so does a copy that stores
    // a manifest (multipart-manifest=get of an SLO is PUT on as one): done when Swift's answer ends.
    const heartbeat = (intent.manifest === true || intent.copy !== undefined) && swiftTrue(view.path!.query.last('heartbeat'));
    request.quota = {
      reservations,
      watched: { scope, persisted: result.snapshot.persisted },
      // What a copy or a manifest stores is read again from Swift once it is done.
      ...(intent.copy || intent.manifest ? { invalidates: [scope.key] } : {}),
      ...(unpin ? { unpin } : {}),
      ...(heartbeat ? { settleAtEnd: true, partial: true } : {}),
      // Swift archives the replaced object before it reads the body: kept whatever becomes of the write.
      ...(reservations.length > 1 ? { partial: true, invalidates: [scope.key, containerKey(account, (versioning as { location: string }).location)] } : {}),
    };
    request.quotaDecision = 'admitted';
    if (size === undefined && !intent.copy && !intent.manifest) {
      // Its growth may count on what it replaces: it holds the container's versioning still already (above).
      this.limitChunkedUpload(request, write, result.reservation);
    }
  }

  /**
   * Swift refuses an upload announcing more than its max_file_size as soon as it has the request's head (after
   * authorising it, in a container that exists), and clients may wait for that answer before sending a body.
   * The proxy's request reaches Swift with the body, so the proxy gives that answer itself.
   */
  private async tooLarge(intent: Extract<Intent, { type: 'object-write' }>, view: SwiftView): Promise<boolean> {
    if (intent.copy || intent.manifest || view.s3 || intent.size === undefined || intent.size <= this.capabilities().maxFileSize) return false;
    return (await this.ledger.read(containerKey(intent.target.account, intent.target.container))).exists;
  }

  /**
   * Bulk extraction (archive.ts): each regular file of the archive is admitted before its bytes go on, as the
   * object it becomes (no overwrite credit: what it replaces is not looked up), and each container it lands in
   * as a container an account-level extraction may make. Swift is sent a tar the proxy writes of the admitted
   * files (their counted names, sizes and metadata), ending before the first file past a limit; its answer
   * then lists that file as refused.
   */
  private async admitExtract(intent: Extract<Intent, { type: 'extract-archive' }>, view: SwiftView, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { account, base } = intent;
    const baseContainer = base === '' ? undefined : base.split('/')[0];
    const { verdict, caller } = await this.authorise(view, account, baseContainer, undefined);
    if (!verdict.allowed) return this.answer(reply, verdict.answer);
    const levelInfo = await this.admissions.levelOf(account);
    const accountScope = this.admissions.scope(account, undefined, levelInfo);
    // The archive reader may hold a file's extended header and the global ones (1 MiB each) in memory.
    if (!this.bodyBuffers.hold(reply, account, 2 * MAX_EXTENDED_HEADER)) return;
    // Whatever Swift answers, the files it extracted before are stored: kept, and usage read afresh.
    // Swift's bulk answers at once and reports in the body: done when that ends.
    const state: RequestState = { reservations: [], partial: true, settleAtEnd: true, invalidates: [accountKey(account)] };
    request.quota = state;
    request.quotaDecision = 'admitted';
    this.exchange(request, reply);
    view.upstream.set('content-length', undefined);
    view.addedQuery = 'extract-archive=tar';
    if (expectsContinue(request.headers)) {
      reply.raw.writeContinue();
      request.quotaContinued = true;
    }
    const containers = new Set<string>();
    const versioningHeld = new Set<string>();
    const stop = (file: ArchiveFile, decision: Denied): FileVerdict => {
      state.extractStopped = { path: `${file.container}/${file.object}`, decision };
      return 'stop';
    };
    request.body = filterArchive(request.raw, {
      gzip: intent.gzip,
      base,
      file: async (file) => {
        // A file past Swift's max_file_size is counted too: the size /info gave (or its default, while /info is
        // unread or hidden) may be below the one Swift runs with, and then bulk would store it uncounted.
        if ((await this.versioningOf(containerKey(account, file.container)))?.kind === 'archive') {
          // An extracted file would archive what it replaces inside Swift, as a form's would (not counted yet).
          state.extractStopped = { path: `${file.container}/${file.object}`, reason: LEGACY_VERSIONING_REFUSED };
          return 'stop';
        }
        if (!containers.has(file.container)) {
          containers.add(file.container);
          state.invalidates!.push(containerKey(account, file.container));
          if (this.admissions.enforces(accountScope)) {
            const made = await this.admissions.admit(this.containerWrite(accountScope, file.container, caller, request));
            if (!made.admitted) return stop(file, made.decision);
            state.reservations!.push(made.reservation);
          }
        }
        const scope = this.admissions.scope(account, file.container, levelInfo);
        if (!this.admissions.enforces(scope)) return 'send';
        if (!versioningHeld.has(file.container)) {
          // Members are decided on the container's versioning (those of one name replace each other unless each is
          // kept as a version): held still until Swift has answered the extraction.
          versioningHeld.add(file.container);
          const holding = this.pins.versioningSteady(account, file.container);
          const steady = typeof holding === 'function' ? holding : await holding;
          state.unpin = chain(state.unpin, steady);
          this.endsWith(reply, steady);
        }
        const result = await this.admissions.admit({
          scope,
          add: { count: 1, bytes: file.size },
          target: file.object,
          context: () => this.eventContext(request),
          alsoCounted: [{ scope: accountScope, snapshot: levelInfo.snapshot }],
        });
        if (!result.admitted) return stop(file, result.decision);
        state.reservations!.push(result.reservation);
        return 'send';
      },
      broken: (error) => reply.log.info({ err: error }, 'an archive to extract could not be read, or was refused: Swift is sent a tar it refuses there'),
    });
  }

  /** Swift's answer to a stopped extraction, with the file it was stopped at listed as refused (bulk-response.ts). */
  private async answerExtract(reply: FastifyReply, stopped: NonNullable<RequestState['extractStopped']>, statusCode: number, headers: Record<string, unknown>, body: Readable): Promise<void> {
    const chunks: Buffer[] = [];
    let length = 0;
    try {
      for await (const chunk of body) {
        length += (chunk as Buffer).length;
        if (length <= MAX_BULK_ANSWER) chunks.push(chunk as Buffer);
      }
    } catch {
      // What arrived is what there is.
    }
    const contentType = typeof headers['content-type'] === 'string' ? headers['content-type'] : undefined;
    const parsedAnswer = () => (statusCode === 200 ? parseBulkAnswer(Buffer.concat(chunks).toString('utf8'), contentType) : undefined);
    if ('reason' in stopped) {
      const parsed = parsedAnswer();
      if (!parsed) return this.refuse(reply, 400, stopped.reason);
      reply.request.quotaDecision = 'refused:400';
      reply.code(200).header('content-type', contentType ?? 'text/plain').header('connection', 'close');
      return void reply.send(formatBulkAnswer(withRefusal(parsed, stopped.path, '400 Bad Request', stopped.reason), contentType));
    }
    const rejection = rejectionResponse(stopped.decision as Rejection);
    this.metrics.rejections.inc({ kind: stopped.decision.kind, level: stopped.decision.level });
    reply.request.quotaDecision = `rejected:${stopped.decision.kind}`;
    const parsed = parsedAnswer();
    if (!parsed) return this.reject(reply, stopped.decision);
    const statusLine = rejection.status === 403 ? '403 Forbidden' : '413 Request Entity Too Large';
    const answer = withRefusal(parsed, stopped.path, statusLine, rejection.body.trim());
    for (const [name, value] of Object.entries(rejection.headers)) reply.header(name, value);
    reply.code(200).header('content-type', contentType ?? 'text/plain').header('connection', 'close');
    reply.send(formatBulkAnswer(answer, contentType));
  }

  /** The object a write replaces, as stored (a manifest or symlink itself, not what it points to). */
  private async replacedObject(caller: Caller, target: ObjectRef): Promise<Usage | undefined> {
    const { status, headers } = await this.headFor(caller, target, 'multipart-manifest=get&symlink=get');
    if (status < 200 || status >= 300) return undefined;
    return { count: 1, bytes: countHeader(headers['content-length']) };
  }

  /** Calls `release` when the request's exchange with Swift ends (at once if it has ended already). */
  private endsWith(reply: FastifyReply, release: () => void): void {
    this.exchange(reply.request, reply).finally(release);
  }

  /**
   * The request's exchange with Swift (exchange.ts), made when it first holds something: it ends when Swift has
   * answered, when the request to Swift fails, or when the client goes before the request was sent.
   */
  private exchange(request: FastifyRequest, reply: FastifyReply): Exchange {
    let exchange = request.quotaExchange;
    if (exchange) return exchange;
    exchange = new Exchange(() => request.quota?.settleAtEnd === true, (end) => this.exchangeEnded(request, end));
    request.quotaExchange = exchange;
    const made = exchange;
    if (reply.raw.destroyed) queueMicrotask(() => made.clientGone());
    else reply.raw.once('close', () => made.clientGone());
    return exchange;
  }

  /**
   * A write admitted on the caller's grant as kept (authority.ts), until its exchange ends: refused with Swift's
   * answer (and cut) if the grant is revoked before Swift can have all of it (grants.ts); the grant is forgotten if
   * Swift refuses it.
   */
  private trackGrant(request: FastifyRequest, reply: FastifyReply, scopeKey: string, credentials: Credentials, account: string, container: string): void {
    const exchange = this.exchange(request, reply);
    exchange.finally(
      this.grants.add(scopeKey, {
        credentials,
        account,
        container,
        since: Date.now(),
        // Seen by Swift with its body still coming from the client: Swift cannot have all of it yet, and cutting
        // it stores nothing, so a grantee cannot keep a started upload open on a revoked grant.
        reachedSwift: () => exchange.reachedSwift && request.raw.complete,
        refuse: (answer) => this.refuseHeld(request, reply, exchange, answer),
      }),
    );
    exchange.whenRefused(() => this.authority.forget(credentials, account, container));
  }

  /** Answers a held write Swift's refusal and drops it; resolves once what it held is given back. */
  private refuseHeld(request: FastifyRequest, reply: FastifyReply, exchange: Exchange, answer: SwiftAnswer): Promise<void> {
    return new Promise((resolve) => {
      exchange.finally(resolve);
      request.quotaDecision = `refused:${answer.status}`;
      if (reply.raw.headersSent) return void request.raw.destroy();
      reply.raw.once('finish', () => request.raw.destroy());
      reply.raw.writeHead(answer.status, { ...answer.headers, 'content-length': String(answer.body.length), connection: 'close' });
      reply.raw.end(answer.body);
    });
  }

  /** The exchange that follows a request to Swift, if it holds anything (forward.ts). */
  exchangeOf(request: FastifyRequest): Exchange | undefined {
    return request.quotaExchange;
  }

  private exchangeEnded(request: FastifyRequest, end: ExchangeEnd): void {
    if (end.kind === 'answered') this.settle(request, end.status);
    else this.settleUnanswered(request, end.kind === 'failed' && end.bodySent);
  }

  /**
   * Reserves quota for an admitted write until the request's exchange with Swift ends: whatever the client does
   * meanwhile, the reservation lasts until Swift has answered or the request to Swift has failed.
   */
  private hold(request: FastifyRequest, reply: FastifyReply, reservation: Reservation): Reservation {
    const exchange = this.exchange(request, reply);
    // The client went before anything was sent: nothing will be (the request is not sent to Swift any more).
    if (exchange.over) this.ledger.release(reservation);
    else exchange.reservations.push(reservation);
    return reservation;
  }

  /**
   * A FormPost upload: formpost (before any auth filter) PUTs each file of the form as the form streams in,
   * once the form's signature checks out with the account's or container's tempurl keys. Each file is admitted
   * as it begins, its signature checked as formpost checks it; each chunk of it must fit; the form is cut at
   * the first file or chunk that does not. The form goes to Swift chunked, so that a cut reaches formpost as a
   * broken upload (the file it was writing is not stored), never as the end of a shorter file.
   */
  private async admitFormUpload(intent: Extract<Intent, { type: 'form-upload' }>, view: SwiftView, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { account, container } = intent;
    const levelInfo = await this.admissions.levelOf(account);
    const scope = this.admissions.scope(account, container, levelInfo);
    if (await this.refusedForArchiveVersioning(account, container, reply)) return;
    if (!this.admissions.enforces(scope)) return;
    const state: RequestState = { reservations: [], partial: true, invalidates: [scope.key] };
    request.quota = state;
    request.quotaDecision = 'admitted';
    this.exchange(request, reply);
    view.upstream.set('content-length', undefined);

    const write: Write = {
      scope,
      add: { count: 1, bytes: 0 },
      target: undefined,
      context: () => this.eventContext(request),
      alsoCounted: [{ scope: this.admissions.scope(account, undefined, levelInfo), snapshot: levelInfo.snapshot }],
    };
    let current: Reservation | undefined;
    const noCredit = { bytes: 0, looked: true };
    const source = request.raw;
    const signatureRefusal = async (attributes: FormAttributes): Promise<SwiftAnswer | undefined> => {
      const check = async (fresh: boolean) => {
        const notBefore = fresh ? this.ledger.now() + 1 : 0;
        const [accountUsage, containerUsage] = await Promise.all([this.ledger.read(accountKey(account), notBefore), this.ledger.read(scope.key, notBefore)]);
        return checkFormPost({
          path: intent.path,
          attributes,
          keys: [...(accountUsage.tempUrlKeys ?? []), ...(containerUsage.tempUrlKeys ?? [])],
          digests: this.capabilities().formpostDigests,
          nowSeconds: Date.now() / 1000,
        });
      };
      const problem = (await check(false)) && (await check(true));
      if (problem === undefined) return undefined;
      if (problem === 'expired not an integer') return formAnswer(400, problem);
      return formAnswer(401, problem.replace(/\b\w/g, (c) => c.toUpperCase()));
    };
    const limiter = createFormLimiter<FormRefusal>(intent.boundary, {
      file: async (attributes) => {
        const answer = await signatureRefusal(attributes);
        if (answer) return { answer };
        const result = await this.admissions.admit(write);
        if (!result.admitted) return { decision: result.decision };
        current = result.reservation;
        state.reservations!.push(current);
        return undefined;
      },
      fileBytes: async (bytes) => {
        const decision = current ? await this.admissions.grow(write, current, bytes, noCredit) : undefined;
        return decision ? { decision } : undefined;
      },
      cut: (refusal, partial) => {
        // formpost names a file's object: the form's path (with a "/" after a bare container) and the filename.
        const prefix = intent.object === undefined ? '' : intent.object;
        state.cut = {
          refusal,
          partial: partial?.filename === undefined ? undefined : { account, container, object: `${prefix}${partial.filename}` },
          unknownPartial: partial !== undefined && partial.filename === undefined,
        };
        source.unpipe(limiter);
      },
    });
    source.on('error', (error) => limiter.destroy(error));
    source.on('aborted', () => limiter.destroy(new Error('client aborted the upload')));
    source.pipe(limiter);
    request.body = limiter;
  }

  /**
   * A bulk delete stores on delete where legacy versioning is on, as single deletes do: the list is checked as it
   * streams, each container's versioning held still until Swift's answer ends, and cut at a container with legacy
   * versioning (such deletes go one by one, where they are counted).
   */
  private admitBulkDelete(account: string, request: FastifyRequest, reply: FastifyReply): void {
    const state: RequestState = { reservations: [], settleAtEnd: true, partial: true, invalidates: [accountKey(account)] };
    request.quota = state;
    this.exchange(request, reply);
    const seen = new Map<string, Promise<string | undefined>>();
    const check = async (container: string): Promise<string | undefined> => {
      const holding = this.pins.deleteSteady(account, container);
      this.endsWith(reply, typeof holding === 'function' ? holding : await holding);
      state.invalidates!.push(containerKey(account, container));
      return (await this.versioningOf(containerKey(account, container)))?.kind === 'archive' ? BULK_DELETE_VERSIONING_REFUSED : undefined;
    };
    const checker = createDeleteListChecker((container) => {
      if (!seen.has(container)) seen.set(container, check(container));
      return seen.get(container)!;
    });
    const source = request.raw;
    source.on('error', (error) => checker.destroy(error));
    source.on('aborted', () => checker.destroy(new Error('client aborted the delete list')));
    source.pipe(checker);
    request.body = checker;
  }

  /** Chunked upload: every chunk must fit before it is passed on; the upload is cut at the first that does not. */
  private limitChunkedUpload(request: FastifyRequest, write: Write, reservation: Reservation): void {
    const credit = { bytes: 0, looked: false };
    const limiter = createUploadLimiter<Denied>((bytes) => this.admissions.grow(write, reservation, bytes, credit));
    const source = request.raw;
    source.on('error', (error) => limiter.destroy(error));
    source.on('aborted', () => limiter.destroy(new Error('client aborted the upload')));
    source.pipe(limiter);
    request.body = limiter;
  }

  // ---- Swift's answer ----------------------------------------------------------------------------------

  /** Swift answered; returns true when the gate answered the client instead (a cut form upload). */
  onUpstreamResponse(request: FastifyRequest, reply: FastifyReply, statusCode: number, headers: Record<string, unknown>, body?: Readable): boolean {
    const state = request.quota;
    if (!state) return false;
    if (state.extractStopped && body) {
      void this.answerExtract(reply, state.extractStopped, statusCode, headers, body);
      return true;
    }
    if (state.cut) {
      this.settle(request, statusCode);
      void this.answerCut(reply, state.cut);
      return true;
    }
    if (state.settleAtEnd) return false; // settled when Swift's answer ends (exchange.ts)
    if (state.describe && statusCode >= 200 && statusCode < 300) {
      for (const [name, value] of Object.entries(quotaHeaders(state.describe))) reply.header(name, value);
    }
    this.settle(request, statusCode);
    if (statusCode < 200 || statusCode >= 300) return false;
    const transactionId = typeof headers['x-trans-id'] === 'string' ? headers['x-trans-id'] : undefined;
    for (const key of state.forgets ?? []) {
      this.watch.forget(key);
      this.versionings.delete(key);
    }
    if (state.watched) {
      // The write is in Swift's usage now: a soft limit it went past is reported by this request.
      const { scope, persisted } = state.watched;
      this.ledger.settled(scope.key).then(
        (settled) => {
          if (settled) this.watch.observe(scope, persisted, settled.usage, () => this.eventContext(request, transactionId), settled.inFlight);
        },
        () => {}, // the next check will see it
      );
    }
    if (state.levelChanged) this.watch.reconsider(state.levelChanged);
    if (state.shrinks) void this.afterDelete(state.shrinks.account, state.shrinks.container, () => this.eventContext(request, transactionId));
    return false;
  }

  /** The refusal of a cut form upload; the file Swift stored in part (as far as it was admitted) goes. */
  private async answerCut(reply: FastifyReply, cut: NonNullable<RequestState['cut']>): Promise<void> {
    if (cut.partial) {
      const { account, container, object } = cut.partial;
      try {
        await this.swift.delete(encodePath('v1', account, container, object));
      } catch (error) {
        reply.log.warn({ err: error, object: cut.partial }, 'the part of a cut form file Swift stored could not be removed');
      }
      this.ledger.invalidate(containerKey(account, container));
    } else if (cut.unknownPartial) {
      reply.log.warn('a form was cut inside a file whose name the proxy could not read: Swift keeps that file as far as it came');
    }
    if ('answer' in cut.refusal) this.answer(reply, cut.refusal.answer);
    else this.reject(reply, cut.refusal.decision);
  }

  /**
   * Usage went down by an amount only Swift knows. If the scope is over a soft limit or had a write refused,
   * read its usage (in the background: the client has its answer) to report it being back below.
   */
  private async afterDelete(account: string, container: string | undefined, context: ContextSource): Promise<void> {
    const key = scopeKey(account, container);
    if (!this.watch.isWatching(key)) return;
    try {
      const levelInfo: LevelInfo = await this.admissions.levelOf(account);
      const snapshot = await this.ledger.read(key, this.ledger.now() + 1);
      if (!snapshot.exists) return;
      const settled = await this.ledger.settled(key);
      this.watch.observe(this.admissions.scope(account, container, levelInfo), snapshot.persisted, settled?.usage ?? snapshot, context, settled?.inFlight ?? snapshot);
    } catch {
      // The next check will see it.
    }
  }

  /** Settles the request's reservation: kept as a finished write on success, given back otherwise. */
  settle(request: FastifyRequest, statusCode: number | undefined): void {
    const state = request.quota;
    if (!state || state.settled) return;
    state.settled = true;
    state.unpin?.();
    const ok = statusCode !== undefined && statusCode >= 200 && statusCode < 300;
    const written = ok && (state.commitOnlyOn === undefined || state.commitOnlyOn === statusCode);
    for (const reservation of heldBy(request)) {
      if (written || state.partial) this.ledger.commit(reservation);
      else this.ledger.release(reservation);
    }
    if (ok || state.partial) for (const key of state.invalidates ?? []) this.ledger.invalidate(key);
  }

  /**
   * For a request whose exchange ended without Swift's answer: its request to Swift failed, or it was never sent.
   * If the whole body had reached Swift, Swift may have done the write: count it (a later read corrects an
   * over-count); otherwise Swift cannot have stored anything.
   */
  private settleUnanswered(request: FastifyRequest, bodySent: boolean): void {
    // An admission the client left in the middle may not have written its state yet.
    const state = (request.quota ??= {});
    if (state.settled) return;
    state.settled = true;
    state.unpin?.();
    const open = heldBy(request).filter((reservation) => !reservation.settled);
    if (open.length === 0) return;
    // A form's files are stored as they arrive: those already sent may be in Swift.
    const written = bodySent || state.partial;
    for (const reservation of open) {
      if (written) this.ledger.commit(reservation);
      else this.ledger.release(reservation);
    }
    if (state.partial) for (const key of state.invalidates ?? []) this.ledger.invalidate(key);
  }

  /** An upload cut by the limiter reaches us as an upstream error: answer it with the refusal. */
  answerUpstreamError(request: FastifyRequest, reply: FastifyReply, error: unknown): boolean {
    this.settle(request, undefined);
    if (reply.raw.writableEnded) return true; // answered already (a held write refused: refuseHeld)
    const formCut = request.quota?.cut;
    if (formCut) {
      void this.answerCut(reply, formCut);
      return true;
    }
    const listCut = error instanceof DeleteListRefused ? error : (error as { cause?: unknown })?.cause;
    if (listCut instanceof DeleteListRefused) {
      this.refuse(reply, 400, listCut.reason);
      return true;
    }
    const cut = error instanceof UploadLimitError ? error : (error as { cause?: unknown })?.cause;
    if (!(cut instanceof UploadLimitError)) return false;
    this.reject(reply, cut.rejection as Denied);
    return true;
  }

  // ---- answers -----------------------------------------------------------------------------------------

  private reject(reply: FastifyReply, decision: Denied): void {
    reply.request.quotaDecision = `rejected:${decision.kind}`;
    reply.request.quotaRefusal = decision;
    this.metrics.rejections.inc({ kind: decision.kind, level: decision.level });
    const { status, body, headers } = rejectionResponse(decision as Rejection);
    for (const [name, value] of Object.entries(headers)) reply.header(name, value);
    if (reply.request.quotaS3) {
      // As s3api words Swift's own quota refusals: EntityTooLarge for objects, TooManyBuckets for buckets.
      const code = decision.kind === 'container_count' ? 'TooManyBuckets' : 'EntityTooLarge';
      return this.answerS3(reply, { status: 400, code, message: body.trim().replace(/\n/g, ' ') });
    }
    this.refuse(reply, status, body);
  }

  /** An S3 error, as s3api would answer it. */
  private answerS3(reply: FastifyReply, error: S3Error): void {
    reply.request.quotaDecision ??= `refused:${error.status}`;
    reply.code(error.status).header('content-type', 'application/xml');
    if (!reply.request.raw.complete) reply.header('connection', 'close');
    reply.send(s3ErrorBody(error));
  }

  /** Swift's own answer to the caller (a refusal it gave the proxy's question with the caller's credentials). */
  private answer(reply: FastifyReply, answer: SwiftAnswer): void {
    if (reply.request.quotaS3) {
      // s3api turns Swift's refusals into its own: 401 → SignatureDoesNotMatch, 403 → AccessDenied, ...
      const code = answer.status === 401 ? 'SignatureDoesNotMatch' : answer.status === 403 ? 'AccessDenied' : answer.status === 404 ? 'NoSuchBucket' : answer.status === 412 ? 'PreconditionFailed' : 'InvalidRequest';
      return this.answerS3(reply, { status: answer.status === 401 ? 403 : answer.status, code, message: answer.body.toString('utf8').replace(/<[^>]*>/g, ' ').trim() || code });
    }
    reply.request.quotaDecision ??= `refused:${answer.status}`;
    reply.code(answer.status);
    for (const [name, value] of Object.entries(answer.headers)) reply.header(name, value);
    if (!reply.request.raw.complete) reply.header('connection', 'close');
    reply.send(answer.body);
  }

  private refuse(reply: FastifyReply, status: number, body: string): void {
    if (reply.request.quotaS3) return this.answerS3(reply, { status, code: status === 503 ? 'ServiceUnavailable' : status === 411 ? 'MissingContentLength' : 'InvalidRequest', message: body.trim() });
    reply.request.quotaDecision ??= `refused:${status}`;
    reply.code(status).header('content-type', 'text/plain; charset=utf-8');
    // The client may still be sending a body we will not read: close rather than drain it.
    if (!reply.request.raw.complete) reply.header('connection', 'close');
    reply.send(body.endsWith('\n') ? body : `${body}\n`);
  }
}

/** The object a request writes, updates or deletes, when it is one (what a manifest's segments may be). */
function writtenObject(intent: Intent): { account: string; container: string; object: string } | undefined {
  switch (intent.type) {
    case 'object-write':
      return intent.target;
    case 'object-update':
    case 'object-delete':
      return intent;
    case 'protected-metadata':
    case 'versioning-change':
      return writtenObject(intent.then);
    default:
      return undefined;
  }
}
