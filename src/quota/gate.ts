/**
 * The quota gate: for each request, works out what it would do to usage (intent.ts), reads usage through
 * the usage book, decides (decide.ts), and either refuses the request or lets it through holding a
 * reservation that is settled when Swift answers. I/O lives here and in the Swift client; the rules do not.
 */
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { Config } from '../config/load.js';
import { DEFAULT_LEVEL, type Limits, type QuotaKind } from '../config/quota-levels.js';
import type { Metrics } from '../metrics.js';
import { ResellerCheck } from '../auth/reseller.js';
import { BadPathError, encodePath, parseSwiftPath } from '../swift/path.js';
import { countHeader, UpstreamUnavailableError, type SwiftClient } from '../swift/client.js';
import { decideContainerCreate, decideObjectWrite, isNearLimit, type Decision, type Usage } from './decide.js';
import { requestIntent, type Intent, type ObjectRef } from './intent.js';
import { accountKey, containerKey, scopeKey, UsageBook, type Reservation, type Snapshot, type SnapshotData } from './usage-book.js';
import { createUploadLimiter, UploadLimitError } from './upload-limiter.js';
import { rawTarget } from '../server.js';
import { quotaHeaders, rejectionResponse, type Rejection } from './responses.js';
import { ACCOUNT_KINDS, CONTAINER_KINDS, readPersistedState, type PersistedQuotaState } from '../swift/quota-metadata.js';
import { requestToken, type TokenIdentities } from '../auth/identities.js';
import type { ContextSource, EventContext, QuotaWatch, Scope } from './watch.js';

type Denied = Extract<Decision, { allow: false }>;

/** What the gate remembers about a request between admission and Swift's answer. */
interface RequestState {
  reservation?: Reservation;
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
}

declare module 'fastify' {
  interface FastifyRequest {
    quota?: RequestState;
    /** What the gate decided, for the access log: admitted, rejected:<kind>, refused:<status>, unchecked. */
    quotaDecision?: string;
  }
}

/** How many times a refusal resting on writes that finished during a live read is decided again. */
const LIVE_RECHECKS = 3;

const callerToken = (request: FastifyRequest) => requestToken(request.headers);

export interface QuotaGateOptions {
  config: Config;
  swift: SwiftClient;
  metrics: Metrics;
  log: FastifyBaseLogger;
  watch: QuotaWatch;
  identities: TokenIdentities;
}

export class QuotaGate {
  readonly book: UsageBook;
  private readonly resellers: ResellerCheck;
  private readonly config: Config;
  private readonly swift: SwiftClient;
  private readonly metrics: Metrics;
  private readonly log: FastifyBaseLogger;
  private readonly unknownLevelsLogged = new Set<string>();
  readonly watch: QuotaWatch;
  private readonly identities: TokenIdentities;

  constructor({ config, swift, metrics, log, watch, identities }: QuotaGateOptions) {
    this.config = config;
    this.swift = swift;
    this.metrics = metrics;
    this.log = log;
    this.watch = watch;
    this.identities = identities;
    this.resellers = new ResellerCheck(swift, `${config.resellerPrefix}${config.quota.resellerProbeAccount}`);
    this.book = new UsageBook({
      ttlMs: config.quota.cacheTimeoutSeconds * 1000,
      maxEntries: config.quota.cacheMaxEntries,
      read: (key) => this.readUsage(key),
      onRead: (key, source) =>
        metrics.cacheRequests.inc({ kind: key.startsWith('a/') ? 'account' : 'container', result: source === 'hit' ? 'hit' : 'miss' }),
      onReservationsChanged: (open) => metrics.reservations.set(open),
    });
  }

  /** Whether the token's holder is a reseller admin (asked of Swift; see auth/reseller.ts). */
  isResellerAdmin(token: string | undefined): Promise<boolean> {
    return this.resellers.isResellerAdmin(token);
  }

  /** The account a token's login went through this proxy for, when known. */
  callerOf(token: string | undefined): string | undefined {
    return this.identities.caller(token);
  }

  // ---- usage reads -------------------------------------------------------------------------------------

  private async readUsage(key: string): Promise<SnapshotData> {
    const [kind, account, container] = splitKey(key);
    const target = kind === 'a' ? 'account' : 'container';
    const { status, headers } = await this.swift.head(encodePath('v1', account, container), target);
    if (status === 404 || status === 410) return { exists: false, count: 0, bytes: 0 };
    if (status >= 300) throw new UpstreamUnavailableError(`Swift answered ${status} to the usage read of ${target} ${key.slice(2)}`);
    if (kind === 'a') {
      const level = headers['x-account-meta-quota']?.trim();
      return {
        exists: true,
        count: countHeader(headers['x-account-container-count']),
        bytes: countHeader(headers['x-account-bytes-used']),
        persisted: readPersistedState('account', headers),
        ...(level ? { level } : {}),
      };
    }
    return {
      exists: true,
      count: countHeader(headers['x-container-object-count']),
      bytes: countHeader(headers['x-container-bytes-used']),
      persisted: readPersistedState('container', headers),
    };
  }

  /** The account's level and limits. A level no longer configured is held to `default`, never unlimited. */
  private async levelOf(account: string): Promise<{ level: string; limits: Limits; soft: Limits; snapshot: Snapshot }> {
    const snapshot = await this.book.read(accountKey(account));
    const { level, limits } = this.limitsFor(account, snapshot.level);
    return { level, limits, soft: this.config.quota.softLimits.get(level) ?? {}, snapshot };
  }

  private scope(account: string, container: string | undefined, level: { level: string; limits: Limits; soft: Limits }): Scope {
    const key = scopeKey(account, container);
    return {
      key,
      type: container === undefined ? 'account' : 'container',
      account,
      ...(container === undefined ? {} : { container }),
      level: level.level,
      limits: level.limits,
      soft: level.soft,
    };
  }

  /** Who asked and what, for quota events. */
  private eventContext(request: FastifyRequest, transactionId?: string): EventContext {
    const caller = this.identities.caller(callerToken(request));
    const url = request.url;
    const query = url.indexOf('?');
    return {
      ...(caller ? { caller } : {}),
      request: { method: request.method, path: query < 0 ? url : url.slice(0, query), transaction_id: transactionId ?? null },
    };
  }

  /**
   * Brings the watch up to date with usage at a check, so that crossings this proxy did not cause (other
   * clients, deletes elsewhere) are noticed, and an expired grace period is known before deciding.
   */
  private watchAtCheck(scope: Scope, snapshot: Snapshot, request: FastifyRequest): void {
    this.watch.observe(scope, snapshot.persisted, this.book.settled(scope.key) ?? snapshot, () => this.eventContext(request));
  }

  private limitsFor(account: string, stored: string | undefined): { level: string; limits: Limits } {
    const levels = this.config.quota.levels.byLevel;
    const own = stored === undefined ? undefined : levels.get(stored);
    if (stored !== undefined && own === undefined && !this.unknownLevelsLogged.has(`${account}\0${stored}`)) {
      this.unknownLevelsLogged.add(`${account}\0${stored}`);
      this.log.warn({ account, level: stored }, `account has quota level "${stored}", which is not configured: holding it to "${DEFAULT_LEVEL}"`);
    }
    return own ? { level: stored!, limits: own } : { level: DEFAULT_LEVEL, limits: levels.get(DEFAULT_LEVEL)! };
  }

  /** The earliest read a check may use: any fresh cache entry, or in precise mode one sent after now. */
  private firstReadNotBefore(): number {
    return this.config.quota.preciseMode ? this.book.now() + 1 : 0;
  }

  // ---- admission ---------------------------------------------------------------------------------------

  async admit(request: FastifyRequest, reply: FastifyReply): Promise<void> {
    let intent: Intent;
    try {
      const path = parseSwiftPath(rawTarget(request.raw));
      if (!path) return;
      intent = requestIntent(request.method, path, request.headers);
    } catch (error) {
      // Swift refuses such a path itself (412 Invalid UTF8): nothing can be written through it.
      if (error instanceof BadPathError) return;
      throw error;
    }
    if (intent.type === 'pass') return;

    try {
      await this.admitIntent(intent, request, reply);
    } catch (error) {
      if (!(error instanceof UpstreamUnavailableError)) throw error;
      this.settle(request, undefined);
      if (intent.type === 'describe') return; // reads never fail because usage could not be read
      if (this.config.quota.failMode === 'open') {
        request.quotaDecision = 'unchecked';
        request.log.warn({ err: error }, 'usage unavailable, letting the write through (fail_mode = open)');
        return;
      }
      request.log.warn({ err: error }, 'usage unavailable, refusing the write (fail_mode = closed)');
      reply.header('retry-after', String(this.config.quota.retryAfterSeconds));
      this.refuse(reply, 503, 'Service Unavailable: the quota proxy cannot read usage from Swift; try again later.');
    }
  }

  private async admitIntent(intent: Exclude<Intent, { type: 'pass' }>, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    switch (intent.type) {
      case 'refuse':
        return this.refuse(reply, intent.status, intent.reason);
      case 'level-change':
        return this.admitLevelChange(intent.account, intent.level, request, reply);
      case 'protected-metadata': {
        if (!(await this.resellers.isResellerAdmin(callerToken(request)))) {
          return this.refuse(reply, 403, 'Forbidden: the quota proxy\'s own metadata (X-*-Meta-Quota-Proxy-*) may be changed by reseller admins only.');
        }
        if (intent.then.type !== 'pass') await this.admitIntent(intent.then, request, reply);
        if (reply.sent) return;
        const key = scopeKey(intent.account, intent.container);
        request.quota = { ...request.quota, invalidates: [...(request.quota?.invalidates ?? []), key], forgets: [key] };
        return;
      }
      case 'describe': {
        const { level, limits, soft } = await this.levelOf(intent.account);
        request.quota = { describe: { level, limits, soft, container: intent.container !== undefined } };
        return;
      }
      case 'container-create':
        return this.admitContainerCreate(intent.account, intent.container, request, reply);
      case 'container-delete':
        request.quota = {
          invalidates: [accountKey(intent.account), containerKey(intent.account, intent.container)],
          forgets: [containerKey(intent.account, intent.container)],
          shrinks: { account: intent.account },
        };
        return;
      case 'object-delete':
        request.quota = { invalidates: [containerKey(intent.account, intent.container)], shrinks: { account: intent.account, container: intent.container } };
        return;
      case 'object-write':
        return this.admitObjectWrite(intent, request, reply);
    }
  }

  private async admitLevelChange(account: string, level: string | undefined, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    if (!(await this.resellers.isResellerAdmin(callerToken(request)))) {
      this.metrics.levelChanges.inc({ outcome: 'forbidden' });
      return this.refuse(reply, 403, 'Forbidden: only a reseller admin may set or remove an account quota level.');
    }
    if (level !== undefined && !this.config.quota.levels.byLevel.has(level)) {
      this.metrics.levelChanges.inc({ outcome: 'invalid' });
      return this.refuse(reply, 400, `Unknown quota level "${level}". Valid levels: ${this.config.quota.levels.names.join(', ')}.`);
    }
    this.metrics.levelChanges.inc({ outcome: 'passed' });
    request.quota = { invalidates: [accountKey(account)] };
  }

  private async admitContainerCreate(account: string, container: string, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const levelInfo = await this.levelOf(account);
    const { level, limits, snapshot: cachedAccount } = levelInfo;
    if (limits.container_count === undefined) return;
    const key = accountKey(account);
    const scope = this.scope(account, undefined, levelInfo);
    const add: Usage = { count: 1, bytes: 0 };
    const decide = (on: Snapshot): Decision => {
      const used = this.book.projected(key, on);
      return decideContainerCreate(limits, level, used, this.watch.expiredSoftLimits(scope, used));
    };

    let snapshot = this.config.quota.preciseMode ? await this.book.read(key, this.firstReadNotBefore()) : cachedAccount;
    this.watchAtCheck(scope, snapshot, request);
    let decision = decide(snapshot);
    if (this.needsLiveRead(decision, key, snapshot, limits, ACCOUNT_KINDS, add)) {
      snapshot = await this.liveSnapshot(key, decide);
      this.watchAtCheck(scope, snapshot, request);
      decision = decide(snapshot);
    }
    if (!decision.allow) {
      // Re-PUT of an existing container is an update, not a new container (Swift answers it 202).
      const existing = await this.swift.head(encodePath('v1', account, container), 'container');
      if (existing.status >= 200 && existing.status < 300) return;
      decision = decide(snapshot);
      if (!decision.allow) {
        this.watch.refused(scope, snapshot.persisted, decision, () => this.eventContext(request));
        return this.reject(reply, decision);
      }
    }
    request.quota = {
      reservation: this.hold(request, reply, key, add),
      commitOnlyOn: 201,
      invalidates: [containerKey(account, container)],
      watched: { scope, persisted: snapshot.persisted },
    };
    request.quotaDecision = 'admitted';
  }

  /**
   * Reserves quota for an admitted write, and makes sure the reservation ends with the exchange: whatever
   * happens (Swift answers, fails, or the client goes away at any point), the response closes.
   */
  private hold(request: FastifyRequest, reply: FastifyReply, key: string, add: Usage): Reservation {
    const reservation = this.book.reserve(key, add);
    if (reply.raw.destroyed || request.raw.destroyed) queueMicrotask(() => this.settleUnanswered(request));
    else reply.raw.once('close', () => this.settleUnanswered(request));
    return reservation;
  }

  /**
   * In cached mode a check close to a limit (or failing) is repeated on live usage; in both modes a refusal
   * that rests on writes which may already be in the snapshot is repeated on a read sent after them.
   */
  private needsLiveRead(decision: Decision, key: string, snapshot: Snapshot, limits: Limits, kinds: readonly QuotaKind[], add: Usage): boolean {
    if (!decision.allow && this.book.hasWritesSince(key, snapshot)) return true;
    if (this.config.quota.preciseMode) return false;
    return isNearLimit(limits, kinds, this.book.projected(key, snapshot), add, this.config.quota.nearLimitRatio);
  }

  /**
   * Live usage to decide on: a read sent now. Writes that finish while that read is under way may or may not be
   * in it and are counted on top, so a refusal that rests on them is tried again on a read sent after them (a
   * few times at most: under a steady stream of finishing writes the last answer stands). Returns the
   * snapshot, not the decision: the caller decides again and reserves in the tick it resumes in, as a decision
   * carried across this function's own return would be stale by the reservations made meanwhile.
   */
  private async liveSnapshot(key: string, decide: (snapshot: Snapshot) => Decision): Promise<Snapshot> {
    let snapshot = await this.book.read(key, this.book.now() + 1);
    for (let again = 0; again < LIVE_RECHECKS && !decide(snapshot).allow && this.book.hasWritesSince(key, snapshot); again++) {
      snapshot = await this.book.read(key, this.book.now() + 1);
    }
    return snapshot;
  }

  private async sourceSize(source: ObjectRef, query: string | undefined, request: FastifyRequest): Promise<number | undefined> {
    // The caller's own token: a caller who may not read the source learns nothing from us, and Swift
    // gives it the same answer it would give without the proxy.
    const path = encodePath('v1', source.account, source.container, source.object) + (query ? `?${query}` : '');
    const { status, headers } = await this.swift.headAs(path, 'object', callerToken(request));
    if (status < 200 || status >= 300) return undefined;
    return countHeader(headers['content-length']);
  }

  private async admitObjectWrite(intent: Extract<Intent, { type: 'object-write' }>, request: FastifyRequest, reply: FastifyReply): Promise<void> {
    const { account, container, object } = intent.target;
    const levelInfo = await this.levelOf(account);
    const { level, limits } = levelInfo;
    if (limits.object_count === undefined && limits.container_usage === undefined) return;
    const scope = this.scope(account, container, levelInfo);

    let size = intent.size;
    if (intent.copyFrom) {
      size = await this.sourceSize(intent.copyFrom, intent.copyQuery, request);
      if (size === undefined) return; // Swift will refuse the copy itself (404, 401, 403).
    }
    const key = containerKey(account, container);
    let snapshot = await this.book.read(key, this.firstReadNotBefore());
    if (!snapshot.exists) return; // Swift answers 404; nothing to hold.

    let add: Usage = { count: 1, bytes: size ?? 0 };
    const decide = (on: Snapshot): Decision => {
      const used = this.book.projected(key, on);
      return decideObjectWrite(limits, level, used, add, this.watch.expiredSoftLimits(scope, used));
    };
    this.watchAtCheck(scope, snapshot, request);
    let decision = decide(snapshot);
    if (this.needsLiveRead(decision, key, snapshot, limits, CONTAINER_KINDS, add)) {
      snapshot = await this.liveSnapshot(key, decide);
      this.watchAtCheck(scope, snapshot, request);
      decision = decide(snapshot);
    }
    let replaced: Usage | undefined;
    if (!decision.allow) {
      // Only now does it matter whether this write replaces an object: that one's count and bytes are freed.
      replaced = await this.existingObject(account, container, object);
      if (replaced) {
        add = { count: 1 - replaced.count, bytes: (size ?? 0) - replaced.bytes };
        decision = decide(snapshot);
      }
    }
    if (!decision.allow) {
      const accountScope = { scope: this.scope(account, undefined, levelInfo), persisted: levelInfo.snapshot.persisted };
      this.watch.refused(scope, snapshot.persisted, decision, () => this.eventContext(request), [accountScope]);
      return this.reject(reply, decision);
    }

    // A shrinking overwrite frees its bytes only when it has finished: hold nothing negative meanwhile.
    const reservation = this.hold(request, reply, key, { count: Math.max(add.count, 0), bytes: Math.max(add.bytes, 0) });
    request.quota = { reservation, watched: { scope, persisted: snapshot.persisted } };
    request.quotaDecision = 'admitted';
    if (size === undefined && !intent.copyFrom) this.limitChunkedUpload(request, reservation, scope, intent.target.object, replaced);
  }

  private async existingObject(account: string, container: string, object: string): Promise<Usage | undefined> {
    const { status, headers } = await this.swift.head(`${encodePath('v1', account, container, object)}?multipart-manifest=get`, 'object');
    if (status < 200 || status >= 300) return undefined;
    return { count: 1, bytes: countHeader(headers['content-length']) };
  }

  /** Chunked upload: every chunk must fit before it is passed on; the upload is cut at the first that does not. */
  private limitChunkedUpload(request: FastifyRequest, reservation: Reservation, scope: Scope, object: string, replaced: Usage | undefined): void {
    const { key, limits, level } = scope;
    let replacedChecked = replaced !== undefined;
    let credit = replaced?.bytes ?? 0;
    const fits = (snapshot: Snapshot, bytes: number): Decision => {
      // The reservation already holds this upload's bytes so far; only the new chunk is added.
      const projected = this.book.projected(key, snapshot);
      const used = { count: projected.count, bytes: projected.bytes - credit };
      return decideObjectWrite(limits, level, used, { count: 0, bytes: bytes }, this.watch.expiredSoftLimits(scope, used));
    };
    const limiter = createUploadLimiter<Denied>(async (bytes) => {
      let snapshot = await this.book.read(key);
      let decision = fits(snapshot, bytes);
      if (!decision.allow) {
        snapshot = await this.liveSnapshot(key, (live) => fits(live, bytes));
        decision = fits(snapshot, bytes);
      }
      if (!decision.allow && !replacedChecked) {
        replacedChecked = true;
        const existing = await this.existingObject(scope.account, scope.container!, object);
        if (existing) {
          credit = existing.bytes;
          this.book.adjust(reservation, { count: -reservation.count, bytes: 0 }); // no new object after all
          decision = fits(snapshot, bytes);
        }
      }
      if (!decision.allow) {
        const state = request.quota?.watched;
        if (state) this.watch.refused(state.scope, state.persisted, decision, () => this.eventContext(request));
        return decision;
      }
      this.book.adjust(reservation, { count: 0, bytes });
      return undefined;
    });
    const source = request.raw;
    source.on('error', (error) => limiter.destroy(error));
    source.on('aborted', () => limiter.destroy(new Error('client aborted the upload')));
    source.pipe(limiter);
    request.body = limiter;
  }

  // ---- Swift's answer ----------------------------------------------------------------------------------

  onUpstreamResponse(request: FastifyRequest, reply: FastifyReply, statusCode: number, headers: Record<string, unknown>): void {
    const state = request.quota;
    if (!state) return;
    if (state.describe && statusCode >= 200 && statusCode < 300) {
      for (const [name, value] of Object.entries(quotaHeaders(state.describe))) reply.header(name, value);
    }
    this.settle(request, statusCode);
    if (statusCode < 200 || statusCode >= 300) return;
    const transactionId = typeof headers['x-trans-id'] === 'string' ? headers['x-trans-id'] : undefined;
    for (const key of state.forgets ?? []) this.watch.forget(key);
    if (state.watched) {
      // The write is in Swift's usage now: a soft limit it went past is reported by this request.
      const { scope, persisted } = state.watched;
      const usage = this.book.settled(scope.key);
      if (usage) this.watch.observe(scope, persisted, usage, () => this.eventContext(request, transactionId));
    }
    if (state.shrinks) void this.afterDelete(state.shrinks.account, state.shrinks.container, () => this.eventContext(request, transactionId));
  }

  /**
   * Usage went down by an amount only Swift knows. If the scope is over a soft limit or had a write refused,
   * read its usage (in the background: the client has its answer) to report it being back below.
   */
  private async afterDelete(account: string, container: string | undefined, context: ContextSource): Promise<void> {
    const key = scopeKey(account, container);
    if (!this.watch.isWatching(key)) return;
    try {
      const levelInfo = await this.levelOf(account);
      const snapshot = await this.book.read(key, this.book.now() + 1);
      if (!snapshot.exists) return;
      this.watch.observe(this.scope(account, container, levelInfo), snapshot.persisted, this.book.settled(key) ?? snapshot, context);
    } catch (error) {
      this.log.debug({ err: error, account, container }, 'usage after a delete could not be read; the next check will see it');
    }
  }

  /** Settles the request's reservation: kept as a finished write on success, given back otherwise. */
  settle(request: FastifyRequest, statusCode: number | undefined): void {
    const state = request.quota;
    if (!state) return;
    const ok = statusCode !== undefined && statusCode >= 200 && statusCode < 300;
    if (state.reservation) {
      if (ok && (state.commitOnlyOn === undefined || state.commitOnlyOn === statusCode)) this.book.commit(state.reservation);
      else this.book.release(state.reservation);
    }
    if (ok) for (const key of state.invalidates ?? []) this.book.invalidate(key);
  }

  /**
   * For a request that ended without Swift's answer reaching us (the client went away). If the whole body
   * had arrived, Swift may still complete the write: count it (a later read corrects an over-count);
   * otherwise Swift cannot have stored anything.
   */
  settleUnanswered(request: FastifyRequest): void {
    const reservation = request.quota?.reservation;
    if (!reservation || reservation.settled) return;
    if (request.raw.complete) this.book.commit(reservation);
    else this.book.release(reservation);
  }

  /** An upload cut by the limiter reaches us as an upstream error: answer it with the refusal. */
  answerUpstreamError(request: FastifyRequest, reply: FastifyReply, error: unknown): boolean {
    this.settle(request, undefined);
    const cut = error instanceof UploadLimitError ? error : (error as { cause?: unknown })?.cause;
    if (!(cut instanceof UploadLimitError)) return false;
    this.reject(reply, cut.rejection as Denied);
    return true;
  }

  // ---- refusals ----------------------------------------------------------------------------------------

  private reject(reply: FastifyReply, decision: Denied): void {
    reply.request.quotaDecision = `rejected:${decision.kind}`;
    this.metrics.rejections.inc({ kind: decision.kind, level: decision.level });
    const { status, body, headers } = rejectionResponse(decision as Rejection);
    for (const [name, value] of Object.entries(headers)) reply.header(name, value);
    this.refuse(reply, status, body);
  }

  private refuse(reply: FastifyReply, status: number, body: string): void {
    reply.request.quotaDecision ??= `refused:${status}`;
    reply.code(status).header('content-type', 'text/plain; charset=utf-8');
    // The client may still be sending a body we will not read: close rather than drain it.
    if (!reply.request.raw.complete) reply.header('connection', 'close');
    reply.send(body.endsWith('\n') ? body : `${body}\n`);
  }
}

function splitKey(key: string): [string, string, string | undefined] {
  const kind = key.slice(0, 1);
  const rest = key.slice(2);
  if (kind === 'a') return ['a', rest, undefined];
  const slash = rest.indexOf('/');
  return ['c', rest.slice(0, slash), rest.slice(slash + 1)];
}
