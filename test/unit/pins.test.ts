import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ObjectPins, PinCycle } from '../../src/quota/pins.js';

const tick = () => new Promise((resolve) => setImmediate(resolve));

/** Whether a promise has settled after the pending callbacks ran. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  void promise.then(() => (done = true), () => (done = true));
  await tick();
  await tick();
  return done;
}

describe('ObjectPins: writes on their way and the manifests that read their objects', () => {
  test('a manifest reads a segment only once the write already on its way has been answered', async () => {
    const pins = new ObjectPins();
    const write = {};
    const leave = await pins.enter('a/c/s0', write);
    const draining = pins.drained(['a/c/s0', 'a/c/s1']);
    assert.ok(draining, 'a write is on its way');
    assert.equal(await settled(draining), false);
    leave();
    assert.equal(await settled(draining), true);
    assert.equal(pins.drained(['a/c/s0']), undefined);
  });

  test('a write waits for another request\'s pin on its object, never for its own', async () => {
    const pins = new ObjectPins();
    const manifest = {};
    const writer = {};
    const unpin = pins.pin(['a/c/s0'], [], manifest);
    const entering = pins.enter('a/c/s0', writer);
    assert.equal(typeof entering, 'object', 'a promise: it has to wait');
    assert.equal(await settled(Promise.resolve(entering)), false, 'waits for the manifest');
    assert.equal(pins.drained(['a/c/s0']), undefined, 'and is not on its way meanwhile');
    unpin();
    const leave = await entering;
    assert.ok(pins.drained(['a/c/s0']));
    leave();

    // Nobody else's pin on it: marked at once, no promise.
    const free = pins.enter('a/c/free', writer);
    assert.equal(typeof free, 'function');
    assert.ok(pins.drained(['a/c/free']));
    (free as () => void)();
    assert.equal(pins.drained(['a/c/free']), undefined);

    // Its own turn (a versioned overwrite's exclusive pin) does not hold it up.
    const own = await pins.exclusive('a/c/o', writer);
    const leaveOwn = await pins.enter('a/c/o', writer);
    leaveOwn();
    own();
  });

  test('a pin held by the writer and by another request: the writer goes on when the other lets go', async () => {
    const pins = new ObjectPins();
    const writer = {};
    const other = {};
    const ownHold = pins.pin(['a/c/x'], [], writer);
    const otherHold = pins.pin(['a/c/x'], [], other);
    const entering = Promise.resolve(pins.enter('a/c/x', writer));
    assert.equal(await settled(entering), false);
    otherHold();
    assert.equal(await settled(entering), true, 'only its own hold is left');
    (await entering)();
    ownHold();
  });

  test('prefix pins (a multipart upload being completed) hold the parts under them', async () => {
    const pins = new ObjectPins();
    const unpin = pins.pin([], ['a/c+segments/o/upload/'], {});
    const part = Promise.resolve(pins.enter('a/c+segments/o/upload/3', {}));
    assert.equal(await settled(part), false);
    unpin();
    assert.equal(await settled(part), true);
  });
});

describe('ObjectPins: a container\'s versioning held still by the object writes that decide on it', () => {
  test('a change waits for writes that read the versioning before it came; writes that come during it wait for it', async () => {
    const pins = new ObjectPins();
    const before = await pins.versioningSteady('a', 'c');
    const changing = pins.versioningChange('a', 'c');
    assert.equal(await settled(changing), false, 'the change waits for the write that decided before it');
    const during = Promise.resolve(pins.versioningSteady('a', 'c'));
    const elsewhere = pins.versioningSteady('a', 'other');
    assert.equal(typeof elsewhere, 'function', 'another container is not held: taken at once, no promise');
    before();
    const done = await changing;
    assert.equal(await settled(during), false, 'a write that came during the change waits until it is answered');
    done();
    (await during)();
    assert.equal(pins.size, 1, 'only the other container\'s pin is left');
    (elsewhere as () => void)();
    assert.equal(pins.size, 0);
  });
});

describe('ObjectPins: writes waiting for each other', () => {
  test('two writes each holding the other\'s object (copies A to B and B to A): the second to wait gives up, the first goes on', async () => {
    const pins = new ObjectPins();
    const first = {};
    const second = {};
    const releaseFirst = pins.pin(['a/c/A'], [], first);
    const releaseSecond = pins.pin(['a/c/B'], [], second);
    const firstEntering = Promise.resolve(pins.enter('a/c/B', first));
    assert.equal(await settled(firstEntering), false, 'the first waits for the second\'s pin on B');
    await assert.rejects(Promise.resolve(pins.enter('a/c/A', second)), PinCycle, 'the second would wait for the first, which waits for it');
    releaseSecond();
    const leave = await firstEntering;
    leave();
    releaseFirst();
    assert.equal(pins.size, 0);
  });

  test('a circle through three writes is found; writes waiting in a line are not refused', async () => {
    const pins = new ObjectPins();
    const [x, y, z] = [{}, {}, {}];
    const releases = [pins.pin(['k/A'], [], x), pins.pin(['k/B'], [], y), pins.pin(['k/C'], [], z)];
    const xWaits = Promise.resolve(pins.enter('k/B', x));
    const yWaits = Promise.resolve(pins.enter('k/C', y));
    assert.equal(await settled(xWaits), false);
    assert.equal(await settled(yWaits), false, 'x waits for y, y for z: a line, no circle');
    await assert.rejects(Promise.resolve(pins.enter('k/A', z)), PinCycle);
    releases[2]!();
    (await yWaits)();
    releases[1]!();
    (await xWaits)();
    releases[0]!();
    assert.equal(pins.size, 0);
  });
});
