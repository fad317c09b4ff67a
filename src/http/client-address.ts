/**
 * The client's address: the connection's peer, unless the peer is a configured trusted proxy (a load balancer,
 * a TLS terminator), whose X-Cluster-Client-IP or X-Forwarded-For then says who the client is.
 *
 * Swift's proxy-logging believes X-Cluster-Client-IP, else the first X-Forwarded-For entry, from anyone: a client
 * can write what it likes there. Here the headers are read only from a trusted peer, and X-Forwarded-For from its
 * right end: each trusted proxy appends the address it got the request from, so the right-most address that is
 * not itself a trusted proxy is the last one a trusted hop vouches for; anything left of it the client wrote.
 */
import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';
import { parseNetwork, type ClientIpHeader } from '../config/trace.js';

const MAPPED_V4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i;

/** An address as logged: an IPv4-mapped IPv6 address (a listener on `::`) as the IPv4 address it is. */
export function plainAddress(address: string): string {
  // Most addresses are not mapped ones: no regular expression for them.
  if (address.length < 7 || address[0] !== ':' || address[6] !== ':') return address;
  const mapped = MAPPED_V4.exec(address);
  return mapped ? mapped[1]! : address;
}

/** One X-Forwarded-For entry as an address: `[v6]:port`, `v4:port` and `[v6]` forms taken; undefined if none. */
function forwardedAddress(entry: string): string | undefined {
  let text = entry.trim();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  if (bracketed) text = bracketed[1]!;
  else if (/^\d+\.\d+\.\d+\.\d+:\d+$/.test(text)) text = text.slice(0, text.lastIndexOf(':'));
  return isIP(text) === 0 ? undefined : plainAddress(text);
}

function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(',') : value;
}

export class ClientAddresses {
  private trusted: BlockList | undefined;
  private header: ClientIpHeader = 'x-forwarded-for';

  constructor(trustedProxies: readonly string[], header: ClientIpHeader = 'x-forwarded-for') {
    this.use(trustedProxies, header);
  }

  /** Trusted proxies, and the header they set, from now on (a reload). */
  use(trustedProxies: readonly string[], header: ClientIpHeader = 'x-forwarded-for'): void {
    this.header = header;
    if (trustedProxies.length === 0) {
      this.trusted = undefined;
      return;
    }
    const list = new BlockList();
    for (const entry of trustedProxies) {
      const network = parseNetwork(entry);
      if (network) list.addSubnet(network.address, network.prefix, network.family);
    }
    this.trusted = list;
  }

  isTrusted(address: string): boolean {
    if (!this.trusted) return false;
    const version = isIP(address);
    return version !== 0 && this.trusted.check(address, version === 4 ? 'ipv4' : 'ipv6');
  }

  /** The client's address for a request (the peer's when nothing trusted says otherwise), IPv4-mapped ones as IPv4. */
  of(request: IncomingMessage): string | undefined {
    const peer = request.socket.remoteAddress;
    if (peer === undefined) return undefined;
    if (!this.trusted || !this.isTrusted(peer)) return plainAddress(peer);
    const headers = request.headers;
    if (this.header === 'x-cluster-client-ip') {
      // Set (not appended to) by the balancer: one address, or the peer's.
      const cluster = headerValue(headers['x-cluster-client-ip']);
      return (cluster === undefined || cluster.includes(',') ? undefined : forwardedAddress(cluster)) ?? plainAddress(peer);
    }
    const forwarded = headerValue(headers['x-forwarded-for']);
    if (forwarded === undefined) return plainAddress(peer);
    return this.rightMostUntrusted(forwarded.split(','), plainAddress(peer));
  }

  /** Walks the chain from the right; an entry that is no address ends it (what is left of it cannot be vouched for). */
  private rightMostUntrusted(entries: string[], peer: string): string {
    let vouched = peer;
    for (let i = entries.length - 1; i >= 0; i--) {
      const address = forwardedAddress(entries[i]!);
      if (address === undefined) return vouched;
      if (!this.isTrusted(address)) return address;
      vouched = address;
    }
    return vouched;
  }
}
