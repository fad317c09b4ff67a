/**
 * The FormPost door: formpost (before any auth filter) PUTs each file of the form as the form streams in, once
 * the form's signature checks out with the account's or container's tempurl keys. Each file is admitted as it
 * begins, its signature checked as formpost checks it; each chunk of it must fit; the form is cut at the first
 * file or chunk that does not. The form goes to Swift chunked, so that a cut reaches formpost as a broken upload
 * (the file it was writing is not stored), never as the end of a shorter file.
 */
import type { SwiftAnswer } from '../../auth/authority.js';
import { checkFormPost } from '../../auth/signatures.js';
import { encodePath } from '../../swift/path.js';
import type { Log } from '../../log.js';
import type { Intent } from '../../quota/intent.js';
import { containerKey, invalidateUsage, type Reservation } from '../../quota/ledger/ledger.js';
import type { LevelInfo, Write } from '../../quota/admission.js';
import type { Exchange, FormRefusal } from '../../quota/exchange.js';
import type { QuotaCore } from '../../quota/core.js';
import type { WritePath } from '../../quota/writes.js';
import { withKeysReadNow } from '../../quota/caller.js';
import { answerSwift, formAnswer, refuse, reject } from '../../quota/answers.js';
import { createFormLimiter, type FormAttributes } from '../../quota/formpost.js';
import { FormArchives } from './archives.js';
import type { DoorRequest } from '../door.js';

type FormUpload = Extract<Intent, { type: 'form-upload' }>;

export const HISTORY_FORMS_REFUSED = 'Legacy object versioning in history mode (X-History-Location) is on for this container: a form cut at the quota leaves a partial file the proxy must delete, and that delete would be archived inside Swift, uncounted. Upload the objects one by one.';

export async function admitFormUpload(writes: WritePath, request: DoorRequest, intent: FormUpload): Promise<void> {
  const { core, exchange, view } = writes;
  const { account, container } = intent;
  const levelInfo = await writes.level(account);
  const scope = writes.scope(account, container, levelInfo);
  if (!core.admissions.enforces(scope)) return;
  const archives = await formArchives(writes, account, container, levelInfo);
  if (archives === 'refused') return;
  // formpost names a file's object: the form's path (with a "/" after a bare container) and the filename.
  const prefix = intent.object === undefined ? '' : intent.object;
  const objectOf = (filename: string | undefined) => (filename === undefined ? undefined : `${prefix}${filename}`);
  exchange.partial = true;
  exchange.invalidates.push(scope.key);
  exchange.decision = 'admitted';
  writes.follow();
  view.upstream.set('content-length', undefined);

  const write: Write = {
    scope,
    add: { count: 1, bytes: 0 },
    target: undefined,
    context: writes.context,
    alsoCounted: [{ scope: writes.scope(account, undefined, levelInfo), snapshot: levelInfo.snapshot }],
  };
  let current: Reservation | undefined;
  const noCredit = { bytes: 0, looked: true };
  const source = request.raw;
  const limiter = createFormLimiter<FormRefusal>(intent.boundary, {
    file: async (attributes, filename) => {
      const answer = await signatureRefusal(core, intent, attributes);
      if (answer) return { answer };
      const archived = archives && (await archives.before(objectOf(filename)));
      if (archived) return archived;
      const result = await core.admissions.admit(write);
      if (!result.admitted) return { decision: result.decision };
      const reservation = (current = result.reservation);
      exchange.held.push(reservation);
      archives?.wrote(objectOf(filename), () => reservation.bytes);
      return undefined;
    },
    fileBytes: async (bytes) => {
      const decision = current ? await core.admissions.grow(write, current, bytes, noCredit) : undefined;
      return decision ? { decision } : undefined;
    },
    cut: (refusal, partial) => {
      exchange.cut = {
        refusal,
        partial: partial?.filename === undefined ? undefined : { account, container, object: objectOf(partial.filename)! },
        unknownPartial: partial !== undefined && partial.filename === undefined,
      };
      source.unpipe(limiter);
    },
  });
  source.on('error', (error) => limiter.destroy(error));
  source.on('aborted', () => limiter.destroy(new Error('client aborted the upload')));
  source.pipe(limiter);
  exchange.body = limiter;
}

/**
 * Legacy versioning of the form's container: what its files archive (archives.ts), undefined without it; 'refused'
 * (answered) in history mode. The container's versioning is held still until Swift has answered the form.
 */
async function formArchives(writes: WritePath, account: string, container: string, levelInfo: LevelInfo): Promise<FormArchives | 'refused' | undefined> {
  const { core, exchange } = writes;
  await writes.held(core.pins.versioningSteady(account, container));
  const versioning = await core.containerVersioning(containerKey(account, container));
  if (versioning?.kind !== 'archive') return undefined;
  // The proxy deletes a cut form's partial file, which history mode would archive (and mark) inside Swift.
  if (versioning.mode === 'history') {
    refuse(exchange, 400, HISTORY_FORMS_REFUSED);
    return 'refused';
  }
  return new FormArchives(writes, { account, container, caller: { kind: 'tempurl', account, container }, levelInfo }, versioning);
}

/** formpost's refusal of a file's form signature, checked with the keys read now; undefined: it accepts it. */
async function signatureRefusal(core: QuotaCore, intent: FormUpload, attributes: FormAttributes): Promise<SwiftAnswer | undefined> {
  const problem = await withKeysReadNow(core, intent.account, intent.container, (keys) =>
    checkFormPost({
      path: intent.path,
      attributes,
      keys: [...keys.account, ...keys.container],
      digests: core.capabilities().formpostDigests,
      nowSeconds: Date.now() / 1000,
    }),
  (result) => result === undefined);
  if (problem === undefined) return undefined;
  if (problem === 'expired not an integer') return formAnswer(400, problem);
  return formAnswer(401, problem.replace(/\b\w/g, (c) => c.toUpperCase()));
}

/** The refusal of a cut form upload; the file Swift stored in part (as far as it was admitted) goes. */
export async function answerCut(core: QuotaCore, exchange: Exchange, log: Log): Promise<void> {
  const cut = exchange.cut!;
  if (cut.partial) {
    const { account, container, object } = cut.partial;
    try {
      await core.swift.delete(encodePath('v1', account, container, object));
    } catch (error) {
      log.warn({ err: error, object: cut.partial }, 'the part of a cut form file Swift stored could not be removed');
    }
    invalidateUsage(core.ledger, containerKey(account, container), core.config.quota.levels.policies);
  } else if (cut.unknownPartial) {
    log.warn('a form was cut inside a file whose name the proxy could not read: Swift keeps that file as far as it came');
  }
  if ('answer' in cut.refusal) answerSwift(exchange, cut.refusal.answer);
  else reject(exchange, core.metrics, cut.refusal.decision);
}
