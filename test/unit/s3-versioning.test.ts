import { test } from 'node:test';
import assert from 'node:assert/strict';
import { turnsVersioningOn, VERSIONING_BODY_LIMIT } from '../../src/s3/versioning.js';

const body = (status: string, extra = '') =>
  Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Status>${status}</Status>${extra}</VersioningConfiguration>`);

test('the canonical bodies SDKs send are read as what they say', () => {
  assert.equal(turnsVersioningOn(body('Enabled'), true), true);
  assert.equal(turnsVersioningOn(body('Suspended'), true), false);
  assert.equal(turnsVersioningOn(body('Suspended', '<MfaDelete>Disabled</MfaDelete>'), true), false);
  assert.equal(turnsVersioningOn(Buffer.from('<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>'), true), false);
});

test('anything else is taken as turning versioning on (the case that counts more)', () => {
  for (const text of [
    '',
    '<VersioningConfiguration><Status>suspended</Status></VersioningConfiguration>',
    '<VersioningConfiguration><Status>Suspended</Status><Status>Enabled</Status></VersioningConfiguration>',
    '<!-- x --><VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>',
    '<VersioningConfiguration xmlns="urn:other"><Status>Suspended</Status></VersioningConfiguration>',
    '<VersioningConfiguration><Status><![CDATA[Suspended]]></Status></VersioningConfiguration>',
    '<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration><x/>',
    '<VersioningConfiguration><Status>Sus&#112;ended</Status></VersioningConfiguration>',
  ]) {
    assert.equal(turnsVersioningOn(Buffer.from(text), true), true, text);
  }
  assert.equal(turnsVersioningOn(body('Suspended'), false), true, 'a body longer than was read');
  assert.equal(turnsVersioningOn(Buffer.concat([body('Suspended'), Buffer.alloc(VERSIONING_BODY_LIMIT, ' ')]), true), true, "past s3api's limit");
});
