/**
 * Swift 2.30.1's own functional test suite (tests.py, test_account, test_container, test_object, test_slo,
 * test_dlo, test_versioned_writes, test_object_versioning, test_tempurl) gives the same result through the
 * proxy as straight against Swift. The two runs are one after the other: each module of the suite deletes
 * every container of its accounts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { call, login } from '../helpers/http.js';
import { ensureFunctionalSuite, runFunctionalSuite, type FunctionalResult } from '../swift/functional.js';

/** `FAILED test/functional/tests.py::TestFile::testX - AssertionError...` → `tests.py::TestFile::testX`. */
function failedTest(line: string): string {
  return line.replace(/^(FAILED|ERROR) test\/functional\//, '').split(' ')[0]!;
}

function summary(result: FunctionalResult): string {
  return `${result.passed} passed, ${result.failed} failed, ${result.skipped} skipped, ${result.errors} errors in ${result.durationSeconds.toFixed(0)} s`;
}

/**
 * The suite's account tests remove every X-Account-Meta-* of their accounts, and the proxy refuses clients
 * the removal of its own (X-Account-Meta-Quota-Proxy-*). Other tests leave such metadata on AUTH_test (the
 * container image check provokes a refusal there), so a reseller clears it straight in Swift: both runs
 * start from the same accounts.
 */
async function clearProxyMetadata(origin: string, accounts: string[]): Promise<void> {
  const { token } = await login(origin, 'reseller:reseller', 'reseller');
  for (const account of accounts) {
    const url = `${origin}/v1/AUTH_${account}`;
    const head = await call('HEAD', url, { 'x-auth-token': token });
    const remove = Object.keys(head.headers).filter((name) => name.startsWith('x-account-meta-quota-proxy-'));
    if (remove.length === 0) continue;
    const answer = await call('POST', url, { 'x-auth-token': token, ...Object.fromEntries(remove.map((name) => [name.replace(/^x-/, 'x-remove-'), 'x'])) });
    assert.equal(answer.status, 204);
  }
}

describe("Swift's functional test suite", () => {
  let treeDir: string;
  let swift: URL;
  let proxy: RunningProxy;

  before(async () => {
    [treeDir, swift] = await Promise.all([ensureFunctionalSuite(), swiftUrl().then((url) => new URL(url))]);
    proxy = await startProxy({ upstream: swift.origin });
    await clearProxyMetadata(swift.origin, ['test', 'test2']);
  });
  after(() => proxy?.close());

  test('through the proxy gives the same results as direct', async (t) => {
    const direct = await runFunctionalSuite({ treeDir, authHost: swift.hostname, authPort: Number(swift.port), label: 'direct' });
    t.diagnostic(`direct: ${summary(direct)}`);
    const proxied = await runFunctionalSuite({ treeDir, authHost: '127.0.0.1', authPort: proxy.port, label: 'proxied' });
    t.diagnostic(`through the proxy: ${summary(proxied)}`);
    for (const failure of proxied.failures) t.diagnostic(`proxied ${failure}`);

    // The baseline itself must be sound, or "the same" proves nothing.
    assert.deepEqual(direct.failures, [], 'direct run has failures');
    assert.ok(direct.passed >= 600, `direct run passed only ${direct.passed}`);
    assert.deepEqual(proxied.failures.map(failedTest), []);
    assert.deepEqual(
      { passed: proxied.passed, failed: proxied.failed, skipped: proxied.skipped, errors: proxied.errors },
      { passed: direct.passed, failed: direct.failed, skipped: direct.skipped, errors: direct.errors },
    );
  });
});
