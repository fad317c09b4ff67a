/**
 * The proxy's reading of a Range against Swift's own (swift/range.ts vs range_reference.py, which runs swob.Range
 * and a swob.Response with conditional_response=True, as the object server, SLO and DLO answer a GET): 4,000
 * generated hostile Range values (seed 21; RANGE_CASES and RANGE_SEED change them) — spacing, the case of
 * `bytes`, empty and doubled commas, huge numbers (past CPython's 4,300-digit int() limit), signs, underscores,
 * suffixes, `bytes=-0`, up to 60 ranges, overlapping and unsorted ones, non-ASCII digits and Unicode spaces as
 * UTF-8 bytes, Latin-1 whitespace Python's int() strips — each against objects of many sizes (0 to 10^13 bytes),
 * content types (long, with Latin-1 bytes swob writes as UTF-8) and kinds (plain, SLO, DLO). What the proxy
 * computes must be what Swift serves: the same status, the same number of parts and exactly the same body size
 * (which is what a copy stores), and the Range the proxy forwards must be read by swob as the same request.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { formatRange, parseRange, servedBody } from '../../src/swift/range.js';
import { PYTHON, random } from './differential.js';

const REFERENCE = fileURLToPath(new URL('./range_reference.py', import.meta.url));
const CASES = Number(process.env.RANGE_CASES ?? 4000);
const SEED = Number(process.env.RANGE_SEED ?? 21);


/** UTF-8 bytes of `text` as the Latin-1 string Node and eventlet hand on. */
const wire = (text: string) => Buffer.from(text, 'utf8').toString('latin1');

interface Case {
  range: string | null;
  length: number;
  content_type: string;
  dlo: boolean;
}

function makeCase(rnd: () => number): Case {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(rnd() * items.length)]!;
  const int = (max: number) => Math.floor(rnd() * max);
  const length = pick([0, 1, 2, 3, 10, 49, 50, 51, 100, 1000, 4096, int(100_000), int(10 ** 9), 10 ** 13]);
  const near = () => String(Math.max(0, pick([0, 1, length - 1, length, length + 1, int(length + 2), int(60), 2 ** 53, 10 ** 15])));
  const spaces = () => pick(['', '', '', ' ', '  ', '\t', '\xa0', '\x85', '\x0b', '\x0c', '\x1c', wire('\u2003'), wire('\u3000'), '\r']);
  const odd = () => pick([
    '+5', '1_0', '_1', '1__0', '1_', '007', '0x10', wire('٥'), wire('５'), '²', '\xb2', '-', '--5', ' ', '', '1e3', '5.0',
    '9'.repeat(4300), '9'.repeat(4301), `1${'_0'.repeat(4300)}`, `0${'0'.repeat(4300)}`, '99999999999999999999999', '-1', '+', '+-1',
  ]);
  const position = () => (rnd() < 0.15 ? odd() : `${spaces()}${near()}${spaces()}`);
  // Nearly half the values are well formed throughout, so that many are honoured (several ranges at once too).
  const tame = rnd() < 0.45;
  const spec = () => {
    const kind = tame ? 0.86 + rnd() * 0.14 : rnd();
    if (kind < 0.45) return `${position()}-${position()}`;
    if (kind < 0.6) return `${position()}-`;
    if (kind < 0.75) return `-${position()}`;
    if (kind < 0.78) return '-0';
    if (kind < 0.8) return '-';
    if (kind < 0.82) return position();
    if (kind < 0.84) return '';
    if (kind < 0.86) return `${position()}-${position()}-${position()}`;
    if (kind < 0.89) return `-${int(length + 3)}`;
    // A small range near the start, so that several can be honoured together.
    const start = int(Math.min(length + 2, 60));
    return `${start}-${start + int(5)}`;
  };
  if (rnd() < 0.03) return { range: null, length, content_type: 'text/plain', dlo: false };
  const count = pick([1, 1, 1, 2, 2, 3, 5, 8, 9, int(12), 49, 50, 51, 60]);
  const separator = () => (rnd() < 0.9 ? ',' : pick([', ', ' ,', ',,', ';', `,${spaces()}`]));
  const specs = Array.from({ length: count }, spec);
  if (rnd() < 0.2) specs.sort(() => rnd() - 0.5);
  if (rnd() < 0.15) specs.fill(specs[0]!);
  let range = specs.reduce((joined, one, i) => (i === 0 ? one : `${joined}${separator()}${one}`), '');
  const unit = rnd() < 0.85 ? 'bytes=' : pick(['BYTES=', 'Bytes=', 'bytes =', ' bytes=', 'bytes= ', 'byte=', 'bytes:', 'items=', 'bytes', '', 'b ytes=', wire('bytés='), 'bytes=bytes=']);
  range = `${unit}${range}`;
  if (rnd() < 0.05) range = `${range},${unit}0-1`; // two Range headers, as eventlet joins them
  const contentType = pick(['text/plain', '', 'application/octet-stream', `application/x-${'t'.repeat(int(3000))}`, 'text/plain; charset=UTF-8', wire('text/é'), '\xe9\xff\x80', `x/${'\xe9'.repeat(int(100))}`]);
  return { range, length, content_type: contentType, dlo: rnd() < 0.15 };
}

describe('Range headers read as swob reads them', () => {
  test(`${CASES} hostile Range values (seed ${SEED}): the proxy computes exactly the body Swift serves`, async () => {
    const python = spawn(PYTHON, [REFERENCE], { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines = createInterface({ input: python.stdout! })[Symbol.asyncIterator]();
    const ask = async (one: Case): Promise<{ status: number; size: number; parts: number }> => {
      python.stdin!.write(`${JSON.stringify(one)}\n`);
      const { value, done } = await lines.next();
      assert.ok(!done, 'the reference ended');
      return JSON.parse(value as string);
    };
    const rnd = random(SEED);
    const tally = { whole: 0, single: 0, multipart: 0, unsatisfiable: 0, ignored: 0, respelled: 0 };
    try {
      for (let i = 0; i < CASES; i++) {
        const one = makeCase(rnd);
        const specs = parseRange(one.range ?? undefined);
        const ours = servedBody(specs, { length: one.length, contentType: one.content_type, dynamicLargeObject: one.dlo });
        const swift = await ask(one);
        const what = `case ${i}: ${JSON.stringify({ ...one, range: one.range?.slice(0, 300), content_type: one.content_type.slice(0, 40) })}`;
        // Swift's DLO raises on a lone bytes=-0 (500): nothing is served, as for a 416.
        const swiftStatus = swift.status === 500 ? 416 : swift.status;
        assert.deepEqual({ status: ours.status, size: ours.size, parts: ours.status === 416 ? 0 : ours.parts }, { status: swiftStatus, size: swift.size, parts: swift.parts }, what);
        if (specs === undefined) tally.ignored++;
        // Honoured though not written as swob writes it (int() spellings, whitespace, case).
        else if (formatRange(specs) !== one.range!.replaceAll(' ', '')) tally.respelled++;
        tally[ours.status === 416 ? 'unsatisfiable' : ours.status === 200 ? 'whole' : ours.parts > 1 ? 'multipart' : 'single']++;
        // What the proxy forwards reads the same to swob (and to the proxy).
        if (specs !== undefined) {
          const forwarded = { ...one, range: formatRange(specs) };
          assert.deepEqual(parseRange(forwarded.range), specs, what);
          const again = await ask(forwarded);
          assert.deepEqual(again, swift, `${what}, forwarded as ${forwarded.range.slice(0, 300)}`);
        }
      }
    } finally {
      python.stdin!.end();
    }
    // The generator reaches every outcome, and often.
    for (const [outcome, count] of Object.entries(tally)) assert.ok(count > CASES / 100, `${outcome}: ${count} of ${CASES}`);
    console.log(`range reader: ${JSON.stringify(tally)}`);
  });
});
