/**
 * The write path every front door admits through: Swift authorises the caller, the account's level gives the
 * scope's limits, the write is admitted (admission.ts) and what it reserves is held on the request's exchange
 * until Swift has answered. Written once; each door says what the writes are (doors/*).
 */
import { callerToken, type Credentials } from '../auth/authority.js';
import type { SwiftView } from '../proxy/swift-view.js';
import type { Reservation } from './ledger/ledger.js';
import { containerKey } from './ledger/ledger.js';
import type { Admission, Denied, LevelInfo, Write } from './admission.js';
import type { Exchange } from './exchange.js';
import type { QuotaCore } from './core.js';
import type { ContextSource, Scope } from './watch.js';
import { ObjectPins } from './pins.js';
import { answerSwift, refuse, reject } from './answers.js';
import { authorise, headFor, type Caller } from './caller.js';
import { track } from './settle.js';

export type Admitted = Extract<Admission, { admitted: true }>;

/** Why form, S3 multipart and bulk uploads into a legacy-versioned container are refused. */
export const LEGACY_VERSIONING_REFUSED = 'Legacy object versioning (X-Versions-Location / X-History-Location) is on for this container: form, S3 multipart and bulk uploads into it are not counted by the quota proxy yet; upload the objects one by one.';

/** What one request's admission works with: the core, the request's exchange, and its view. */
export class WritePath {
  constructor(
    readonly core: QuotaCore,
    readonly exchange: Exchange,
    readonly view: SwiftView,
  ) {}

  /** Who asked, for quota events (built only when an event fires). */
  readonly context: ContextSource = () => this.core.eventContext(this.exchange, callerToken(this.view.headers));

  /** The caller Swift takes the write from; undefined when Swift would refuse it (then answered with Swift's refusal). */
  async authorised(account: string, container?: string, object?: string): Promise<Caller | undefined> {
    const { verdict, caller } = await authorise(this.core, this.view, account, container, object);
    if (verdict.allowed) return caller;
    answerSwift(this.exchange, verdict.answer);
    return undefined;
  }

  level(account: string): Promise<LevelInfo> {
    return this.core.admissions.levelOf(account);
  }

  scope(account: string, container: string | undefined, level: LevelInfo): Scope {
    return this.core.admissions.scope(account, container, level);
  }

  /** The scope `container` (or the account) counts in, if any of its kinds has a limit. */
  enforced(account: string, container: string | undefined, level: LevelInfo): Scope | undefined {
    const scope = this.scope(account, container, level);
    return this.core.admissions.enforces(scope) ? scope : undefined;
  }

  /**
   * Admits `write` and holds what it reserves. Refused, the request is answered the refusal and `alsoHeld`
   * (what it reserved before) is given back at once.
   */
  async admit(write: Write, alsoHeld: readonly Reservation[] = []): Promise<Admitted | undefined> {
    const result = await this.core.admissions.admit(write);
    if (!result.admitted) {
      for (const reservation of alsoHeld) this.core.ledger.release(reservation);
      this.reject(result.decision);
      return undefined;
    }
    this.hold(result.reservation);
    return result;
  }

  reject(decision: Denied): void {
    reject(this.exchange, this.core.metrics, decision);
  }

  /**
   * Reserves quota for an admitted write until the request's exchange with Swift ends: whatever the client does
   * meanwhile, the reservation lasts until Swift has answered or the request to Swift has failed.
   */
  hold(reservation: Reservation): Reservation {
    const exchange = track(this.core, this.exchange);
    // The client went before anything was sent: nothing will be (the request is not sent to Swift any more).
    if (exchange.over) this.core.ledger.release(reservation);
    else exchange.held.push(reservation);
    return reservation;
  }

  /** The request follows its exchange with Swift from now on: what it holds is settled when that ends. */
  follow(): void {
    track(this.core, this.exchange);
  }

  /** Calls `release` when the request's exchange with Swift ends (at once if it has ended already). */
  endsWith(release: () => void): void {
    track(this.core, this.exchange).finally(release);
  }

  /** What a held pin (`holding`) gives back, once it is held; released when the exchange ends. */
  async held(holding: (() => void) | Promise<() => void>): Promise<() => void> {
    const release = typeof holding === 'function' ? holding : await holding;
    this.endsWith(release);
    return release;
  }

  /**
   * One more container in an account (`scope`). A PUT of an existing container is an update (Swift answers
   * 202), not a new container: it may pass on that credit, but holds its place until Swift has answered.
   */
  containerWrite(scope: Scope, container: string, caller: Caller): Write {
    return {
      scope,
      add: { count: 1, bytes: 0 },
      target: container,
      replaced: async () => {
        const { status } = await headFor(this.core, caller, { account: scope.account, container }, '');
        return status >= 200 && status < 300 ? { count: 1, bytes: 0 } : undefined;
      },
      context: this.context,
    };
  }

  /**
   * Form uploads and S3 multipart uploads (and bulk extractions, file by file) into a container with legacy
   * versioning would archive the objects they replace, file by file, inside Swift: not counted yet, so such
   * containers take none through the proxy (object_versioning counts versions in the container itself and takes
   * them). True when refused so (and answered).
   */
  async refusedForLegacyVersioning(account: string, container: string): Promise<boolean> {
    if ((await this.core.containerVersioning(containerKey(account, container)))?.kind !== 'archive') return false;
    refuse(this.exchange, 400, LEGACY_VERSIONING_REFUSED);
    return true;
  }

  /** What to wait for while a manifest on its way to Swift rests on this object (pins.ts); undefined: nothing. */
  untilUnpinned(account: string, container: string, object: string): Promise<void> | undefined {
    return this.core.pins.waitFor(ObjectPins.key(account, container, object));
  }

  /**
   * The write goes to Swift now: once no other request's pin is on its object (a manifest resting on it, a write
   * taking its turn), it is marked as on its way until Swift answers, so a manifest checked meanwhile reads the
   * object only after it has landed (pins.ts).
   */
  enterWrite(written: { account: string; container: string; object: string }): Promise<void> | undefined {
    // Other processes' pins (shared-pins.ts): a reservation of the object was checked against them as the ledger
    // made it; a delete cannot make what a pin holds larger (a manifest or copy resting on the object then fails).
    const checked = this.exchange.line.method === 'DELETE' || this.exchange.held.some((held) => held.key === containerKey(written.account, written.container) && held.target === written.object);
    const entered = this.core.pins.enter(ObjectPins.key(written.account, written.container, written.object), this.exchange, checked);
    const marked = (leave: () => void) => {
      this.exchange.unpinOnSettle(leave);
      this.endsWith(leave);
    };
    if (typeof entered !== 'function') return entered.then(marked);
    marked(entered);
    return undefined;
  }

  /**
   * A write admitted on the caller's grant as kept (authority.ts), until its exchange ends: refused with Swift's
   * answer (and cut) if the grant is revoked before Swift can have all of it (grants.ts); the grant is forgotten if
   * Swift refuses it.
   */
  trackGrant(scopeKey: string, credentials: Credentials, account: string, container: string, bodyComplete: () => boolean): void {
    const exchange = track(this.core, this.exchange);
    exchange.finally(
      this.core.grants.add(scopeKey, {
        credentials,
        account,
        container,
        since: Date.now(),
        // Seen by Swift with its body still coming from the client: Swift cannot have all of it yet, and cutting
        // it stores nothing, so a grantee cannot keep a started upload open on a revoked grant.
        reachedSwift: () => exchange.reachedSwift && bodyComplete(),
        refuse: (answer) => {
          exchange.decision = `refused:${answer.status}`;
          return exchange.interrupt({ status: answer.status, headers: answer.headers, body: answer.body });
        },
      }),
    );
    exchange.whenRefused(() => this.core.authority.forget(credentials, account, container));
  }
}
