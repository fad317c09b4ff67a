/**
 * The Swift API's door: a request read as Swift's proxy server reads it (quota/intent.ts) and admitted as the
 * write it is. S3 ends here too (doors/s3/door.ts admits the Swift requests s3api makes), as formpost's and
 * bulk's own doors hand the files they carry to the same write path.
 */
import { callerCredentials, callerToken } from '../../auth/authority.js';
import { tempUrlParams } from '../../auth/signatures.js';
import type { Intent } from '../../quota/intent.js';
import { accountKey, containerKey, scopeKey } from '../../quota/ledger/ledger.js';
import { admitObject, WritePath } from '../../quota/writes.js';
import type { QuotaCore } from '../../quota/core.js';
import { ObjectPins } from '../../quota/pins.js';
import { headFor } from '../../quota/caller.js';
import { NO_SUCH_ETAG, type SourceHead } from '../../quota/copies.js';
import { answerSwift, refuse } from '../../quota/answers.js';
import { versionsContainer } from '../../quota/versioning.js';
import type { DoorRequest } from '../door.js';
import { admitObjectDelete } from './object-delete.js';
import { admitOverrideChange, admitOwnerLimitsChange } from './overrides.js';
import { admitFormUpload } from '../formpost/door.js';
import { admitBulkDelete, admitExtract } from '../bulk/door.js';

type Of<T extends Intent['type']> = Extract<Intent, { type: T }>;

/** A Swift API request that may write, admitted as the write it is. */
export function admitSwift(core: QuotaCore, request: DoorRequest, intent: Exclude<Intent, { type: 'pass' }>): Promise<void> | void {
  return admitIntent(new WritePath(core, request.exchange, request.view), request, intent);
}

/** Admits one intent; a promise only where something is awaited (object writes without pins or copies: none before their checks). */
export function admitIntent(writes: WritePath, request: DoorRequest, intent: Exclude<Intent, { type: 'pass' }>): Promise<void> | void {
  const { exchange } = writes;
  switch (intent.type) {
    case 'refuse':
      return refuse(exchange, intent.status, intent.reason);
    case 'level-change':
      return admitLevelChange(writes, intent.account, intent.level);
    case 'protected-metadata':
      return admitProtectedMetadata(writes, request, intent);
    case 'override-change':
      return admitOverrideChange(writes, intent, () => (intent.then.type === 'pass' ? undefined : admitIntent(writes, request, intent.then)));
    case 'owner-limits-change':
      return admitOwnerLimitsChange(writes, intent, () => (intent.then.type === 'pass' ? undefined : admitIntent(writes, request, intent.then)));
    case 'describe':
      return admitDescribe(writes, intent);
    case 'container-create':
      // Counted or not, the container may be new, in a storage policy of its own: a reading of it as missing, or
      // of one deleted before it (by any proxy), would count its objects in no policy's total or another's.
      exchange.rereadEverywhere.push(containerKey(intent.account, intent.container));
      return admitContainerCreate(writes, intent.account, intent.container);
    case 'container-delete':
      exchange.invalidates.push(accountKey(intent.account), containerKey(intent.account, intent.container));
      exchange.forgets.push(containerKey(intent.account, intent.container));
      // The container may be made again in another storage policy: every process reads it again.
      exchange.rereadEverywhere.push(containerKey(intent.account, intent.container));
      exchange.shrinks = { account: intent.account };
      return;
    case 'object-update':
      return objectUpdate(writes, intent);
    case 'object-delete':
      return admitObjectDelete(writes, intent);
    case 'versioning-change':
      return admitVersioningChange(writes, request, intent);
    case 'object-write':
      return objectWrite(writes, request, intent);
    case 'form-upload':
      return admitFormUpload(writes, request, intent);
    case 'extract-archive':
      return admitExtract(writes, request, intent);
    case 'bulk-delete':
      return admitBulkDelete(writes, request, intent.account);
  }
}

/**
 * An object PUT (or COPY, or a PUT with X-Copy-From, or an SLO manifest), once no manifest on its way rests on
 * the object. Swift's copy reads its source before it asks whether the caller may write the destination: a
 * source the caller cannot read ends the copy with that answer (404, 403), which Swift gives itself; pinned to no
 * version, the copy stores nothing whatever the source becomes meanwhile.
 */
function objectWrite(writes: WritePath, request: DoorRequest, intent: Of<'object-write'>): Promise<void> {
  const { core, view } = writes;
  const { account, container, object } = intent.target;
  const pinned = core.pins.waitFor(ObjectPins.key(account, container, object));
  const copied = intent.copy && !view.s3 && !tempUrlParams(view.path!.query);
  if (!pinned && !copied) return admitObject(writes, request, intent, undefined);
  return objectWriteAfter(writes, request, intent, pinned, copied);
}

async function objectWriteAfter(writes: WritePath, request: DoorRequest, intent: Of<'object-write'>, pinned: Promise<void> | undefined, copied: boolean | undefined): Promise<void> {
  const { core, view } = writes;
  if (pinned) await pinned;
  let source: SourceHead | undefined;
  if (copied) {
    source = await headFor(core, { kind: 'credentials', credentials: callerCredentials(view.headers) }, intent.copy!.ref, intent.copy!.query ?? '');
    if (source.status < 200 || source.status >= 300 || !source.headers.etag) {
      view.upstream.set('if-match', NO_SUCH_ETAG);
      return writes.enterWrite(intent.target);
    }
  }
  return admitObject(writes, request, intent, source);
}

/** An object POST: once no manifest on its way rests on the object, it is on its way itself. */
async function objectUpdate(writes: WritePath, intent: Of<'object-update'>): Promise<void> {
  await writes.untilUnpinned(intent.account, intent.container, intent.object);
  return writes.enterWrite(intent);
}

/** Only a reseller admin sets or removes an account's level (X-Account-Meta-Quota). */
async function admitLevelChange(writes: WritePath, account: string, level: string | undefined): Promise<void> {
  const { core, exchange, view } = writes;
  if (!(await core.isResellerAdmin(callerToken(view.headers)))) {
    const verdict = await core.authority.mayWrite(callerCredentials(view.headers, view.s3), account);
    if (!verdict.allowed) return answerSwift(exchange, verdict.answer);
    core.metrics.levelChanges.inc({ outcome: 'forbidden' });
    return refuse(exchange, 403, 'Forbidden: only a reseller admin may set or remove an account quota level.');
  }
  if (level !== undefined && !core.config.quota.levels.byLevel.has(level)) {
    core.metrics.levelChanges.inc({ outcome: 'invalid' });
    return refuse(exchange, 400, `Unknown quota level "${level}". Valid levels: ${core.config.quota.levels.names.join(', ')}.`);
  }
  core.metrics.levelChanges.inc({ outcome: 'passed' });
  exchange.invalidates.push(accountKey(account));
  exchange.rereadEverywhere.push(accountKey(account));
  exchange.levelChanged = account;
  exchange.levelSet = { account, level };
}

/** The proxy's own metadata (X-*-Meta-Quota-Proxy-*): reseller admins only, and forgotten once changed. */
async function admitProtectedMetadata(writes: WritePath, request: DoorRequest, intent: Of<'protected-metadata'>): Promise<void> {
  const { core, exchange, view } = writes;
  if (!(await core.isResellerAdmin(callerToken(view.headers)))) {
    const verdict = await core.authority.mayWrite(callerCredentials(view.headers, view.s3), intent.account);
    if (!verdict.allowed) return answerSwift(exchange, verdict.answer);
    return refuse(exchange, 403, 'Forbidden: the quota proxy\'s own metadata (X-*-Meta-Quota-Proxy-*) may be changed by reseller admins only.');
  }
  if (intent.then.type !== 'pass') await admitIntent(writes, request, intent.then);
  if (exchange.answeredHere) return;
  const key = scopeKey(intent.account, intent.container);
  exchange.invalidates.push(key);
  exchange.forgets.push(key);
}

/** A HEAD or GET of an account or container: its quota details go along, to those Swift lets read the account. */
async function admitDescribe(writes: WritePath, intent: Of<'describe'>): Promise<void> {
  const { core, exchange, view } = writes;
  const { level, limits, soft } = await core.admissions.levelOf(intent.account);
  // A container's reader need not be the account's: quota details go to those Swift lets read the account.
  if (intent.container !== undefined && !(await core.authority.mayReadAccount(callerCredentials(view.headers, view.s3), intent.account))) return;
  const policies = core.config.quota.levels.byPolicy.get(level);
  exchange.describe = { level, limits, soft, container: intent.container !== undefined, ...(policies?.size ? { policies } : {}) };
}

/** One more container in the account. */
async function admitContainerCreate(writes: WritePath, account: string, container: string): Promise<void> {
  const { exchange, view } = writes;
  const caller = await writes.authorised(account);
  if (!caller) return;
  const scope = writes.enforced(account, undefined, await writes.level(account));
  if (!scope) return;
  const admitted = await writes.admit(writes.containerWrite(scope, container, caller));
  if (!admitted) return;
  // s3api answers 200 to a new bucket and 409 to an existing one.
  exchange.commitOnlyOn = view.s3 ? 200 : 201;
  exchange.invalidates.push(containerKey(account, container));
  exchange.watched = { scope, persisted: admitted.snapshot.persisted };
  exchange.decision = 'admitted';
}

/**
 * A container's versioning changes. Object writes through this proxy that decided on the versioning as it was
 * (counting on what an overwrite, or writes of one name, free) go first; those that have not read it yet wait
 * until Swift has answered the change (pins.ts). Turning object_versioning on for the first time makes the
 * hidden versions container: one more in the account.
 */
async function admitVersioningChange(writes: WritePath, request: DoorRequest, intent: Of<'versioning-change'>): Promise<void> {
  const { core, exchange } = writes;
  const { account, container } = intent;
  const key = containerKey(account, container);
  const changed = await writes.held(core.pins.versioningChange(account, container));
  if (intent.then.type !== 'pass') await admitIntent(writes, request, intent.then);
  if (exchange.answeredHere) return;
  if (intent.enablesObjectVersioning && (await core.ledger.read(key, core.admissions.readNotBefore())).versioning?.kind !== 'object') {
    const caller = await writes.authorised(account);
    if (!caller) return;
    const scope = writes.enforced(account, undefined, await writes.level(account));
    if (scope) {
      const hidden = { ...writes.containerWrite(scope, versionsContainer(container), caller), replaced: undefined };
      if (!(await writes.admit(hidden, exchange.held))) return;
      exchange.decision = 'admitted';
    }
  }
  exchange.invalidates.push(key, accountKey(account));
  exchange.forgets.push(key);
  exchange.unpinOnSettle(changed);
}
