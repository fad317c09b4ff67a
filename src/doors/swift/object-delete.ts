/**
 * An object delete frees usage, except where legacy versioning stores on a delete: history mode archives the
 * object and a delete marker in the location; stack mode copies the newest version back over the object (the
 * container may grow by it). Those are admitted, the object's writes and deletes taking turns as for an
 * overwrite, and the stack's versions held still.
 */
import type { Intent } from '../../quota/intent.js';
import { containerKey } from '../../quota/ledger/ledger.js';
import type { Write } from '../../quota/admission.js';
import type { WritePath } from '../../quota/writes.js';
import { ObjectPins } from '../../quota/pins.js';
import { listAll, replacedObject } from '../../quota/caller.js';
import { encodePath } from '../../swift/path.js';
import { archivedByDelete, archivePrefix, restorable } from '../../quota/versioning.js';
import type { Versioning } from '../../quota/ledger/ledger.js';
import type { Usage } from '../../quota/decide.js';
import type { Scope } from '../../quota/watch.js';

type ObjectDelete = Extract<Intent, { type: 'object-delete' }>;

/** What a history-mode delete adds to the account's total (its marker), and what a stack-mode one adds. */
const MARKER: Usage = Object.freeze({ count: 1, bytes: 0 });
const NOTHING: Usage = Object.freeze({ count: 0, bytes: 0 });

export async function admitObjectDelete(writes: WritePath, intent: ObjectDelete): Promise<void> {
  await admitDelete(writes, intent);
  // On its way to Swift: a manifest checked meanwhile reads the object once the delete has landed.
  if (!writes.exchange.answeredHere) await writes.enterWrite(intent);
}

async function admitDelete(writes: WritePath, intent: ObjectDelete): Promise<void> {
  const { core, exchange } = writes;
  const { account, container, object } = intent;
  await writes.untilUnpinned(account, container, object);
  // Decided on the container's versioning: held still until Swift has answered (in every process), or a change
  // made meanwhile (history mode turned on) would have Swift archive the object uncounted (as writes do).
  const holding = writes.held(core.pins.deleteSteady(account, container));
  if (typeof holding !== 'function') await holding;
  const key = containerKey(account, container);
  const versioning = await core.containerVersioning(key);
  exchange.invalidates.push(key);
  exchange.shrinks = { account, container };
  if (versioning?.kind !== 'archive') return;
  const notBefore = core.admissions.readNotBefore();
  const caller = await writes.authorised(account, container, object);
  if (!caller) return;
  const levelInfo = await writes.level(account);
  const scope = writes.scope(account, container, levelInfo);
  exchange.invalidates.push(containerKey(account, versioning.location));
  if (!core.admissions.enforces(scope)) return;
  const releases = [await core.pins.exclusive(ObjectPins.key(account, container, object), exchange)];
  const unpin = () => releases.forEach((release) => release());
  writes.endsWith(unpin);
  try {
    const current = await replacedObject(core, caller, { account, container, object });
    let write: Write | undefined;
    if (versioning.mode === 'history') {
      // The object moves into the location: the account's total gains the delete marker alone.
      write = { scope: writes.scope(account, versioning.location, levelInfo), add: archivedByDelete(versioning, current)!, target: undefined, context: writes.context, totalAdd: MARKER, movedFrom: container };
    } else {
      const prefix = archivePrefix(object);
      releases.push(await core.pins.pin([], [ObjectPins.key(account, versioning.location, prefix)], exchange));
      write = await restoredVersion(writes, versioning, prefix, scope, object, current, notBefore);
    }
    if (write) {
      if (!(await writes.admit(write))) return unpin();
      exchange.decision = 'admitted';
    }
    // Swift archives before it deletes, and writes a marker even for a missing object (then answers 404).
    exchange.partial = true;
    exchange.unpinOnSettle(unpin);
  } catch (error) {
    unpin();
    throw error;
  }
}

/** Stack mode: the newest version Swift copies back over the object, as a write of it (undefined: none). */
async function restoredVersion(writes: WritePath, versioning: Extract<Versioning, { kind: 'archive' }>, prefix: string, scope: Scope, object: string, current: Usage | undefined, notBefore: number): Promise<Write | undefined> {
  const versions = await listAll<{ name: string; bytes: number; content_type?: string }>(prefix, `the versions ${prefix} in ${versioning.location}`, (query) =>
    writes.core.swift.getAsService(`${encodePath('v1', scope.account, versioning.location)}?${query}`, 'listing', 64 * 1024 * 1024),
  );
  const restored = restorable(versions);
  if (!restored) return undefined;
  // The version moves back over the object: the account's total loses the object and gains nothing.
  return { scope, add: restored, target: object, replaced: () => Promise.resolve(current), context: writes.context, notBefore, totalAdd: NOTHING, movedFrom: versioning.location };
}
