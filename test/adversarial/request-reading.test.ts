/**
 * The proxy reads every request the way Swift reads it: names percent-decoded with Python's unquote (which
 * keeps malformed escapes), every spelling of a header as the one header eventlet makes of it, raw bytes as
 * UTF-8, any spelling of a path Swift routes to the same object. No shape of request is waved through.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { rawRequest, type HeaderList, type RawResponse } from '../helpers/raw-http.js';
import { call } from '../helpers/http.js';
import { LIMITS, MODES, makeContainer, openArena, putDirect, type Arena, type Tenant } from './arena.js';

const ACCOUNTS = { 'cached mode': [41, 42, 43, 44, 45, 46, 131], 'precise mode': [47, 48, 49, 50, 51, 52, 132] } as const;

/** An answer as the test expects it: the status, and for a quota refusal which quota. */
function outcome(answer: RawResponse): number | string {
  return answer.status === 413 || answer.status === 403 ? `${answer.status} ${answer.headers['x-quota-exceeded']}` : answer.status;
}

for (const mode of MODES) {
  describe(`requests read as Swift reads them, ${mode.name}`, () => {
    let arena: Arena;
    before(async () => {
      arena = await openArena(mode, [...ACCOUNTS[mode.name]]);
    });
    after(() => arena.close());

    /** Container names of an account, as Swift lists them. */
    async function containerNames(tenant: Tenant): Promise<string[]> {
      const listing = await call('GET', tenant.direct('?format=json'), { 'x-auth-token': arena.resellerToken });
      return listing.status === 204 ? [] : (JSON.parse(listing.body) as Array<{ name: string }>).map((c) => c.name);
    }

    /** A request through the proxy with the target and header names exactly as given. */
    function send(tenant: Tenant, method: string, target: string, headers: HeaderList, body = ''): Promise<RawResponse> {
      const host = new URL(arena.proxy.url).host;
      return rawRequest(arena.proxy.url, method, target, [['Host', host], ['X-Auth-Token', tenant.token], ['Content-Length', String(Buffer.byteLength(body))], ...headers], body).response;
    }

    test('object names with malformed escapes (%, %z, %2, %%) are names Swift stores, and they count', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'c');
      const names = ['o%', 'o%z', 'o%2', 'o%%', 'o%zz', 'o%g1', 'o%2%', '%'];
      const answers = [];
      for (const name of names) answers.push(await send(tenant, 'PUT', `/v1/${tenant.swiftAccount}/c/${name}`, [], 'x'));
      assert.deepEqual(answers.map(outcome), [201, 201, 201, 201, 201, '413 object_count', '413 object_count', '413 object_count']);
      // Swift stored the first five under their literal names (Python's unquote keeps a malformed escape).
      assert.deepEqual(await arena.listing(tenant, 'c'), ['o%', 'o%%', 'o%2', 'o%z', 'o%zz']);
      assert.deepEqual(await arena.usage(tenant, 'c'), { objects: LIMITS.objects, bytes: LIMITS.objects });
    });

    test('containers named with malformed escapes count against the container limit', async () => {
      const tenant = await arena.tenant();
      const answers = [];
      for (const name of ['%', 'c%z', 'c%2', 'c%%', 'c%zz']) answers.push(await send(tenant, 'PUT', `/v1/${tenant.swiftAccount}/${name}`, []));
      assert.deepEqual(answers.map(outcome), [201, 201, 201, '403 container_count', '403 container_count']);
      assert.deepEqual(await containerNames(tenant), ['%', 'c%2', 'c%z']);
    });

    test('every spelling of a path Swift routes to one container counts in that container', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'c');
      const targets = [
        `/v1/${tenant.swiftAccount}/c/a`,
        `/v1.0/${tenant.swiftAccount}/c/b`,
        `/%76%31/${tenant.swiftAccount}/c/c`,
        `/v1/${tenant.swiftAccount}/%63/d`,
        `/v1/${tenant.swiftAccount}/c%2Fe`,
        `/v1%2F${tenant.swiftAccount}%2Fc%2Ff`,
        `/v1/${tenant.swiftAccount}/c//g`,
        `/v1/${tenant.swiftAccount.replace('AUTH_', 'AUTH%5F')}/c/h`,
      ];
      const answers = [];
      for (const target of targets) answers.push(await send(tenant, 'PUT', target, [], 'x'));
      assert.deepEqual(answers.map(outcome), [201, 201, 201, 201, 201, '413 object_count', '413 object_count', '413 object_count']);
      assert.deepEqual(await arena.listing(tenant, 'c'), ['a', 'b', 'c', 'd', 'e']);
      assert.deepEqual(await arena.usage(tenant, 'c'), { objects: LIMITS.objects, bytes: LIMITS.objects });
    });

    test('copy headers in any spelling, and with raw UTF-8 names, are sized from the object Swift copies', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'src');
      await makeContainer(tenant, 'dst');
      await putDirect(tenant, '/src/big', Buffer.alloc(6000, 'b'));
      await putDirect(tenant, `/src/${encodeURIComponent('é')}`, Buffer.alloc(6000, 'e'));
      await putDirect(tenant, '/dst/base', Buffer.alloc(5000, 'd'));
      const rawName = Buffer.from('src/é', 'utf8').toString('latin1');
      const attempts: Array<[string, string, HeaderList]> = [
        ['PUT', `/v1/${tenant.swiftAccount}/dst/c1`, [['X_Copy_From', 'src/big']]],
        ['PUT', `/v1/${tenant.swiftAccount}/dst/c2`, [['x-copy_FROM', '/src/big'], ['X_Copy_From_Account', tenant.swiftAccount]]],
        ['PUT', `/v1/${tenant.swiftAccount}/dst/c3`, [['X-Copy-From', rawName]]],
        ['PUT', `/v1/${tenant.swiftAccount}/dst/c4`, [['X-Copy-From', 'src/%C3%A9']]],
        ['COPY', `/v1/${tenant.swiftAccount}/src/big`, [['destination', 'dst/c5']]],
        ['COPY', `/v1/${tenant.swiftAccount}/src/big`, [['Destination', `dst/${Buffer.from('ü', 'utf8').toString('latin1')}`]]],
        ['COPY', `/v1/${tenant.swiftAccount}/src/big`, [['Destination', 'dst/c7'], ['Destination_Account', tenant.swiftAccount]]],
      ];
      for (const [method, target, headers] of attempts) {
        const what = `${method} ${target} ${JSON.stringify(headers)}`;
        const answer = await send(tenant, method, target, headers);
        assert.equal(outcome(answer), '413 container_usage', `${what}: ${answer.status} ${answer.body}`);
        assert.deepEqual(await arena.usage(tenant, 'dst'), { objects: 1, bytes: 5000 }, what);
        // The same request with room for the 6000 bytes is a copy Swift makes: admitted, and stored whole.
        assert.equal((await call('DELETE', tenant.direct('/dst/base'), { 'x-auth-token': tenant.token })).status, 204);
        const admitted = await send(tenant, method, target, headers);
        assert.equal(admitted.status, 201, `${what} with room: ${admitted.status} ${admitted.body}`);
        const copied = await arena.listing(tenant, 'dst');
        assert.deepEqual(await arena.usage(tenant, 'dst'), { objects: 1, bytes: 6000 }, `${what} with room: ${copied.join(' ')}`);
        for (const name of copied) assert.equal((await call('DELETE', tenant.direct(`/dst/${encodeURIComponent(name)}`), { 'x-auth-token': tenant.token })).status, 204);
        await putDirect(tenant, '/dst/base', Buffer.alloc(5000, 'd'));
      }
    });

    test('raw UTF-8 names and unknown methods, pipelined on one connection, are read as Swift reads them and count', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'c');
      for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(tenant, `/c/o${i}`, 'x');
      const head = (line: string, extra = '') => Buffer.from(`${line}\r\nHost: ${new URL(arena.proxy.url).host}\r\nX-Auth-Token: ${tenant.token}\r\n${extra}\r\n`, 'utf8');
      // Node's parser refuses both kinds of line; Swift takes them (a raw name as its percent-encoding). Then a
      // read on the same connection, once those are answered (requests pipelined after a write may run before it
      // is done: clients pipeline only what does not depend on an earlier write).
      const pipelined = Buffer.concat([
        head(`PUT /v1/${tenant.swiftAccount}/c/é HTTP/1.1`, 'Content-Length: 1\r\n'),
        Buffer.from('x'),
        head(`LICK /v1/${tenant.swiftAccount}/c/é HTTP/1.1`, 'Content-Length: 0\r\n'),
        head(`PUT /v1/${tenant.swiftAccount}/c/ü HTTP/1.1`, 'Content-Length: 1\r\n'),
        Buffer.from('y'),
      ]);
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(new URL(arena.proxy.url).port), '127.0.0.1', () => socket.write(pipelined));
        let received = '';
        let asked = false;
        socket.on('data', (chunk) => {
          received += chunk.toString('latin1');
          if (!asked && /used\.\n$/.test(received)) {
            asked = true;
            socket.write(head(`GET /v1/${tenant.swiftAccount}/c/é HTTP/1.1`, 'Connection: close\r\n'));
          }
        });
        socket.on('end', () => resolve(received));
        socket.on('error', reject);
      });
      const statuses = [...answer.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((match) => Number(match[1]));
      assert.deepEqual(statuses, [201, 405, 413, 200], answer);
      assert.deepEqual(/Allow: (.*)\r\n/.exec(answer)?.[1]?.split(', ').sort(), ['DELETE', 'GET', 'HEAD', 'OPTIONS', 'POST', 'PUT']);
      assert.ok(answer.endsWith('x'), 'the object stored under the raw name is the one read back');
      assert.deepEqual(await arena.listing(tenant, 'c'), ['o0', 'o1', 'o2', 'o3', 'é']);
      assert.deepEqual(await arena.usage(tenant, 'c'), { objects: LIMITS.objects, bytes: LIMITS.objects });
    });

    test('a request target in absolute form, or a doubled token, gets Swift\'s own answer and writes nothing', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'c');
      for (let i = 0; i < LIMITS.objects - 1; i++) await putDirect(tenant, `/c/o${i}`, 'x');
      // Swift reads neither as a write it allows: an absolute-form target is no path of its (404), and eventlet
      // joins the two tokens into one that is no token (401). With room in the container, the proxy's answer is
      // Swift's, and nothing is stored either way.
      const shapes = (origin: string): Array<[string, HeaderList]> => [
        [`http://${new URL(origin).host}/v1/${tenant.swiftAccount}/c/abs`, []],
        [`/v1/${tenant.swiftAccount}/c/dup`, [['x_auth_token', tenant.token]]],
      ];
      const sendTo = (origin: string, [target, headers]: [string, HeaderList]) =>
        rawRequest(origin, 'PUT', target, [['Host', new URL(origin).host], ['X-Auth-Token', tenant.token], ['Content-Length', '1'], ...headers], 'x').response;
      const direct = [];
      for (const shape of shapes(arena.swift)) direct.push((await sendTo(arena.swift, shape)).status);
      assert.deepEqual(direct, [404, 401]);
      const proxied = [];
      for (const shape of shapes(arena.proxy.url)) proxied.push(await sendTo(arena.proxy.url, shape));
      assert.deepEqual(proxied.map((a) => a.status), direct, proxied.map((a) => a.body).join(' | '));
      assert.deepEqual(await arena.listing(tenant, 'c'), ['o0', 'o1', 'o2', 'o3']);
    });

    test('Content-Length or Transfer-Encoding in other spellings do not change what is counted', async () => {
      const tenant = await arena.tenant();
      await makeContainer(tenant, 'c');
      await putDirect(tenant, '/c/base', Buffer.alloc(9000, 'b'));
      const body = Buffer.alloc(2000, 'x').toString();
      const chunkedSpelled = (name: string) => send(tenant, 'PUT', `/v1/${tenant.swiftAccount}/c/${name}`, [['Transfer_Encoding', 'chunked']], body);
      const lengthSpelled = (name: string) => send(tenant, 'PUT', `/v1/${tenant.swiftAccount}/c/${name}`, [['Content_Length', '1']], body);
      // Room for 1000 more bytes: each 2000-byte body is refused, whatever the other spelling says.
      const refused = [await chunkedSpelled('a'), await lengthSpelled('b')];
      assert.deepEqual(refused.map(outcome), ['413 container_usage', '413 container_usage'], refused.map((a) => a.body).join(' | '));
      assert.deepEqual(await arena.usage(tenant, 'c'), { objects: 1, bytes: 9000 });
      // With room for 4000, both are stored at the 2000 bytes they carry.
      await putDirect(tenant, '/c/base', Buffer.alloc(6000, 'b'));
      const admitted = [await chunkedSpelled('a'), await lengthSpelled('b')];
      assert.deepEqual(admitted.map(outcome), [201, 201], admitted.map((a) => a.body).join(' | '));
      assert.deepEqual(await arena.listing(tenant, 'c'), ['a', 'b', 'base']);
      assert.deepEqual(await arena.usage(tenant, 'c'), { objects: 3, bytes: LIMITS.bytes });
    });
  });
}
