/**
 * Manifests SLO stores but the proxy's reader took for ones SLO refuses (readers-differential.test.ts found
 * them): before the fix they were forwarded uncounted (7 objects / 23,520 bytes stored per shape, 24,717 for the
 * empty suffix; now 2 / 6,720 and 2 / 7,062). Each shape is sent seven times, each manifest storing
 * ~3.5 KB; Swift (read directly) must hold exactly what was admitted, within the limits (5 objects, 10,000
 * bytes per container).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../helpers/http.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, statuses, type Arena } from './arena.js';

const ACCOUNTS = { 'cached mode': [301, 302, 303, 304, 305, 306, 307, 308, 309, 310], 'precise mode': [311, 312, 313, 314, 315, 316, 317, 318, 319, 320] } as const;

const SEGMENTS = 20;
const plain = (entry: object) => JSON.stringify(Array.from({ length: SEGMENTS }, () => entry));

/** Manifest bodies SLO stores, in the spellings the proxy used to misread. */
const SHAPES: ReadonlyArray<[string, () => Buffer]> = [
  ['UTF-8 with a byte order mark', () => Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(plain({ path: '/seg/s0' }))])],
  ['UTF-16 (json.loads detects it)', () => Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(plain({ path: '/seg/s0' }), 'utf16le')])],
  ['a range given as a JSON number (-1: the last byte)', () => Buffer.from(plain({ path: '/seg/s0', range: -1 }))],
  ['a range whose start has a no-break space (Python int() strips it)', () => Buffer.from(plain({ path: '/seg/s0', range: '\u00a00-0' }))],
  ['NaN in a value a later duplicate key replaces', () => Buffer.from(`[${Array.from({ length: SEGMENTS }, () => '{"path": NaN, "path": "/seg/s0"}').join(', ')}]`)],
  ['UTF-32 (json.loads detects it)', () => utf32(plain({ path: '/seg/s0' }))],
  ['a suffix range of an empty last segment', () => Buffer.from(`${plain({ path: '/seg/s0' }).slice(0, -1)},{"path":"/seg/empty","range":"-5"}]`)],
];

function utf32(text: string): Buffer {
  const out = Buffer.alloc(text.length * 4);
  for (let i = 0; i < text.length; i++) out.writeUInt32LE(text.charCodeAt(i), i * 4);
  return out;
}

for (const mode of MODES) {
  describe(`manifests in spellings only Python reads, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    for (const [shape, body] of SHAPES) {
      test(`${shape}: counted at what SLO stores`, async (t) => {
        const tenant = await arena.tenant();
        await makeContainer(tenant, 'seg');
        await makeContainer(tenant, 'm');
        await putDirect(tenant, '/seg/s0', 'x');
        await putDirect(tenant, '/seg/empty', '');
        const answers = [];
        for (let i = 0; i < 7; i++) answers.push(await call('PUT', tenant.viaProxy(`/m/${i}?multipart-manifest=put`), { 'x-auth-token': tenant.token }, body()));
        const admitted = answers.filter((a) => a.status === 201).length;
        const stored = await arena.usage(tenant, 'm');
        const what = `${statuses(answers)}; Swift holds ${JSON.stringify(stored)}`;
        t.diagnostic(`admitted ${admitted}; ${what}`);
        assert.ok(stored.objects > 0, `SLO stores this shape: ${what}`);
        const perManifest = stored.bytes / stored.objects;
        assert.equal(admitted, stored.objects, what);
        assert.equal(stored.objects, Math.min(LIMITS.objects, Math.floor(LIMITS.bytes / perManifest)), what);
        assert.ok(stored.bytes <= LIMITS.bytes, what);
        assert.ok(answers.every((a) => a.status === 201 || a.status === 413), what);
      });
    }
  });
}
