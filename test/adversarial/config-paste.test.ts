/**
 * The proxy reads Swift's filter sections ([filter:domain_remap], [filter:tempauth], [filter:s3api], ...) as
 * Swift does: checked against paste.deploy's own loader (paste_conf_reference.py) on generated files whose
 * [DEFAULT] and filter section set the same keys, with and without `set`, with comments after section headers.
 * Where the two differ, the proxy enforces quotas on a view of the request Swift does not have: a
 * `storage_domain` in [DEFAULT] and another in [filter:domain_remap] made the proxy pass writes Swift remapped
 * into an account unchecked (paste gives Swift [DEFAULT]'s value; the proxy took the section's).
 */
import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { parseSwiftIni } from '../../src/config/ini.js';
import { ensureSwiftInstalled } from '../swift/cluster.js';
import { random, throughReference } from './differential.js';

const REFERENCE = fileURLToPath(new URL('./paste_conf_reference.py', import.meta.url));
const SEED = 23;
const CASES = 400;
const KEYS = ['storage_domain', 'reseller_prefixes', 'path_root', 'lookup_depth', 'log_name'];
// No "%%": paste.deploy reads a [DEFAULT] "%%" as "%" on the first load of a file in a process and as "%%" on
// later ones (its parser's state carries over), so there is no one answer to compare with.
const VALUES = ['example.com', 'storage.example.com', 'AUTH, SERVICE', 'v1', '2', '%(here)s/x', '%(storage_domain)s-2'];

interface Case {
  text: string;
  filter: string;
}

function makeCase(next: () => number): Case {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!;
  const lines = ['[DEFAULT]'];
  for (const key of KEYS) if (next() < 0.4) lines.push(`${key} = ${pick(VALUES)}`);
  lines.push('', '[pipeline:main]', 'pipeline = domain_remap proxy-server', '');
  const comment = pick(['', '   ; a note', ' # another', '  ; [x]']);
  lines.push(`[filter:domain_remap]${comment}`, 'use = egg:swift#domain_remap');
  for (const key of KEYS) {
    const roll = next();
    if (roll < 0.35) lines.push(`${key} = ${pick(VALUES)}`);
    else if (roll < 0.55) lines.push(`set ${key} = ${pick(VALUES)}`);
  }
  lines.push('', '[app:proxy-server]', 'use = egg:swift#proxy', '');
  return { text: lines.join('\n'), filter: 'domain_remap' };
}

/** The proxy's view of the filter's conf: the section as parseSwiftIni gives it, less paste's own keys. */
function proxyConf(text: string): Record<string, string> | { error: string } {
  try {
    const doc = parseSwiftIni(text, '/HERE/proxy-server.conf');
    const section = doc.sections['filter:domain_remap'];
    if (section === undefined) return { error: 'no such section' }; // paste: LookupError
    const conf = { ...section };
    delete conf.use;
    return conf;
  } catch (error) {
    return { error: (error as Error).name };
  }
}

describe('Swift filter sections read as paste.deploy reads them', () => {
  before(() => ensureSwiftInstalled()); // swift-proxy brings python3-pastedeploy

  test(`${CASES} generated files: the same conf for [filter:domain_remap] ([DEFAULT] wins unless "set"; header comments)`, async () => {
    const next = random(SEED);
    const cases = Array.from({ length: CASES }, () => makeCase(next));
    const swift = await throughReference<{ conf?: Record<string, string>; error?: string }>(REFERENCE, cases);
    const differing: string[] = [];
    cases.forEach((input, i) => {
      const expected = swift[i]!;
      const actual = proxyConf(input.text);
      if (expected.error !== undefined || 'error' in actual) {
        if (!(expected.error !== undefined && 'error' in actual)) differing.push(`${JSON.stringify(input.text)}: proxy ${JSON.stringify(actual)}, paste ${JSON.stringify(expected)}`);
        return;
      }
      if (JSON.stringify(Object.entries(actual).sort()) !== JSON.stringify(Object.entries(expected.conf!).sort())) {
        differing.push(`${JSON.stringify(input.text)}:\n  proxy ${JSON.stringify(actual)}\n  paste ${JSON.stringify(expected.conf)}`);
      }
    });
    assert.equal(differing.length, 0, `${differing.length} of ${CASES} files read differently:\n${differing.slice(0, 10).join('\n')}`);
  });
});
