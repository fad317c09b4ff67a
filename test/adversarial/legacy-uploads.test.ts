/**
 * Form uploads and S3 multipart completions into containers with legacy versioning (issue 26): each file or
 * manifest makes Swift archive the object it replaces into the location container, and that archive is counted
 * there, against the location's limits, before the write passes. History mode takes no forms (the proxy would
 * have to delete a cut form's partial file, which history mode archives). Outcomes are read on Swift directly.
 * Accounts lv1..lv12.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { accountUrl, call, login } from '../helpers/http.js';
import { startProxy, type RunningProxy } from '../helpers/proxy.js';
import { swiftUrl } from '../helpers/swift-env.js';
import { s3 } from './attacks.js';
import { formBody, formSignature } from './signing.js';

const QUOTA = { container_count: { default: 10 }, object_count: { default: 10 }, container_usage: { default: 10_000 } };

let nextAccount = 1;

for (const precise of [false, true]) {
  describe(`uploads into legacy-versioned containers, ${precise ? 'precise' : 'cached'} mode`, () => {
    let swift: string;
    let proxy: RunningProxy;
    let reseller: string;
    before(async () => {
      swift = await swiftUrl();
      proxy = await startProxy({ upstream: swift, quota: QUOTA, preciseMode: precise });
      reseller = (await login(swift, 'reseller:reseller', 'reseller')).token;
    });
    after(() => proxy.close());

    async function tenant() {
      const account = `lv${nextAccount++}`;
      assert.ok(nextAccount <= 13, 'the test file ran out of accounts');
      const { token } = await login(swift, `${account}:admin`, `${account}pass`);
      const url = (path: string) => `${accountUrl(proxy.url, account)}${path}`;
      const put = async (path: string, body?: Buffer, headers: Record<string, string> = {}) => {
        const answer = await call('PUT', url(path), { 'x-auth-token': token, ...headers }, body);
        assert.equal(answer.status, 201, `PUT ${path}: ${answer.status} ${answer.body}`);
      };
      /** What Swift stores in a container, and the size of one of its objects. */
      const usage = async (container: string) => {
        const head = await call('HEAD', `${swift}/v1/AUTH_${account}/${container}`, { 'x-auth-token': reseller });
        return { objects: Number(head.headers['x-container-object-count']), bytes: Number(head.headers['x-container-bytes-used']) };
      };
      const size = async (path: string) => Number((await call('HEAD', `${swift}/v1/AUTH_${account}${path}`, { 'x-auth-token': reseller })).headers['content-length']);
      const form = (container: string, files: Array<[string, number]>) => {
        const expires = Math.floor(Date.now() / 1000) + 300;
        const fields = { path: `/v1/AUTH_${account}/${container}/`, maxFileSize: 1_000_000, maxFileCount: 10, expires };
        const body = formBody('LvBoundary', { max_file_size: '1000000', max_file_count: '10', expires: String(expires), signature: formSignature(fields, 'formkey') },
          files.map(([filename, bytes]) => ({ name: filename, filename, content: Buffer.alloc(bytes, 'f') })));
        return call('POST', url(`/${container}/`), { 'content-type': 'multipart/form-data; boundary=LvBoundary' }, body);
      };
      return { account, token, put, usage, size, form };
    }

    test('a form file archives the object it replaces, counted in the location; the next archive that does not fit cuts the form before its file', async () => {
      const t = await tenant();
      await t.put('/arch');
      await t.put('/docs', undefined, { 'x-versions-location': 'arch', 'x-container-meta-temp-url-key': 'formkey' });
      await t.put('/arch/fill', Buffer.alloc(6_000, 'x'));
      await t.put('/docs/a', Buffer.alloc(4_000, 'a'));
      const first = await t.form('docs', [['a', 1_000]]);
      assert.ok(first.status < 400, `${first.status} ${first.body}`);
      assert.deepEqual(await t.usage('arch'), { objects: 2, bytes: 10_000 });
      const second = await t.form('docs', [['a', 500]]);
      assert.ok(second.status >= 400, `${second.status} ${second.body}`);
      assert.deepEqual({ arch: await t.usage('arch'), a: await t.size('/docs/a') }, { arch: { objects: 2, bytes: 10_000 }, a: 1_000 });
    });

    test('two files of one name in one form: the second archives the first, as passed on', async () => {
      const t = await tenant();
      await t.put('/arch');
      await t.put('/docs', undefined, { 'x-versions-location': 'arch', 'x-container-meta-temp-url-key': 'formkey' });
      await t.put('/arch/fill', Buffer.alloc(9_000, 'x'));
      const answer = await t.form('docs', [['b', 2_000], ['b', 2_000]]);
      assert.ok(answer.status >= 400, `the second file's archive (2,000 bytes) does not fit: ${answer.status} ${answer.body}`);
      assert.deepEqual({ arch: await t.usage('arch'), docs: await t.usage('docs') }, { arch: { objects: 1, bytes: 9_000 }, docs: { objects: 1, bytes: 2_000 } });
    });

    test('history mode takes no forms (400), and nothing is stored', async () => {
      const t = await tenant();
      await t.put('/hist');
      await t.put('/docs', undefined, { 'x-history-location': 'hist', 'x-container-meta-temp-url-key': 'formkey' });
      const answer = await t.form('docs', [['c', 10]]);
      assert.equal(answer.status, 400, answer.body);
      assert.match(answer.body, /history mode/);
      assert.deepEqual(await t.usage('docs'), { objects: 0, bytes: 0 });
    });

    test('an S3 multipart completion archives the key it replaces: refused while the archive does not fit, stored once it does', async () => {
      const t = await tenant();
      await t.put('/sarch');
      await t.put('/sbk', undefined, { 'x-versions-location': 'sarch' });
      await t.put('/sarch/fill', Buffer.alloc(8_000, 'x'));
      await t.put('/sbk/k', Buffer.alloc(3_000, 'k'));
      const as = { endpoint: proxy.url, access: `${t.account}:admin`, secret: `${t.account}pass` };
      const [refused] = await s3([{ ...as, op: 'multipart', bucket: 'sbk', key: 'k', parts: [1_000] }]);
      assert.equal(refused!.ok, false, JSON.stringify(refused));
      assert.deepEqual({ sarch: await t.usage('sarch'), k: await t.size('/sbk/k') }, { sarch: { objects: 1, bytes: 8_000 }, k: 3_000 });
      assert.equal((await call('DELETE', `${accountUrl(proxy.url, t.account)}/sarch/fill`, { 'x-auth-token': t.token })).status, 204);
      const [stored] = await s3([{ ...as, op: 'multipart', bucket: 'sbk', key: 'k', parts: [1_000] }]);
      assert.equal(stored!.ok, true, JSON.stringify(stored));
      assert.deepEqual({ sarch: await t.usage('sarch'), k: await t.size('/sbk/k') }, { sarch: { objects: 1, bytes: 3_000 }, k: 1_000 });
    });
  });
}
