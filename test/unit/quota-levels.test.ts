import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseQuotaLevels, parseSoftLimits, QUOTA_KINDS, type LevelsReporter } from '../../src/config/quota-levels.js';

class Failed extends Error {
  constructor(readonly reason: string, readonly lineOffset: number | undefined) {
    super(reason);
  }
}

interface Recorded {
  warnings: { message: string; lineOffset: number | undefined }[];
  reporter: LevelsReporter;
}

function recorder(): Recorded {
  const warnings: Recorded['warnings'] = [];
  return {
    warnings,
    reporter: {
      fail: (reason, lineOffset) => {
        throw new Failed(reason, lineOffset);
      },
      warn: (message, lineOffset) => {
        warnings.push({ message, lineOffset });
      },
    },
  };
}

function parse(raw: string) {
  const r = recorder();
  return { levels: parseQuotaLevels(raw, r.reporter), warnings: r.warnings };
}

function fails(raw: string, reason: RegExp, lineOffset?: number): void {
  assert.throws(
    () => parseQuotaLevels(raw, recorder().reporter),
    (error: unknown) => {
      assert.ok(error instanceof Failed, String(error));
      assert.match(error.reason, reason);
      if (lineOffset !== undefined) assert.equal(error.lineOffset ?? 0, lineOffset);
      return true;
    },
  );
}

const ALL_KINDS = JSON.stringify({
  container_count: { default: 5, L1: 10 },
  object_count: { default: 100, L1: 1000 },
  container_usage: { default: 2048, L1: 4096 },
});

describe('parseQuotaLevels: levels', () => {
  test('turns kind → level → limit around into level → kind → limit', () => {
    const { levels, warnings } = parse(ALL_KINDS);
    assert.deepEqual(levels.names, ['default', 'L1']);
    assert.deepEqual(levels.byLevel.get('default'), { container_count: 5, object_count: 100, container_usage: 2048 });
    assert.deepEqual(levels.byLevel.get('L1'), { container_count: 10, object_count: 1000, container_usage: 4096 });
    assert.equal(levels.byLevel.get('L2'), undefined);
    assert.deepEqual(warnings, []);
    assert.ok(Object.isFrozen(levels));
    assert.ok(Object.isFrozen(levels.byLevel.get('L1')));
  });

  test('a level missing in one kind gets that kind\'s default limit, with a warning pointing at the kind', () => {
    const raw = [
      '{',
      '"container_count": { "default": 5, "L1": 10 },',
      '"object_count": { "default": 100 },',
      '"container_usage": { "default": 2048, "L1": 4096 }',
      '}',
    ].join('\n');
    const { levels, warnings } = parse(raw);
    assert.deepEqual(levels.byLevel.get('L1'), { container_count: 10, object_count: 100, container_usage: 4096 });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!.message, /level "L1" has no object_count limit: it gets the default level's 100/);
    assert.equal(warnings[0]!.lineOffset, 2);
  });

  test('a level defined in every kind brings no fallback warning', () => {
    assert.deepEqual(parse(ALL_KINDS).warnings, []);
  });

  test('a kind that is not configured warns and is absent from every level (not enforced)', () => {
    const { levels, warnings } = parse('{"container_count": {"default": 5, "L1": 10}}');
    assert.deepEqual(levels.byLevel.get('default'), { container_count: 5 });
    assert.deepEqual(levels.byLevel.get('L1'), { container_count: 10 });
    assert.equal('object_count' in levels.byLevel.get('default')!, false);
    assert.deepEqual(
      warnings.map((w) => w.message),
      ['object_count is not configured: it is not enforced', 'container_usage is not configured: it is not enforced'],
    );
  });

  test('a limit of 0 and the largest safe integer are valid', () => {
    const { levels } = parse(JSON.stringify({ object_count: { default: 0, big: Number.MAX_SAFE_INTEGER } }));
    assert.equal(levels.byLevel.get('default')!.object_count, 0);
    assert.equal(levels.byLevel.get('big')!.object_count, Number.MAX_SAFE_INTEGER);
  });
});

describe('parseQuotaLevels: account-wide limits per storage policy', () => {
  const raw = [
    '{',
    '"container_count": { "default": 5, "L1": 10 },',
    '"account_usage": { "default": 1000, "L1": 5000 },',
    '"account_usage:Gold": { "default": 100, "L1": 500 },',
    '"account_object_count:silver-2": { "default": 7 }',
    '}',
  ].join('\n');

  test('kind:policy keys give each level its limits per policy, the policy named in lower case', () => {
    const { levels, warnings } = parse(raw);
    assert.deepEqual(levels.names, ['default', 'L1']);
    assert.deepEqual(levels.policies, ['gold', 'silver-2']);
    assert.deepEqual(levels.byLevel.get('L1'), { container_count: 10, account_usage: 5000 });
    assert.deepEqual(levels.byPolicy.get('default')!.get('gold'), { account_usage: 100 });
    assert.deepEqual(levels.byPolicy.get('L1')!.get('gold'), { account_usage: 500 });
    assert.deepEqual(levels.byPolicy.get('L1')!.get('silver-2'), { account_object_count: 7 });
    assert.deepEqual(warnings.map((w) => w.message), [
      'object_count is not configured: it is not enforced',
      'container_usage is not configured: it is not enforced',
      'level "L1" has no account_object_count:silver-2 limit: it gets the default level\'s 7',
    ]);
  });

  test('a level named only in a policy\'s limits is a level', () => {
    const { levels } = parse('{"container_count": {"default": 5}, "account_usage:gold": {"default": 10, "L9": 20}}');
    assert.deepEqual(levels.names, ['default', 'L9']);
    assert.deepEqual(levels.byLevel.get('L9'), { container_count: 5 });
    assert.deepEqual(levels.byPolicy.get('L9')!.get('gold'), { account_usage: 20 });
  });

  for (const [bad, reason] of [
    ['{"container_count": {"default": 5}, "container_usage:gold": {"default": 1}}', /unknown quota kind "container_usage:gold"/],
    ['{"container_count": {"default": 5}, "account_usage:go/ld": {"default": 1}}', /unknown quota kind/],
    ['{"container_count": {"default": 5}, "account_usage:": {"default": 1}}', /unknown quota kind/],
    ['{"container_count": {"default": 5}, "account_usage:gold": {"L1": 1}}', /account_usage:gold has no "default" level/],
    ['{"container_count": {"default": 5}, "account_usage:gold": {"default": 1}, "account_usage:GOLD": {"default": 2}}', /names policy "gold" of account_usage twice/],
    ['{"container_count": {"default": 5}, "account_usage:gold": {"default": -1}}', /whole number/],
  ] as const) {
    test(`refused: ${bad}`, () => assert.throws(() => parse(bad), (error: Failed) => reason.test(error.reason)));
  }

  test('soft limits per policy are refused (hard limits only)', () => {
    const hard = parse(raw).levels;
    assert.throws(() => parseSoftLimits('{"account_usage:gold": {"default": 50}}', undefined, hard, recorder().reporter), (error: Failed) => /policy "gold" have no soft limits/.test(error.reason));
  });
});

describe('parseQuotaLevels: typographic quotes', () => {
  test('curly quotes and primes as printed in the article are read as ASCII quotes, with a warning at the first such line', () => {
    const raw = ['{', '“container_count”: {', '“default”: 5,', '“L1″: 10', '}', '}'].join('\n');
    const { levels, warnings } = parse(raw);
    assert.deepEqual(levels.byLevel.get('L1'), { container_count: 10 });
    const quoteWarning = warnings.filter((w) => /typographic quotes/.test(w.message));
    assert.equal(quoteWarning.length, 1);
    assert.match(quoteWarning[0]!.message, /on 3 line\(s\)/);
    assert.equal(quoteWarning[0]!.lineOffset, 1);
  });

  test('plain ASCII JSON brings no quote warning', () => {
    const { warnings } = parse(ALL_KINDS);
    assert.equal(warnings.some((w) => /typographic/.test(w.message)), false);
  });
});

describe('parseQuotaLevels: errors', () => {
  test('invalid JSON fails, pointing at the line of the error', () => {
    fails(['{', '"container_count": {"default": 5},', '}'].join('\n'), /is not valid JSON/, 2);
  });

  test('JSON that is not an object fails', () => {
    fails('[1, 2]', /must be a JSON object/);
    fails('5', /must be a JSON object/);
    fails('null', /must be a JSON object/);
  });

  test('an empty object fails: at least one kind', () => {
    fails('{}', /at least one of container_count, object_count, container_usage/);
  });

  test('an unknown kind fails, naming it and its line', () => {
    fails(['{', '"container_count": {"default": 5},', '"bytes_used": {"default": 5}', '}'].join('\n'), /unknown quota kind "bytes_used"/, 2);
  });

  test('a kind that is not an object of levels fails', () => {
    fails('{"object_count": 5}', /object_count must be an object of level: limit/);
    fails('{"object_count": [5]}', /object_count must be an object/);
  });

  test('a kind without a "default" level fails, naming the kind\'s line', () => {
    fails(['{', '"container_count": {"default": 5},', '"object_count": {"L1": 5}', '}'].join('\n'), /object_count has no "default" level/, 2);
  });

  for (const [label, value] of [
    ['negative', '-1'],
    ['fractional', '1.5'],
    ['string', '"5"'],
    ['null', 'null'],
    ['boolean', 'true'],
    ['unsafe integer', '9007199254740993'],
  ] as const) {
    test(`a ${label} limit fails, naming the level and kind`, () => {
      fails(`{\n"container_count": {"default": 5},\n"object_count": {"default": 1, "L1": ${value}}\n}`, /level "L1" of object_count must be a whole number >= 0/, 2);
    });
  }

  test('QUOTA_KINDS lists the three kinds of the article, then the two account-wide kinds', () => {
    assert.deepEqual([...QUOTA_KINDS], ['container_count', 'object_count', 'container_usage', 'account_object_count', 'account_usage']);
  });

  test('account-wide kinds: optional (no warning when left out), by level like the others, a level without one gets the default\'s', () => {
    const { levels, warnings } = parse('{"container_count": {"default": 5}, "object_count": {"default": 10}, "container_usage": {"default": 100}, "account_usage": {"default": 1000, "L1": 5000}}');
    assert.deepEqual(warnings.filter((w) => /not configured/.test(w.message)), []);
    assert.equal(levels.byLevel.get('default')!.account_usage, 1000);
    assert.equal(levels.byLevel.get('L1')!.account_usage, 5000);
    assert.equal(levels.byLevel.get('default')!.account_object_count, undefined);
    const only = parse('{"account_object_count": {"default": 7}}');
    assert.deepEqual(only.levels.byLevel.get('default'), { account_object_count: 7 });
  });

  test('account-wide kinds take soft limits like the others: from soft_quota, or soft_quota_ratio of the hard limit', () => {
    const hard = parse('{"container_usage": {"default": 100}, "account_usage": {"default": 1000}}').levels;
    assert.deepEqual(parseSoftLimits('{"account_usage": {"default": 500}}', undefined, hard, recorder().reporter).get('default'), { account_usage: 500 });
    assert.throws(() => parseSoftLimits('{"account_usage": {"default": 1001}}', undefined, hard, recorder().reporter), /above its hard limit 1000/);
    const soft = parseSoftLimits(undefined, 0.5, hard, recorder().reporter);
    assert.deepEqual(soft.get('default'), { container_usage: 50, account_usage: 500 });
  });
});
