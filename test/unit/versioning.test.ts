import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { archivedByDelete, archivedByWrite, archivePrefix, DELETE_MARKER, keepsVersions, overwriteCredit, restorable, versionsContainer } from '../../src/quota/versioning.js';
import { versioningOf } from '../../src/swift/usage.js';

describe('versioningOf: a container HEAD as versioned_writes and object_versioning read it', () => {
  test('no header: no versioning', () => {
    assert.equal(versioningOf({}), undefined);
    assert.equal(versioningOf({ 'x-versions-location': '' }), undefined);
  });
  test('legacy locations are quoted container names; what follows "/" is ignored; history wins', () => {
    assert.deepEqual(versioningOf({ 'x-versions-location': 'arch%20ive/x' }), { kind: 'archive', mode: 'stack', location: 'arch ive' });
    assert.deepEqual(versioningOf({ 'x-history-location': 'h', 'x-versions-location': 'v' }), { kind: 'archive', mode: 'history', location: 'h' });
  });
  test('object_versioning: on, or off with its versions kept', () => {
    assert.deepEqual(versioningOf({ 'x-versions-enabled': 'True' }), { kind: 'object', enabled: true });
    assert.deepEqual(versioningOf({ 'x-versions-enabled': 'False' }), { kind: 'object', enabled: false });
    // Turned off, a legacy location set since is the one Swift uses.
    assert.deepEqual(versioningOf({ 'x-versions-enabled': 'False', 'x-versions-location': 'v' }), { kind: 'archive', mode: 'stack', location: 'v' });
  });
});

describe('what versioning stores besides the write', () => {
  const object = { kind: 'object', enabled: true } as const;
  const stack = { kind: 'archive', mode: 'stack', location: 'v' } as const;
  const history = { kind: 'archive', mode: 'history', location: 'v' } as const;
  const replaced = { count: 1, bytes: 700 };

  test('only object_versioning turned on keeps every write of a name (writes of it then share no bytes)', () => {
    assert.equal(keepsVersions(object), true);
    assert.equal(keepsVersions({ kind: 'object', enabled: false }), false);
    assert.equal(keepsVersions(stack), false);
    assert.equal(keepsVersions(history), false);
    assert.equal(keepsVersions(undefined), false);
  });
  test('an overwrite frees the replaced bytes, but not under object_versioning (they become a version)', () => {
    assert.deepEqual(overwriteCredit(undefined, replaced), replaced);
    assert.deepEqual(overwriteCredit(stack, replaced), replaced);
    assert.deepEqual(overwriteCredit(object, replaced), { count: 1, bytes: 0 });
    assert.deepEqual(overwriteCredit({ kind: 'object', enabled: false }, replaced), replaced);
    assert.equal(overwriteCredit(object, undefined), undefined);
  });
  test('a legacy overwrite archives the replaced object, as stored, in the location', () => {
    assert.deepEqual(archivedByWrite(stack, replaced), { count: 1, bytes: 700 });
    assert.deepEqual(archivedByWrite(history, replaced), { count: 1, bytes: 700 });
    assert.equal(archivedByWrite(stack, undefined), undefined);
    assert.equal(archivedByWrite(object, replaced), undefined);
  });
  test('a history-mode delete archives the object and a marker (a marker alone for a missing object)', () => {
    assert.deepEqual(archivedByDelete(history, replaced), { count: 2, bytes: 700 });
    assert.deepEqual(archivedByDelete(history, undefined), { count: 1, bytes: 0 });
    assert.equal(archivedByDelete(stack, replaced), undefined);
  });
  test('a stack-mode delete may restore any version that is not a delete marker: the largest is held', () => {
    assert.deepEqual(restorable([{ bytes: 10 }, { bytes: 9000, content_type: 'text/plain' }, { bytes: 0, content_type: DELETE_MARKER }]), { count: 1, bytes: 9000 });
    assert.equal(restorable([{ bytes: 0, content_type: DELETE_MARKER }]), undefined);
    assert.equal(restorable([]), undefined);
  });
  test("names as Swift builds them: '%03x%s/' on the UTF-8 bytes; the hidden versions container", () => {
    assert.equal(archivePrefix('o1'), '002o1/');
    assert.equal(archivePrefix('é'), '002é/');
    assert.equal(archivePrefix('x'.repeat(300)), `12c${'x'.repeat(300)}/`);
    assert.equal(versionsContainer('c'), '\u0000versions\u0000c');
  });
});
