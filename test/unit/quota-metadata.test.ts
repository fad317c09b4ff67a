import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  formatSoftRecord,
  hardHitHeader,
  hitsHeader,
  isProtectedMetadataHeader,
  readPersistedState,
  removeHeader,
  softSinceHeader,
} from '../../src/swift/quota-metadata.js';

describe('the proxy\'s metadata names', () => {
  test('are the documented ones', () => {
    assert.equal(softSinceHeader('account', 'container_count'), 'x-account-meta-quota-proxy-soft-container-count');
    assert.equal(softSinceHeader('container', 'object_count'), 'x-container-meta-quota-proxy-soft-object-count');
    assert.equal(softSinceHeader('container', 'container_usage'), 'x-container-meta-quota-proxy-soft-container-usage');
    assert.equal(hitsHeader('account'), 'x-account-meta-quota-proxy-hits');
    assert.equal(hardHitHeader('container', 'container_usage'), 'x-container-meta-quota-proxy-hard-container-usage');
    assert.equal(hitsHeader('container'), 'x-container-meta-quota-proxy-hits');
    assert.equal(removeHeader(hitsHeader('container')), 'x-remove-container-meta-quota-proxy-hits');
  });

  test('every one of them, set or removed, is protected; nothing else is', () => {
    for (const name of [softSinceHeader('account', 'container_count'), hitsHeader('container'), softSinceHeader('container', 'object_count')]) {
      assert.equal(isProtectedMetadataHeader(name), true, name);
      assert.equal(isProtectedMetadataHeader(removeHeader(name)), true, removeHeader(name));
    }
    for (const name of ['x-account-meta-quota', 'x-container-meta-quota-bytes', 'x-object-meta-quota-proxy-hits', 'x-container-meta-quota-proxyx']) {
      assert.equal(isProtectedMetadataHeader(name), false, name);
    }
  });
});

describe('soft records and hit counters round-trip through header values', () => {
  test('seconds in Swift, milliseconds in memory; "notified" marks an announced grace expiry', () => {
    assert.equal(formatSoftRecord({ since: 1_763_778_200_999, graceNotified: false }), '1763778200');
    assert.equal(formatSoftRecord({ since: 1_763_778_200_000, graceNotified: true }), '1763778200 notified');
    const state = readPersistedState('container', {
      'x-container-meta-quota-proxy-soft-object-count': '1763778200 notified',
      'x-container-meta-quota-proxy-soft-container-usage': '1763778300',
      'x-container-meta-quota-proxy-hard-container-usage': '1000',
      'x-container-meta-quota-proxy-hits': '42',
    });
    assert.deepEqual(state, {
      soft: { object_count: { since: 1_763_778_200_000, graceNotified: true }, container_usage: { since: 1_763_778_300_000, graceNotified: false } },
      hardHits: { container_usage: 1000 },
      hits: 42,
    });
  });

  test('values a client or a bad edit could leave are ignored, not trusted', () => {
    assert.deepEqual(
      readPersistedState('account', {
        'x-account-meta-quota-proxy-soft-container-count': 'soon',
        'x-account-meta-quota-proxy-hard-container-count': '1e3',
        'x-account-meta-quota-proxy-hits': '-3',
      }),
      { soft: {}, hardHits: {}, hits: 0 },
    );
    assert.deepEqual(readPersistedState('account', {}), { soft: {}, hardHits: {}, hits: 0 });
  });
});
