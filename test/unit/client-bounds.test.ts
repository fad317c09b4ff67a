/**
 * The arithmetic of the bounds on clients (the attacks themselves: test/adversarial/exhaustion.test.ts).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BodyBuffers } from '../../src/http/body-buffer.js';
import { capabilitiesFromInfo } from '../../src/swift/capabilities.js';
import { MAX_HEADER_BYTES } from '../../src/server.js';

describe('body buffer budgets', () => {
  const limits = { bodyBufferBytes: 100, bodyBufferAccountBytes: 60, bodyTimeoutSeconds: 60 };

  test('an account takes at most its share, all accounts at most the whole; what is given back is free again', () => {
    const buffers = new BodyBuffers(limits);
    assert.equal(buffers.reserve('a', 60), true);
    assert.equal(buffers.reserve('a', 1), false, 'past the account budget');
    assert.equal(buffers.reserve('b', 40), true);
    assert.equal(buffers.reserve('c', 1), false, 'past the global budget');
    assert.deepEqual([buffers.held(), buffers.held('a'), buffers.held('b')], [100, 60, 40]);
    buffers.reserve('a', -60);
    assert.equal(buffers.reserve('c', 60), true);
    assert.deepEqual([buffers.held(), buffers.held('a'), buffers.held('c')], [100, 0, 60]);
  });

  test('a refused reservation changes nothing', () => {
    const buffers = new BodyBuffers(limits);
    assert.equal(buffers.reserve('a', 61), false);
    assert.deepEqual([buffers.held(), buffers.held('a')], [0, 0]);
  });
});

describe('request heads as Swift 2.30.1 reads them', () => {
  test('header lines: 200 by default (http.client counts the blank line; bufferedhttp allows 1.6 × (90 + 36)); more with extra_header_count', () => {
    assert.equal(capabilitiesFromInfo(undefined).maxHeaderCount, 200);
    assert.equal(capabilitiesFromInfo({ swift: { max_meta_count: 90, extra_header_count: 0 } }).maxHeaderCount, 200);
    assert.equal(capabilitiesFromInfo({ swift: { max_meta_count: 90, extra_header_count: 10 } }).maxHeaderCount, 216);
  });

  test('head size: a request line under 8 KiB and 64 KiB of header lines', () => {
    assert.equal(MAX_HEADER_BYTES, 73_728);
  });
});
