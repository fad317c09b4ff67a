/**
 * The proxy's long-lived parts, built in one order and closed in one order: the connection pools to Swift, the
 * Swift client, the notifier, the ledger, the watch, what Swift runs, how host names address, and the quota
 * core the front doors admit with. No HTTP framework here: app.ts puts Fastify around them.
 */
import { Agent } from 'undici';
import type { Config } from './config/load.js';
import type { Log } from './log.js';
import type { Metrics } from './metrics.js';
import { WireDispatcher } from './proxy/wire.js';
import { HostAddresser } from './proxy/host-addresser.js';
import { SwiftClient } from './swift/client.js';
import { Census } from './report/census.js';
import { CapabilitiesWatch, type SwiftCapabilities } from './swift/capabilities.js';
import { ConfigError } from './config/errors.js';
import { S3TOKEN_SECTION } from './config/swift-filters.js';
import { Ec2Credentials } from './auth/ec2.js';
import { TokenIdentities } from './auth/identities.js';
import { Notifier } from './notify/notifier.js';
import { createLedger } from './quota/ledger/create.js';
import { FallbackStateStore } from './quota/state-store.js';
import { QuotaWatch } from './quota/watch.js';
import { QuotaCore } from './quota/core.js';

/**
 * Connections to Swift for forwarded requests: a request takes one from when its body starts (body-watch.ts)
 * until Swift's answer has been passed on.
 */
const CLIENT_POOL_CONNECTIONS = 256;
/** Connections to Swift for the proxy's own requests, which client traffic cannot take. */
const OWN_POOL_CONNECTIONS = 64;

export interface Services {
  /** Carries forwarded requests to Swift (wire.ts), on the client pool. */
  readonly dispatcher: WireDispatcher;
  /** The pool of the proxy's own requests (usage reads, authorisation, /info, readiness). */
  readonly ownAgent: Agent;
  readonly identities: TokenIdentities;
  readonly capabilities: CapabilitiesWatch;
  readonly addresser: HostAddresser;
  readonly notifier: Notifier;
  /** Whether the ledger can take writes (/readyz/writes). */
  readonly ledgerReady: () => Promise<boolean>;
  readonly core: QuotaCore;
  /** In this order: pending hit counters and soft states go to Swift, events to their providers, then the connections to Swift close. */
  close(): Promise<void>;
}

/** Connection pools to Swift, with the limits a request to it may take. */
function createAgents(config: Config): { agent: Agent; ownAgent: Agent; close: () => Promise<unknown> } {
  const poolOptions = {
    headersTimeout: config.upstreamTimeoutSeconds * 1000,
    bodyTimeout: config.upstreamTimeoutSeconds * 1000,
    maxHeaderSize: 256 * 1024,
  };
  // Two connection pools to Swift: one for forwarded requests, and one for the proxy's own (usage reads, identity
  // and authorisation checks, /info, readiness), which client traffic cannot take: a pool full of slow client
  // bodies would otherwise hold up every quota decision.
  const agent = new Agent({ connections: CLIENT_POOL_CONNECTIONS, ...poolOptions });
  const ownAgent = new Agent({ connections: OWN_POOL_CONNECTIONS, ...poolOptions });
  return { agent, ownAgent, close: () => Promise.all([agent.close(), ownAgent.close()]) };
}

/**
 * Builds the services. `capabilitiesKnown` gets the watch of what Swift runs as soon as it exists (the server
 * reads its limits from then on).
 */
export async function createServices(config: Config, metrics: Metrics, log: Log, capabilitiesKnown: (watch: CapabilitiesWatch) => void): Promise<Services> {
  const agents = createAgents(config);
  const swift = new SwiftClient({ upstream: config.upstream, dispatcher: agents.ownAgent, service: config.quota.service, metrics });
  let notifier: Notifier;
  try {
    notifier = await Notifier.create(config.notifiers, metrics, log);
  } catch (error) {
    await agents.close();
    throw error;
  }
  const fallback = new FallbackStateStore(swift, () => swift.serviceAccount());
  const { ledger, ready: ledgerReady, watchState, pins } = await createLedger(config, swift, metrics, log);
  const watch = new QuotaWatch({ quota: config.quota, swift, fallback, notifier, metrics, log, ...(watchState ? { shared: watchState } : {}) });
  const identities = new TokenIdentities();
  const capabilities = await readCapabilities(config, agents.ownAgent, log);
  const unverifiable = ec2Unverifiable(config, capabilities.current);
  if (unverifiable) {
    capabilities.close();
    await agents.close();
    throw new ConfigError(config.file, undefined, S3TOKEN_SECTION, undefined, unverifiable);
  }
  capabilitiesKnown(capabilities);
  // Where a request stores, read before anything else (Host-based addressing included).
  const addresser = new HostAddresser({ domainRemap: config.domainRemap, cnameLookup: config.cnameLookup, capabilities: () => capabilities.current, upstreamHost: config.upstream.host });
  const ec2 = config.s3token && new Ec2Credentials(config.s3token, agents.ownAgent, () => swift.keystoneToken(), (api, result) => metrics.keystoneRequests.inc({ api, result }));
  const core = new QuotaCore({ config, swift, metrics, log, watch, identities, capabilities: () => capabilities.current, ledger, pins, ...(ec2 ? { ec2 } : {}) });
  // Who is near quota, for the gauges: in the background, every census_interval.
  const census = new Census(() => core.config, swift, metrics, log);
  census.start();
  return {
    dispatcher: new WireDispatcher(agents.agent),
    ownAgent: agents.ownAgent,
    identities,
    capabilities,
    addresser,
    notifier,
    ledgerReady,
    core,
    async close() {
      await census.stop();
      capabilities.close();
      addresser.close();
      await watch.close();
      await notifier.close();
      await ledger.close();
      await agents.close();
    },
  };
}

/**
 * What Swift runs decides how requests are read (tempurl, formpost, S3, ...): known before the first request
 * when Swift answers in time, assumed (conservatively) until then.
 */
/**
 * What is wrong with the storage policies the limits name (`account_usage:<policy>`), by Swift's /info: a
 * policy Swift does not have limits nothing, and an alias never matches (container HEADs report the name).
 */
export function policyProblems(named: readonly string[], swift: ReadonlyMap<string, string> | undefined): string[] {
  if (swift === undefined) return [];
  return named.flatMap((policy) => {
    const name = swift.get(policy);
    if (name === undefined) return [`the quota limits name storage policy "${policy}", which Swift does not have (it has ${[...new Set(swift.values())].join(', ')}): they limit nothing`];
    if (name !== policy) return [`the quota limits name storage policy "${policy}", an alias of "${name}": name the policy itself (containers report their policy by its name), else they limit nothing`];
    return [];
  });
}

/**
 * Why the proxy cannot count S3 writes Swift takes, if it cannot: Swift runs s3api and no tempauth (its S3
 * requests are signed with Keystone EC2 credentials, checked by s3token) and the config has no [filter:s3token].
 */
export function ec2Unverifiable(config: Pick<Config, 's3token'>, swift: SwiftCapabilities): string | undefined {
  if (!swift.known || !swift.has('s3api') || swift.has('tempauth') || config.s3token) return undefined;
  return "Swift runs s3api with an auth system other than tempauth (Keystone's s3token): copy Swift's [filter:s3token] section into this file, so that the proxy can check EC2 credentials and count the S3 writes signed with them";
}

async function readCapabilities(config: Config, ownAgent: Agent, log: Log): Promise<CapabilitiesWatch> {
  const capabilities = new CapabilitiesWatch(config.upstream, ownAgent, (error) => log.warn({ err: error }, 'cannot read Swift\'s /info; assuming every middleware that can write'));
  await capabilities.refresh();
  const current = capabilities.current;
  for (const [middleware, section] of [['domain_remap', config.domainRemap], ['cname_lookup', config.cnameLookup]] as const) {
    if (current.known && current.has(middleware) && !section) {
      log.warn(`Swift runs ${middleware} but the config has no [filter:${middleware}] section: writes addressed by a host name are refused until it has`);
    }
  }
  for (const problem of policyProblems(config.quota.levels.policies, current.policies)) log.warn(problem);
  if (current.known && current.has('s3api') && !config.s3) {
    log.warn('Swift runs s3api but the config has no [filter:s3api] section: S3 writes addressed by a host name (virtual-hosted buckets) are refused until it has');
  }
  return capabilities;
}
