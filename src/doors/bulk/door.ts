/**
 * The bulk door: archive extraction (`?extract-archive`) and bulk delete. Each regular file of an archive is
 * admitted before its bytes go on, as the object it becomes (no overwrite credit: what it replaces is not looked
 * up), and each container it lands in as a container an account-level extraction may make. Swift is sent a tar
 * the proxy writes of the admitted files (their counted names, sizes and metadata), ending before the first file
 * past a limit; its answer then lists that file as refused.
 */
import type { Readable } from 'node:stream';
import type { Intent } from '../../quota/intent.js';
import { accountKey, containerKey } from '../../quota/ledger/ledger.js';
import type { Denied, LevelInfo } from '../../quota/admission.js';
import type { Exchange } from '../../quota/exchange.js';
import type { QuotaCore } from '../../quota/core.js';
import { LEGACY_VERSIONING_REFUSED, type WritePath } from '../../quota/writes.js';
import type { Caller } from '../../quota/caller.js';
import type { Scope } from '../../quota/watch.js';
import { refuse, reject } from '../../quota/answers.js';
import { rejectionResponse, type Rejection } from '../../quota/responses.js';
import { MAX_EXTENDED_HEADER } from '../../quota/tar-reader.js';
import { filterArchive, type ArchiveFile, type FileVerdict } from '../../quota/archive.js';
import { formatBulkAnswer, parseBulkAnswer, withRefusal } from '../../quota/bulk-response.js';
import { createDeleteListChecker } from '../../quota/bulk-delete.js';
import type { DoorRequest } from '../door.js';

/** Why a bulk delete listing a legacy-versioned container is refused. */
const BULK_DELETE_VERSIONING_REFUSED = 'Legacy object versioning (X-Versions-Location / X-History-Location) is on for a container this bulk delete lists: Swift stores objects when it deletes there, which the quota proxy counts only for deletes sent one by one.';

/** The most of Swift's bulk answer read to add a refusal to (its body is a few lines per failed file). */
const MAX_BULK_ANSWER = 4 * 1024 * 1024;

/** What an extraction has admitted so far. */
interface Extraction {
  readonly writes: WritePath;
  readonly account: string;
  readonly caller: Caller;
  readonly levelInfo: LevelInfo;
  readonly accountScope: Scope;
  readonly containers: Set<string>;
  readonly versioningHeld: Set<string>;
}

export async function admitExtract(writes: WritePath, request: DoorRequest, intent: Extract<Intent, { type: 'extract-archive' }>): Promise<void> {
  const { exchange, view } = writes;
  const { account, base } = intent;
  const caller = await writes.authorised(account, base === '' ? undefined : base.split('/')[0], undefined);
  if (!caller) return;
  const levelInfo = await writes.level(account);
  // The archive reader may hold a file's extended header and the global ones (1 MiB each) in memory.
  if (!request.holdBuffer(account, 2 * MAX_EXTENDED_HEADER)) return;
  // Whatever Swift answers, the files it extracted before are stored: kept, and usage read afresh.
  // Swift's bulk answers at once and reports in the body: done when that ends.
  exchange.partial = true;
  exchange.settleAtEnd = true;
  exchange.invalidates.push(accountKey(account));
  exchange.decision = 'admitted';
  writes.follow();
  view.upstream.set('content-length', undefined);
  view.addedQuery = 'extract-archive=tar';
  request.sendContinue();
  const extraction: Extraction = { writes, account, caller, levelInfo, accountScope: writes.scope(account, undefined, levelInfo), containers: new Set(), versioningHeld: new Set() };
  exchange.body = filterArchive(request.raw, {
    gzip: intent.gzip,
    base,
    file: (file) => admitMember(extraction, file),
    broken: (error) => request.log.info({ err: error }, 'an archive to extract could not be read, or was refused: Swift is sent a tar it refuses there'),
  });
}

/**
 * One member of the archive. A file past Swift's max_file_size is counted too: the size /info gave (or its
 * default, while /info is unread or hidden) may be below the one Swift runs with, and then bulk would store it
 * uncounted.
 */
async function admitMember(extraction: Extraction, file: ArchiveFile): Promise<FileVerdict> {
  const { writes, account, levelInfo, accountScope } = extraction;
  const { core, exchange } = writes;
  const stop = (stopped: NonNullable<Exchange['extractStopped']>): FileVerdict => {
    exchange.extractStopped = stopped;
    return 'stop';
  };
  const path = `${file.container}/${file.object}`;
  // An extracted file would archive what it replaces inside Swift, as a form's would (not counted yet).
  if ((await core.containerVersioning(containerKey(account, file.container)))?.kind === 'archive') return stop({ path, reason: LEGACY_VERSIONING_REFUSED });
  const made = await admitContainer(extraction, file.container);
  if (made) return stop({ path, decision: made });
  const scope = writes.enforced(account, file.container, levelInfo);
  if (!scope) return 'send';
  if (!extraction.versioningHeld.has(file.container)) {
    // Members are decided on the container's versioning (those of one name replace each other unless each is
    // kept as a version): held still until Swift has answered the extraction.
    extraction.versioningHeld.add(file.container);
    exchange.unpinOnSettle(await writes.held(core.pins.versioningSteady(account, file.container)));
  }
  const result = await core.admissions.admit({ scope, add: { count: 1, bytes: file.size }, target: file.object, context: writes.context, alsoCounted: [{ scope: accountScope, snapshot: levelInfo.snapshot }] });
  if (!result.admitted) return stop({ path, decision: result.decision });
  exchange.held.push(result.reservation);
  return 'send';
}

/** The first member in a container: the container, as one an account-level extraction may make (refused: why). */
async function admitContainer(extraction: Extraction, container: string): Promise<Denied | undefined> {
  const { writes, account, caller, accountScope } = extraction;
  if (extraction.containers.has(container)) return undefined;
  extraction.containers.add(container);
  writes.exchange.invalidates.push(containerKey(account, container));
  if (!writes.core.admissions.enforces(accountScope)) return undefined;
  const made = await writes.core.admissions.admit(writes.containerWrite(accountScope, container, caller));
  if (!made.admitted) return made.decision;
  writes.exchange.held.push(made.reservation);
  return undefined;
}

/** Swift's answer to a stopped extraction, with the file it was stopped at listed as refused (bulk-response.ts). */
export async function answerExtract(core: QuotaCore, exchange: Exchange, statusCode: number, headers: Record<string, unknown>, body: Readable): Promise<void> {
  const stopped = exchange.extractStopped!;
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
  const parsed = statusCode === 200 ? parseBulkAnswer(Buffer.concat(chunks).toString('utf8'), contentType) : undefined;
  const answered = (extra: Record<string, string>, listed: ReturnType<typeof withRefusal>) => {
    exchange.reply = { status: 200, headers: { ...extra, 'content-type': contentType ?? 'text/plain', connection: 'close' }, body: formatBulkAnswer(listed, contentType) };
  };
  if ('reason' in stopped) {
    if (!parsed) return refuse(exchange, 400, stopped.reason);
    exchange.decision = 'refused:400';
    return answered({}, withRefusal(parsed, stopped.path, '400 Bad Request', stopped.reason));
  }
  const rejection = rejectionResponse(stopped.decision as Rejection);
  core.metrics.rejections.inc({ kind: stopped.decision.kind, level: stopped.decision.level });
  exchange.decision = `rejected:${stopped.decision.kind}`;
  if (!parsed) return reject(exchange, core.metrics, stopped.decision);
  const statusLine = rejection.status === 403 ? '403 Forbidden' : '413 Request Entity Too Large';
  answered(rejection.headers, withRefusal(parsed, stopped.path, statusLine, rejection.body.trim()));
}

/**
 * A bulk delete stores on delete where legacy versioning is on, as single deletes do: the list is checked as it
 * streams, each container's versioning held still until Swift's answer ends, and cut at a container with legacy
 * versioning (such deletes go one by one, where they are counted).
 */
export async function admitBulkDelete(writes: WritePath, request: DoorRequest, account: string): Promise<void> {
  const { core, exchange } = writes;
  exchange.settleAtEnd = true;
  exchange.partial = true;
  exchange.invalidates.push(accountKey(account));
  writes.follow();
  const seen = new Map<string, Promise<string | undefined>>();
  const check = async (container: string): Promise<string | undefined> => {
    await writes.held(core.pins.deleteSteady(account, container));
    exchange.invalidates.push(containerKey(account, container));
    return (await core.containerVersioning(containerKey(account, container)))?.kind === 'archive' ? BULK_DELETE_VERSIONING_REFUSED : undefined;
  };
  const checker = createDeleteListChecker((container) => {
    if (!seen.has(container)) seen.set(container, check(container));
    return seen.get(container)!;
  });
  const source = request.raw;
  source.on('error', (error) => checker.destroy(error));
  source.on('aborted', () => checker.destroy(new Error('client aborted the delete list')));
  source.pipe(checker);
  exchange.body = checker;
}
