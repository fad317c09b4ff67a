/**
 * [quota-proxy]'s restart settings (config/restart.ts): drain_delay, drain_timeout, reuse_port; their defaults,
 * bounds, errors naming file, line and key, and that a reload leaves them to the next restart.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { configFromText } from '../../src/config/load.js';
import { planReload } from '../../src/config/reload.js';
import { DEFAULT_DRAIN_DELAY, DEFAULT_DRAIN_TIMEOUT } from '../../src/config/restart.js';

function text(proxyLines: string[]): string {
  return [
    '[quota-proxy]',
    'upstream = http://127.0.0.1:8080',
    ...proxyLines,
    '[filter:tempauth]',
    'user_admin_admin = secret .reseller_admin',
    '[filter:quota]',
    'quota = {"object_count": {"default": 1}}',
    '',
  ].join('\n');
}

describe('restart settings', () => {
  test('defaults: 5 s of drain delay, 60 s of drain timeout, reuse_port on Linux', () => {
    const { restart } = configFromText(text([]), 'p.conf');
    assert.equal(restart.drainDelaySeconds, DEFAULT_DRAIN_DELAY);
    assert.equal(DEFAULT_DRAIN_DELAY, 5);
    assert.equal(restart.drainTimeoutSeconds, DEFAULT_DRAIN_TIMEOUT);
    assert.equal(DEFAULT_DRAIN_TIMEOUT, 60);
    assert.equal(restart.reusePort, process.platform === 'linux');
  });

  test('read from [quota-proxy], fractions of a second allowed, booleans in Swift\'s spellings', () => {
    const { restart } = configFromText(text(['drain_delay = 0.5', 'drain_timeout = 0', 'reuse_port = no']), 'p.conf');
    assert.deepEqual(restart, { drainDelaySeconds: 0.5, drainTimeoutSeconds: 0, reusePort: false });
  });

  test('bad values stop the load with file, line and key', () => {
    const cases: Array<[string, RegExp]> = [
      ['drain_delay = -1', /^p\.conf:3: \[quota-proxy\] drain_delay: must be a number from 0 to 3600, got "-1"$/],
      ['drain_delay = 5s', /^p\.conf:3: \[quota-proxy\] drain_delay: must be a number from 0 to 3600, got "5s"$/],
      ['drain_timeout = 100000', /^p\.conf:3: \[quota-proxy\] drain_timeout: must be a number from 0 to 86400, got "100000"$/],
      ['reuse_port = maybe', /^p\.conf:3: \[quota-proxy\] reuse_port: must be true or false, got "maybe"$/],
    ];
    for (const [line, expected] of cases) assert.throws(() => configFromText(text([line]), 'p.conf'), (error: Error) => expected.test(error.message), line);
  });

  test('a reload names them as settings that take effect at a restart', () => {
    const running = configFromText(text([]), 'p.conf');
    const plan = planReload(running, configFromText(text(['drain_delay = 9']), 'p.conf'));
    assert.deepEqual(plan.needRestart, ['drain_delay / drain_timeout / reuse_port']);
    assert.equal(plan.config.restart.drainDelaySeconds, 5);
  });
});
