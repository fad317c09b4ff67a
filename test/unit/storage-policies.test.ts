import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capabilitiesFromInfo } from '../../src/swift/capabilities.js';
import { policyProblems } from '../../src/services.js';

const info = { swift: { policies: [{ name: 'Policy-0', default: true }, { name: 'gold', aliases: 'gold, Yellow , y2' }, { nameless: true }] } };

test('/info\'s policies: each name and alias, lower case, to the name containers report', () => {
  const policies = capabilitiesFromInfo(info).policies!;
  assert.deepEqual([...policies], [['policy-0', 'policy-0'], ['gold', 'gold'], ['yellow', 'gold'], ['y2', 'gold']]);
  assert.equal(capabilitiesFromInfo(undefined).policies, undefined);
  assert.equal(capabilitiesFromInfo({ swift: {} }).policies, undefined);
  assert.equal(capabilitiesFromInfo(info).defaultPolicy, 'policy-0', 'where Swift makes a container without X-Storage-Policy');
  assert.equal(capabilitiesFromInfo(undefined).defaultPolicy, undefined);
});

test('limits naming a policy Swift lacks, or an alias, are reported; known names and an unknown /info are not', () => {
  const policies = capabilitiesFromInfo(info).policies;
  assert.deepEqual(policyProblems(['gold', 'policy-0'], policies), []);
  const problems = policyProblems(['silver', 'yellow'], policies);
  assert.equal(problems.length, 2);
  assert.match(problems[0]!, /"silver", which Swift does not have \(it has policy-0, gold\)/);
  assert.match(problems[1]!, /"yellow", an alias of "gold"/);
  assert.deepEqual(policyProblems(['silver'], undefined), []);
});
