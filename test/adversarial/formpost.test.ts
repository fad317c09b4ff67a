/**
 * FormPost: every file of a signed multipart/form-data POST becomes an object, stored while the form streams
 * in. Each file is counted as Swift's formpost reads the form (byte for byte, including forms other multipart
 * parsers read differently), and the form is cut at the first file or chunk past a limit, leaving no partial
 * object behind. Only forms whose signature Swift accepts count.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { call } from '../helpers/http.js';
import { LIMITS, MODES, makeContainer, openArena, type Arena, type Tenant } from './arena.js';
import { formBody, formSignature, type FormFile } from './signing.js';

const ACCOUNTS = { 'cached mode': [53, 54, 55, 56, 57, 58, 59], 'precise mode': [60, 61, 62, 63, 64, 65, 66] } as const;
const KEY = 'form-secret';
const BOUNDARY = 'quota-proxy-form-boundary';

for (const mode of MODES) {
  describe(`FormPost uploads, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    async function formContainer(tenant: Tenant, name = 'forms'): Promise<void> {
      await makeContainer(tenant, name, { 'x-container-meta-temp-url-key': KEY });
    }

    /** The signed fields of a form posted to `/v1/<account>/<container>/<prefix>`. */
    function signed(tenant: Tenant, container: string, prefix = '', key = KEY, expires = Math.floor(Date.now() / 1000) + 300): Record<string, string> {
      const fields = { path: `/v1/${tenant.swiftAccount}/${container}/${prefix}`, maxFileSize: 1_000_000, maxFileCount: 20, expires };
      return {
        max_file_size: String(fields.maxFileSize),
        max_file_count: String(fields.maxFileCount),
        expires: String(expires),
        signature: formSignature(fields, key),
      };
    }

    function post(tenant: Tenant, container: string, body: Buffer, prefix = '', boundary = BOUNDARY) {
      return call('POST', tenant.viaProxy(`/${container}/${prefix}`), { 'content-type': `multipart/form-data; boundary=${boundary}` }, body);
    }

    const files = (count: number, size: number, name = 'f'): FormFile[] =>
      Array.from({ length: count }, (_, i) => ({ name: `file${i}`, filename: `${name}${i}`, content: Buffer.alloc(size, 'a') }));

    test('a form of 8 files into an empty container stores 5 whole files and is cut at the 6th', async () => {
      const tenant = await arena.tenant();
      await formContainer(tenant);
      const answer = await post(tenant, 'forms', formBody(BOUNDARY, signed(tenant, 'forms'), files(8, 100)));
      assert.equal(answer.status, 413, answer.body);
      assert.equal(answer.headers['x-quota-exceeded'], 'object_count');
      assert.deepEqual(await arena.listing(tenant, 'forms'), ['f0', 'f1', 'f2', 'f3', 'f4']);
      assert.deepEqual(await arena.usage(tenant, 'forms'), { objects: LIMITS.objects, bytes: LIMITS.objects * 100 });
    });

    test('a file larger than the byte limit is cut mid-stream and leaves no partial object', async () => {
      const tenant = await arena.tenant();
      await formContainer(tenant);
      const answer = await post(tenant, 'forms', formBody(BOUNDARY, signed(tenant, 'forms'), [{ name: 'a', filename: 'small', content: Buffer.alloc(3000) }, { name: 'b', filename: 'huge', content: Buffer.alloc(200_000, 'h') }]));
      assert.equal(answer.status, 413, answer.body);
      assert.equal(answer.headers['x-quota-exceeded'], 'container_usage');
      assert.deepEqual(await arena.listing(tenant, 'forms'), ['small']);
      assert.deepEqual(await arena.usage(tenant, 'forms'), { objects: 1, bytes: 3000 });
    });

    test('forms whose signature Swift refuses get its 401 and hold nothing: wrong key, expired, other path', async () => {
      const tenant = await arena.tenant();
      await formContainer(tenant);
      const bad = [
        signed(tenant, 'forms', '', 'other-key'),
        signed(tenant, 'forms', '', KEY, Math.floor(Date.now() / 1000) - 10),
        signed(tenant, 'elsewhere'),
      ];
      for (const fields of bad) {
        const answer = await post(tenant, 'forms', formBody(BOUNDARY, fields, files(2, 10)));
        assert.equal(answer.status, 401, answer.body);
        assert.match(answer.body, /^FormPost: /);
        assert.doesNotMatch(answer.body, /quota/i);
      }
      assert.deepEqual(await arena.usage(tenant, 'forms'), { objects: 0, bytes: 0 });
      await arena.proxy.gate.watch.flush();
      assert.deepEqual(await arena.proxyMetadata(tenant, 'forms'), {});
      // The same form, signed as Swift wants it, is stored.
      const good = await post(tenant, 'forms', formBody(BOUNDARY, signed(tenant, 'forms'), files(2, 10)));
      assert.equal(good.status, 201, good.body);
      assert.deepEqual(await arena.listing(tenant, 'forms'), ['f0', 'f1']);
      assert.deepEqual(await arena.usage(tenant, 'forms'), { objects: 2, bytes: 20 });
    });

    test('files formpost sees but other multipart parsers do not (blank lines first, delimiters without CRLF) count', async () => {
      const tenant = await arena.tenant();
      await formContainer(tenant);
      const fields = signed(tenant, 'forms');
      const parts = [
        // Blank lines before the opening boundary: formpost skips them.
        `\r\n\r\n--${BOUNDARY}\r\n`,
        ...Object.entries(fields).map(([name, value]) => `Content-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n--${BOUNDARY}\r\n`),
      ];
      // Each file ends at "\r\n--<boundary>" followed by two bytes formpost skips, whatever they are.
      for (let i = 0; i < 8; i++) parts.push(`Content-Disposition: form-data; name="f${i}"; filename="hidden${i}"\r\n\r\n${'x'.repeat(100)}\r\n--${BOUNDARY}${i === 7 ? '--' : 'zz'}`);
      const answer = await post(tenant, 'forms', Buffer.from(parts.join('')));
      assert.deepEqual([answer.status, answer.headers['x-quota-exceeded']], [413, 'object_count'], answer.body);
      // formpost did store files after a delimiter without CRLF: the first five, and no more.
      assert.deepEqual(await arena.listing(tenant, 'forms'), ['hidden0', 'hidden1', 'hidden2', 'hidden3', 'hidden4']);
      assert.deepEqual(await arena.usage(tenant, 'forms'), { objects: LIMITS.objects, bytes: LIMITS.objects * 100 });
    });

    test('parts whose headers only Swift can be sure of (folded, odd) are counted as files; nothing after the closing delimiter counts', async () => {
      const tenant = await arena.tenant();
      await formContainer(tenant);
      const fields = signed(tenant, 'forms');
      const head = Object.entries(fields).map(([name, value]) => `--${BOUNDARY}\r\nContent-Disposition: form-data; name="${name}"\r\n\r\n${value}\r\n`).join('');
      const odd = Array.from({ length: 7 }, (_, i) => `--${BOUNDARY}\r\nContent-Disposition: form-data;\r\n name="f${i}"; filename="folded${i}"\r\nX-Other:\tvalue\r\n\r\n${'y'.repeat(50)}\r\n`).join('');
      const answer = await post(tenant, 'forms', Buffer.from(`${head}${odd}--${BOUNDARY}--\r\n--${BOUNDARY}\r\nContent-Disposition: form-data; name="late"; filename="late"\r\n\r\nlate\r\n--${BOUNDARY}--\r\n`));
      assert.deepEqual([answer.status, answer.headers['x-quota-exceeded']], [413, 'object_count'], answer.body);
      assert.deepEqual(await arena.listing(tenant, 'forms'), ['folded0', 'folded1', 'folded2', 'folded3', 'folded4']);
      assert.deepEqual(await arena.usage(tenant, 'forms'), { objects: LIMITS.objects, bytes: LIMITS.objects * 50 });
    });

    test('concurrent forms share the container: 3 forms of 3 files store exactly 5, each form a prefix of its files', async () => {
      const tenant = await arena.tenant();
      await formContainer(tenant);
      const answers = await Promise.all([0, 1, 2].map((n) => post(tenant, 'forms', formBody(BOUNDARY, signed(tenant, 'forms'), files(3, 200, `form${n}-`)))));
      const outcomes = answers.map((a) => (a.status === 413 ? `413 ${a.headers['x-quota-exceeded']}` : a.status));
      // 9 files offered for 5 places: exactly 5 stored, however the forms interleave. Each form stores its files
      // in order until it is cut (then told why): a form answered 201 stored all 3, a cut one a prefix of them.
      assert.deepEqual(await arena.usage(tenant, 'forms'), { objects: LIMITS.objects, bytes: LIMITS.objects * 200 }, outcomes.join(' '));
      const listing = await arena.listing(tenant, 'forms');
      [0, 1, 2].forEach((n) => {
        const stored = listing.filter((name) => name.startsWith(`form${n}-`));
        assert.deepEqual(stored, Array.from({ length: stored.length }, (_, i) => `form${n}-${i}`), listing.join(' '));
        assert.equal(outcomes[n], stored.length === 3 ? 201 : '413 object_count', `form ${n} stored ${stored.join(' ')}: ${outcomes.join(' ')}`);
      });
    });

    test('a form posted with a token is still a form (formpost runs before auth): counted, and signed or refused', async () => {
      const tenant = await arena.tenant();
      await formContainer(tenant);
      const unsigned = await call('POST', tenant.viaProxy('/forms/'), { 'x-auth-token': tenant.token, 'content-type': `multipart/form-data; boundary=${BOUNDARY}` }, formBody(BOUNDARY, {}, files(1, 10)));
      assert.equal(unsigned.status, 401);
      const answer = await call('POST', tenant.viaProxy('/forms/p-'), { 'x-auth-token': tenant.token, 'content-type': `multipart/form-data; boundary="${BOUNDARY}"` }, formBody(BOUNDARY, signed(tenant, 'forms', 'p-'), files(7, 10)));
      assert.deepEqual([answer.status, answer.headers['x-quota-exceeded']], [413, 'object_count'], answer.body);
      assert.deepEqual(await arena.listing(tenant, 'forms'), ['p-f0', 'p-f1', 'p-f2', 'p-f3', 'p-f4']);
      assert.deepEqual(await arena.usage(tenant, 'forms'), { objects: LIMITS.objects, bytes: LIMITS.objects * 10 });
    });
  });
}
