/**
 * Tracing, the pure parts: the transaction id's format, client addresses behind trusted proxies (IPv4, IPv6,
 * IPv4-mapped, chains, junk), and the trusted_proxies / trans_id_suffix settings.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { isOwnTransId, newTransId } from '../../src/http/trans-id.js';
import { ClientAddresses, plainAddress } from '../../src/http/client-address.js';
import { configFromText } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/errors.js';

/** A request as the resolver reads it: the peer and the headers, as Node hands them over. */
function request(peer: string, headers: Record<string, string | string[]> = {}): IncomingMessage {
  return { socket: { remoteAddress: peer }, headers } as unknown as IncomingMessage;
}

describe('newTransId: Swift\'s generate_trans_id', () => {
  test('tx, 21 hex digits, -, the time in 10 hex digits, the suffix', () => {
    const id = newTransId('-quota-proxy', Date.UTC(2026, 11, 6) + 999);
    assert.match(id, /^tx[0-9a-f]{21}-[0-9a-f]{10}-quota-proxy$/);
    assert.equal(id.slice(24, 34), (Date.UTC(2026, 11, 6) / 1000).toString(16).padStart(10, '0'));
    assert.ok(isOwnTransId(id, '-quota-proxy'));
    assert.ok(!isOwnTransId('tx0123456789abcdef01234-0065f00000', '-quota-proxy'));
  });

  test('random: 100,000 ids, no repeat', () => {
    const ids = new Set(Array.from({ length: 100_000 }, () => newTransId('')));
    assert.equal(ids.size, 100_000);
  });
});

describe('ClientAddresses: forwarded client addresses from trusted proxies only', () => {
  const clients = new ClientAddresses(['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8', '::ffff:192.168.0.0/112']);

  test('no trusted proxies: always the peer, headers or not', () => {
    const none = new ClientAddresses([]);
    assert.equal(none.of(request('10.1.1.1', { 'x-forwarded-for': '203.0.113.9' })), '10.1.1.1');
    assert.equal(none.of(request('::ffff:10.1.1.1')), '10.1.1.1', 'an IPv4-mapped peer (a listener on ::) as the IPv4 address it is');
    assert.equal(none.of(request('::1')), '::1');
  });

  test('an untrusted peer\'s headers are ignored', () => {
    assert.equal(clients.of(request('203.0.113.5', { 'x-forwarded-for': '198.51.100.1', 'x-cluster-client-ip': '198.51.100.2' })), '203.0.113.5');
  });

  test('a trusted peer: the right-most untrusted X-Forwarded-For address; X-Cluster-Client-IP is not read', () => {
    // A balancer that appends to X-Forwarded-For (HAProxy's option forwardfor) passes a client's own
    // X-Cluster-Client-IP on as written: believed, it let each request name a new address (a bucket of its own
    // under max_bodies_per_client) or frame another client in the log.
    for (const forged of ['198.51.100.1', '198.51.100.2', '198.51.100.3']) {
      assert.equal(clients.of(request('10.0.0.2', { 'x-cluster-client-ip': forged, 'x-forwarded-for': '203.0.113.9' })), '203.0.113.9');
    }
    assert.equal(clients.of(request('10.0.0.2', { 'x-forwarded-for': 'evil, 1.2.3.4, 198.51.100.1, 10.9.9.9' })), '198.51.100.1');
    assert.equal(clients.of(request('10.0.0.2', { 'x-forwarded-for': ['1.2.3.4', '198.51.100.1'] })), '198.51.100.1', 'several headers');
    assert.equal(clients.of(request('10.0.0.2', { 'x-forwarded-for': '10.3.3.3, 10.9.9.9' })), '10.3.3.3', 'all trusted: the left-most');
    assert.equal(clients.of(request('10.0.0.2')), '10.0.0.2');
  });

  test('junk ends the chain: the last address vouched for', () => {
    assert.equal(clients.of(request('10.0.0.2', { 'x-forwarded-for': '198.51.100.1, unknown, 10.9.9.9' })), '10.9.9.9');
    assert.equal(clients.of(request('10.0.0.2', { 'x-forwarded-for': 'unknown' })), '10.0.0.2');
  });

  test('client_ip_header = X-Cluster-Client-IP: that header only (the balancer sets it), X-Forwarded-For not read', () => {
    const cluster = new ClientAddresses(['10.0.0.0/8'], 'x-cluster-client-ip');
    assert.equal(cluster.of(request('10.0.0.2', { 'x-cluster-client-ip': '198.51.100.2', 'x-forwarded-for': '198.51.100.1' })), '198.51.100.2');
    assert.equal(cluster.of(request('10.0.0.2', { 'x-forwarded-for': '198.51.100.1' })), '10.0.0.2', 'not set: the peer');
    assert.equal(cluster.of(request('10.0.0.2', { 'x-cluster-client-ip': 'a, b' })), '10.0.0.2', 'a list is no address');
    assert.equal(cluster.of(request('203.0.113.5', { 'x-cluster-client-ip': '198.51.100.2' })), '203.0.113.5', 'from an untrusted peer: ignored');
  });

  test('IPv6 and IPv4-mapped: peers and forwarded addresses, with ports and brackets', () => {
    assert.equal(clients.of(request('::1', { 'x-forwarded-for': '2001:db8::1' })), '2001:db8::1');
    assert.equal(clients.of(request('fd00::2', { 'x-forwarded-for': '[2001:db8::1]:5555' })), '2001:db8::1');
    assert.equal(clients.of(request('::ffff:10.0.0.2', { 'x-forwarded-for': '198.51.100.1:443' })), '198.51.100.1', 'a mapped peer in a trusted IPv4 network');
    assert.equal(clients.of(request('::ffff:127.0.0.1', { 'x-forwarded-for': '::ffff:198.51.100.1' })), '198.51.100.1');
    assert.equal(clients.of(request('192.168.0.7', { 'x-forwarded-for': '198.51.100.1' })), '198.51.100.1', 'a mapped network trusts the IPv4 address');
    assert.equal(clients.of(request('fe80::1', { 'x-forwarded-for': '198.51.100.1' })), 'fe80::1', 'not in fd00::/8');
    assert.equal(plainAddress('::FFFF:1.2.3.4'), '1.2.3.4');
  });
});

describe('[quota-proxy] trusted_proxies and trans_id_suffix', () => {
  const load = (lines: string[]) => configFromText(['[quota-proxy]', 'upstream = http://127.0.0.1:8080', ...lines, '', '[filter:quota]', 'quota = {"container_count": {"default": 1}}', '',
    '[filter:tempauth]', 'user_admin_admin = secret .admin .reseller_admin', ''].join('\n'), 'trace.conf');

  test('defaults: nobody trusted, the proxy\'s ids marked -quota-proxy', () => {
    assert.deepEqual(load([]).trace, { trustedProxies: [], clientIpHeader: 'x-forwarded-for', transIdSuffix: '-quota-proxy' });
  });

  test('addresses and networks, comma- or space-separated; an empty suffix', () => {
    const { trace } = load(['trusted_proxies = 10.0.0.0/8, 127.0.0.1 ::1,fd00::/8', 'client_ip_header = X-Cluster-Client-IP', 'trans_id_suffix =']);
    assert.deepEqual(trace, { trustedProxies: ['10.0.0.0/8', '127.0.0.1', '::1', 'fd00::/8'], clientIpHeader: 'x-cluster-client-ip', transIdSuffix: '' });
  });

  test('a bad entry or suffix names file, line and key', () => {
    for (const [line, pattern] of [
      ['trusted_proxies = 10.0.0.0/33', /^trace\.conf:3: \[quota-proxy\] trusted_proxies: "10\.0\.0\.0\/33" is not/],
      ['trusted_proxies = lb.example.com', /trusted_proxies: "lb\.example\.com" is not/],
      ['client_ip_header = Forwarded', /client_ip_header: must be X-Forwarded-For or X-Cluster-Client-IP/],
      ['trusted_proxies = ::1/129', /"::1\/129" is not/],
      ['trans_id_suffix = a b', /^trace\.conf:3: \[quota-proxy\] trans_id_suffix: must be/],
    ] as const) {
      assert.throws(() => load([line]), (error: unknown) => error instanceof ConfigError && pattern.test(error.message), line);
    }
  });
});
