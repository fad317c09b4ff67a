/**
 * Writes admitted on a kept grant (src/quota/grants.ts): which of them are asked of Swift again, when, and what
 * happens to those Swift now refuses. Time is node:test's mocked Date: `sweep` reads Date.now() itself, and a
 * write's age is measured against it to the millisecond, without waiting.
 */
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { GrantedWrites, type AskNow, type GrantedWrite } from '../../src/quota/grants.js';
import type { Credentials, SwiftAnswer, Verdict } from '../../src/auth/authority.js';

/** How long a write may be held on a grant before `sweep` asks it again: quota/core.ts sweeps with GRANT_RECHECK_MS, 10 s. */
const HELD_MS = 10_000;
const START = 1_800_000_000_000;

const FORBIDDEN: SwiftAnswer = Object.freeze({ status: 403, headers: {}, body: Buffer.from('<html><h1>Forbidden</h1></html>') });
const ALLOWED: Verdict = { allowed: true };
const REFUSED: Verdict = { allowed: false, answer: FORBIDDEN };

function credentials(name: string): Credentials {
  const headers = { 'x-auth-token': name };
  return { headers, key: JSON.stringify(headers) };
}

interface FakeWrite extends GrantedWrite {
  refusedWith: SwiftAnswer | undefined;
  reached: boolean;
}

function write(who: string, container = 'c', since = Date.now()): FakeWrite {
  const fake: FakeWrite = {
    credentials: credentials(who),
    account: 'AUTH_a',
    container,
    since,
    refusedWith: undefined,
    reached: false,
    reachedSwift: () => fake.reached,
    refuse: async (answer) => {
      fake.refusedWith = answer;
    },
  };
  return fake;
}

/** Swift as the grants see it: a verdict per caller (default allowed), and every question asked. */
function swift(verdicts: Record<string, Verdict | Error> = {}): { askNow: AskNow; asked: string[] } {
  const asked: string[] = [];
  const askNow: AskNow = async (caller, account, container) => {
    const who = caller.headers['x-auth-token']!;
    asked.push(`${who} ${account}/${container}`);
    const verdict = verdicts[who] ?? ALLOWED;
    if (verdict instanceof Error) throw verdict;
    return verdict;
  };
  return { askNow, asked };
}

beforeEach(() => mock.timers.enable({ apis: ['Date', 'setTimeout', 'setInterval'], now: START }));
afterEach(() => mock.timers.reset());

describe('tracking', () => {
  test('a write is held from add until the function add returned is called (twice is harmless)', () => {
    const grants = new GrantedWrites(swift().askNow);
    const done = [grants.add('c/AUTH_a/c', write('u1')), grants.add('c/AUTH_a/c', write('u2')), grants.add('c/AUTH_a/d', write('u3'))];
    assert.equal(grants.size, 3);
    done[0]!();
    done[0]!();
    assert.equal(grants.size, 2);
    done[1]!();
    done[2]!();
    assert.equal(grants.size, 0);
  });
});

describe('revokeStale: a refusal for want of room re-asks the other callers\' grants in the scope', () => {
  test('those Swift refuses now are refused with its answer; the refused caller\'s own, allowed ones and other scopes are left', async () => {
    const { askNow, asked } = swift({ revoked: REFUSED });
    const grants = new GrantedWrites(askNow);
    const own = write('refused-caller');
    const revoked = write('revoked');
    const stillGranted = write('granted');
    const elsewhere = write('revoked', 'other');
    grants.add('c/AUTH_a/c', own);
    grants.add('c/AUTH_a/c', revoked);
    grants.add('c/AUTH_a/c', stillGranted);
    grants.add('c/AUTH_a/other', elsewhere);

    assert.equal(await grants.revokeStale('c/AUTH_a/c', own.credentials.key), true);
    assert.deepEqual(asked.sort(), ['granted AUTH_a/c', 'revoked AUTH_a/c']);
    assert.equal(revoked.refusedWith, FORBIDDEN);
    assert.equal(stillGranted.refusedWith, undefined);
    assert.equal(own.refusedWith, undefined);
    assert.equal(elsewhere.refusedWith, undefined);
  });

  test('a write Swift may have whole (body sent, Swift has it) is not asked about: it stands', async () => {
    const { askNow, asked } = swift({ revoked: REFUSED });
    const grants = new GrantedWrites(askNow);
    const whole = write('revoked');
    whole.reached = true;
    grants.add('s', whole);
    assert.equal(await grants.revokeStale('s', 'someone else'), false);
    assert.deepEqual(asked, []);
    assert.equal(whole.refusedWith, undefined);
  });

  test('several writes on one grant cost one question; at most 16 grants are asked per refusal', async () => {
    const { askNow, asked } = swift({ u0: REFUSED });
    const grants = new GrantedWrites(askNow);
    const sameGrant = [write('u0'), write('u0'), write('u0')];
    for (const w of sameGrant) grants.add('s', w);
    for (let i = 1; i < 30; i++) grants.add('s', write(`u${i}`));
    assert.equal(await grants.revokeStale('s', 'nobody'), true);
    assert.equal(asked.filter((q) => q.startsWith('u0 ')).length, 1);
    assert.equal(asked.length, 16);
    assert.ok(sameGrant.every((w) => w.refusedWith === FORBIDDEN), 'every write on the revoked grant is refused');
  });

  test('Swift not answering a question refuses nothing', async () => {
    const { askNow } = swift({ u1: new Error('Swift is away') });
    const grants = new GrantedWrites(askNow);
    const held = write('u1');
    grants.add('s', held);
    assert.equal(await grants.revokeStale('s', 'nobody'), false);
    assert.equal(held.refusedWith, undefined);
  });

  test('no other write in the scope: nothing asked', async () => {
    const { askNow, asked } = swift();
    const grants = new GrantedWrites(askNow);
    assert.equal(await grants.revokeStale('empty', 'nobody'), false);
    assert.deepEqual(asked, []);
  });
});

describe('sweep: writes held on a grant for heldMs are asked again (writes other proxies cannot reach)', () => {
  test('a write held 1 ms short of heldMs is not asked; at heldMs it is, and refused if Swift refuses now', async () => {
    const { askNow, asked } = swift({ revoked: REFUSED });
    const grants = new GrantedWrites(askNow);
    const held = write('revoked');
    grants.add('s', held);

    mock.timers.tick(HELD_MS - 1);
    assert.equal(await grants.sweep(HELD_MS), false);
    assert.deepEqual(asked, []);

    mock.timers.tick(1);
    assert.equal(await grants.sweep(HELD_MS), true);
    assert.deepEqual(asked, ['revoked AUTH_a/c']);
    assert.equal(held.refusedWith, FORBIDDEN);
  });

  test('only the writes old enough are asked; a granted one stays held and is asked again at the next sweep', async () => {
    const { askNow, asked } = swift();
    const grants = new GrantedWrites(askNow);
    grants.add('s', write('old'));
    mock.timers.tick(HELD_MS / 2);
    grants.add('s', write('young'));
    mock.timers.tick(HELD_MS / 2);
    assert.equal(await grants.sweep(HELD_MS), false);
    assert.deepEqual(asked, ['old AUTH_a/c']);
    mock.timers.tick(HELD_MS / 2);
    assert.equal(await grants.sweep(HELD_MS), false);
    assert.deepEqual(asked, ['old AUTH_a/c', 'old AUTH_a/c', 'young AUTH_a/c']);
    assert.equal(grants.size, 2);
  });

  test('a write Swift may have whole is never swept, however long it is held', async () => {
    const { askNow, asked } = swift({ revoked: REFUSED });
    const grants = new GrantedWrites(askNow);
    const whole = write('revoked');
    whole.reached = true;
    grants.add('s', whole);
    mock.timers.tick(HELD_MS * 100);
    assert.equal(await grants.sweep(HELD_MS), false);
    assert.deepEqual(asked, []);
  });

  test('an explicit `now` is used instead of the clock', async () => {
    const { askNow, asked } = swift();
    const grants = new GrantedWrites(askNow);
    grants.add('s', write('u1'));
    assert.equal(await grants.sweep(HELD_MS, START + HELD_MS - 1), false);
    assert.deepEqual(asked, []);
    await grants.sweep(HELD_MS, START + HELD_MS);
    assert.deepEqual(asked, ['u1 AUTH_a/c']);
  });
});
