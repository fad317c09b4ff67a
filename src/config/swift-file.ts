/**
 * What of Swift's own proxy-server.conf applies to the proxy when both share one file.
 *
 * paste.deploy hands [DEFAULT] (its global_conf) to every section of the app it loads: Swift's proxy-server and
 * its filters. The proxy is another server that Swift never loads, so its own sections, [quota-proxy] and
 * [notify:<name>], do not inherit [DEFAULT]: bind_port, workers, log_level there are Swift's proxy-server's
 * (docs/configuration.md, "Swift's [DEFAULT]"). The filter sections the proxy reads ([filter:quota],
 * [filter:tempauth], [filter:s3api], ...) get [DEFAULT], as Swift gives it them, so they read as Swift reads them.
 */
import { ConfigError } from './errors.js';
import type { IniDocument } from './ini.js';
import type { SectionReader } from './section-reader.js';

const SWIFT_APP_SECTION = 'app:proxy-server';
const SWIFT_DEFAULT_BIND_IP = '0.0.0.0'; // swift.common.wsgi's default
const WILDCARDS = new Set(['0.0.0.0', '::', '[::]', '']);
const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$/i;

/** Whether a section gets [DEFAULT]'s keys: Swift's sections do, the proxy's own ([quota-proxy], [notify:*]) not. */
export function inheritsSwiftDefault(proxySection: string, notifyPrefix: string): (section: string) => boolean {
  return (section) => section !== proxySection && !section.startsWith(notifyPrefix);
}

interface Listener {
  readonly host: string;
  readonly port: number;
  /** True when the address came from --listen or the environment rather than from the file. */
  readonly fromCommandLine: boolean;
}

const bare = (host: string) => host.replace(/^\[|\]$/g, '').toLowerCase();
const sameAddress = (a: string, b: string) => bare(a) === bare(b) || (bare(a) === 'localhost' && LOOPBACK.test(bare(b))) || (bare(b) === 'localhost' && LOOPBACK.test(bare(a)));
/** Whether two listeners on one port would collide: the same address, or either on every address. */
const collide = (a: string, b: string) => sameAddress(a, b) || WILDCARDS.has(bare(a)) || WILDCARDS.has(bare(b));

/**
 * The proxy must not listen where Swift does: start-up would fail with EADDRINUSE after --check-config said ok
 * (or, on the upstream's own address, forward to itself). A port taken by something else is found only by
 * binding: start-up, or --check-config's probe (config/startup-checks.ts).
 */
export function checkNotSwiftsPort(doc: IniDocument, proxy: SectionReader | undefined, listener: Listener, upstream: URL, warnings: string[]): void {
  if (listener.port === 0) return;
  const refuse = (reason: string): never => {
    if (listener.fromCommandLine) throw new ConfigError('--listen', undefined, undefined, undefined, `${listener.host}:${listener.port} ${reason}`);
    if (proxy?.has('bind_port')) return proxy.fail('bind_port', reason);
    throw new ConfigError(doc.file, proxy === undefined ? undefined : doc.sectionLine(proxy.name), 'quota-proxy', 'bind_port', `(default ${listener.port}) ${reason}`);
  };

  // A loop on any host, containers included (loopback is the container's own): an error even after --listen.
  const upstreamPort = Number(upstream.port || (upstream.protocol === 'https:' ? 443 : 80));
  const upstreamIsUs = sameAddress(upstream.hostname, listener.host) || (WILDCARDS.has(bare(listener.host)) && LOOPBACK.test(bare(upstream.hostname)));
  if (upstreamPort === listener.port && upstreamIsUs) refuse(`is the upstream's own address ${upstream.origin}: the proxy would forward every request to itself`);

  // Swift's proxy-server reads bind_port and bind_ip from its app section and [DEFAULT]; it has no default port.
  const swift = doc.sections[SWIFT_APP_SECTION];
  if (swift?.bind_port === undefined) return; // not Swift's file, or one Swift would not start with
  const swiftPort = Number(swift.bind_port.trim());
  const swiftHost = swift.bind_ip?.trim() || SWIFT_DEFAULT_BIND_IP;
  if (swiftPort !== listener.port || !collide(swiftHost, listener.host)) return;
  const where = `line ${doc.lineOf(SWIFT_APP_SECTION, 'bind_port')}, [${doc.definedIn(SWIFT_APP_SECTION, 'bind_port')}] bind_port`;
  const reason = `is the port this file gives Swift's proxy-server, ${swiftHost}:${swiftPort} (${where}): set the proxy's own bind_port in [quota-proxy]`;
  // Swift is on this host when the proxy reaches it there. Elsewhere (a host or container of the proxy's own,
  // with Swift's file copied in, or --listen given) the same port is no collision: a warning.
  const swiftHere = LOOPBACK.test(bare(upstream.hostname)) || sameAddress(upstream.hostname, listener.host);
  if (swiftHere && !listener.fromCommandLine) refuse(reason);
  warnings.push(`${doc.file}: ${listener.fromCommandLine ? '--listen' : '[quota-proxy] bind_port:'} ${listener.host}:${listener.port} ${reason}; Swift is at ${upstream.origin}, so this is fine if that is another host`);
}
