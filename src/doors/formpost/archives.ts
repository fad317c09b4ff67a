/**
 * Form uploads into a container with legacy versioning (versioned_writes' X-Versions-Location or
 * X-History-Location): each file formpost PUTs makes Swift archive the object it replaces into the location
 * container, inside Swift. So, before any byte of a file passes, the file takes its object's turn (writes of the
 * object through this proxy wait until Swift has answered the form), the object it replaces is read (or, where
 * an earlier file of the same form has the name, is that file as it was passed on), and the archive Swift will
 * make is admitted against the location container's limits, held until Swift has answered, as for an object
 * PUT (quota/writes.ts).
 */
import type { LevelInfo } from '../../quota/admission.js';
import { replacedObject, type Caller } from '../../quota/caller.js';
import type { Usage } from '../../quota/decide.js';
import type { FormRefusal } from '../../quota/exchange.js';
import { containerKey } from '../../quota/ledger/ledger.js';
import { ObjectPins } from '../../quota/pins.js';
import { archivedByWrite } from '../../quota/versioning.js';
import type { Versioning } from '../../quota/ledger/ledger.js';
import type { WritePath } from '../../quota/writes.js';
import { formAnswer } from '../../quota/answers.js';

type Archiving = Extract<Versioning, { kind: 'archive' }>;

/** An archive moves an object between containers of the account: its total does not change (its policy's may: `movedFrom`). */
const MOVED: Usage = Object.freeze({ count: 0, bytes: 0 });

/** A file whose name the proxy cannot be sure of would archive an object it cannot name. */
const NAMELESS = formAnswer(400, 'a file whose name the quota proxy cannot read, into a container with legacy versioning (the object it replaces cannot be counted where Swift archives it)');

export class FormArchives {
  /** The files of this form passed on so far, by object name: the size of the last of each name. */
  private readonly written = new Map<string, () => number>();

  constructor(
    private readonly writes: WritePath,
    private readonly target: { readonly account: string; readonly container: string; readonly caller: Caller; readonly levelInfo: LevelInfo },
    private readonly versioning: Archiving,
  ) {}

  /** Before the file `object` (undefined: its name is not known) passes: its archive admitted, or the refusal. */
  async before(object: string | undefined): Promise<FormRefusal | undefined> {
    if (object === undefined) return { answer: NAMELESS };
    const { core, exchange } = this.writes;
    const { account, container, caller, levelInfo } = this.target;
    const earlier = this.written.get(object);
    let replaced: Usage | undefined;
    if (earlier) replaced = { count: 1, bytes: earlier() };
    else {
      // The object's turn, until Swift has answered the form: what is read now is what Swift archives.
      this.writes.endsWith(await core.pins.exclusive(ObjectPins.key(account, container, object), exchange));
      replaced = await replacedObject(core, caller, { account, container, object });
    }
    const archived = archivedByWrite(this.versioning, replaced);
    if (!archived) return undefined;
    const { location } = this.versioning;
    const archive = await core.admissions.admit({ scope: this.writes.scope(account, location, levelInfo), add: archived, target: undefined, context: this.writes.context, totalAdd: MOVED, movedFrom: container });
    if (!archive.admitted) return { decision: archive.decision };
    exchange.held.push(archive.reservation);
    if (!exchange.invalidates.includes(containerKey(account, location))) exchange.invalidates.push(containerKey(account, location));
    return undefined;
  }

  /** The file `object` passes; `size` says how far it came (final once the next file begins). */
  wrote(object: string | undefined, size: () => number): void {
    if (object !== undefined) this.written.set(object, size);
  }
}
