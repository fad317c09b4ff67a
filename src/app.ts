/**
 * Builds the Fastify application: the proxy's own routes (metrics, health, readiness), and everything else
 * forwarded to Swift through the quota gate. Does not listen; main.ts and the tests do.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import { Agent } from 'undici';
import type { Config } from './config/load.js';
import { planReload, type ReloadPlan } from './config/reload.js';
import { createMetrics, type Metrics } from './metrics.js';
import { FORWARDED_METHODS, forwardPlugin, upstreamFailureStatus } from './proxy/forward.js';
import { NotSentError, WireDispatcher } from './proxy/wire.js';
import { clientErrorHandler, createProxyServer, type RawAnswer } from './server.js';
import { healthRoute, opsListener, opsRoutes, refuseOtherMethods, swiftAnswers, warnOpsOnClientPort } from './http/ops-routes.js';
import { DrainState, takesReusePort } from './lifecycle/drain.js';
import { accessLog, clientAddressOf, rawAccessLine } from './http/access-log.js';
import { ClientAddresses } from './http/client-address.js';
import { TransIds } from './http/trans-id.js';
import { callerToken } from './auth/authority.js';
import { swiftView } from './proxy/swift-view.js';
import { QuotaCore } from './quota/core.js';
import { quotaHooks, continueUnlessSent } from './http/quota-hooks.js';
import { createLedger } from './quota/ledger/create.js';
import { clusterMetricsText } from './cluster.js';
import { SwiftClient } from './swift/client.js';
import { TokenIdentities, isLoginPath } from './auth/identities.js';
import { Notifier } from './notify/notifier.js';
import { QuotaWatch } from './quota/watch.js';
import { reportRoute } from './http/report-route.js';
import { HostAddresser } from './proxy/host-addresser.js';
import { FallbackStateStore } from './quota/state-store.js';
import { ConnectionBounds } from './http/connection-bounds.js';
import { BodyWatch } from './http/body-watch.js';
import { BodyBuffers } from './http/body-buffer.js';
import { CapabilitiesWatch, UNKNOWN_CAPABILITIES, type SwiftCapabilities } from './swift/capabilities.js';

/**
 * Connections to Swift for forwarded requests: a request takes one from when its body starts (body-watch.ts)
 * until Swift's answer has been passed on.
 */
const CLIENT_POOL_CONNECTIONS = 256;
/** Connections to Swift for the proxy's own requests, which client traffic cannot take. */
const OWN_POOL_CONNECTIONS = 64;

export interface AppOptions {
  logger?: FastifyServerOptions['logger'];
}

export interface ProxyApp {
  app: FastifyInstance;
  /** The ops listener's server (ops_bind_ip/ops_bind_port), listening once `app` is ready; undefined without one. */
  ops: FastifyInstance | undefined;
  metrics: Metrics;
  /** What the front doors admit writes with: the ledger, the watch, the rules in force (quota/core.ts). */
  gate: QuotaCore;
  /**
   * Runs with a newly loaded configuration's reloadable settings (SIGHUP; see config/reload.ts): connections,
   * requests in flight and reservations are untouched. Rejects, changing nothing, when a new notification
   * provider cannot start.
   */
  reload: (next: Config) => Promise<ReloadPlan>;
  /** Whether the process is draining (main.ts begins it on SIGTERM): /readyz reads it. */
  drainState: DrainState;
}

export async function buildApp(config: Config, options: AppOptions = {}): Promise<ProxyApp> {
  const metrics = createMetrics();
  metrics.initialise(config);
  const refused = (bound: string) => metrics.clientRefusals.inc({ bound });
  // What one client may hold of the proxy (docs/operations.md, "Bounds on what a client can hold").
  const connectionBounds = new ConnectionBounds(config.bounds, refused);
  // Who the client is behind trusted load balancers, and the ids of the proxy's own answers (docs/operations.md).
  const clients = new ClientAddresses(config.trace.trustedProxies, config.trace.clientIpHeader);
  const transIds = new TransIds(config.trace.transIdSuffix);
  const bodies = new BodyWatch(config.bounds, refused, (request) => clientAddressOf(request, clients));
  const bodyBuffers = new BodyBuffers(config.bounds, refused);
  // Read by the server factory below, before /info has been read: Swift's defaults until then.
  let capabilities: CapabilitiesWatch | { current: SwiftCapabilities } = { current: UNKNOWN_CAPABILITIES };
  // Answers given before Fastify has the request (431, unparsable requests): an id and an access line too.
  const rawAnswers = {
    transId: transIds.next,
    answered: (answer: RawAnswer) => {
      if (config.accessLog) rawAccessLine(app, answer);
    },
  };
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel },
    // Fastify's own per-request log lines would cost every proxied request; access logs are our own.
    logController: new LogController({ disableRequestLogging: true }),
    serverFactory: (handler) => createProxyServer(handler, { headerTimeoutSeconds: config.bounds.headerTimeoutSeconds, maxHeaderCount: () => capabilities.current.maxHeaderCount, bounds: connectionBounds, ...rawAnswers }),
    clientErrorHandler: clientErrorHandler(rawAnswers),
    // Swift-style transaction ids, random: unique across workers and proxies (trans-id.ts).
    genReqId: transIds.next,
    // Swift object names may be up to 1 KiB and account/container names long too; the whole path is one
    // wildcard parameter to the router.
    routerOptions: { maxParamLength: 64 * 1024 },
    requestTimeout: 0,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  transIds.stamp(app);
  metrics.countConnections(app.server);
  for (const method of FORWARDED_METHODS) {
    if (!app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true });
  }

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
  const closeAgents = () => Promise.all([agent.close(), ownAgent.close()]);
  const dispatcher = new WireDispatcher(agent);

  const swift = new SwiftClient({ upstream: config.upstream, dispatcher: ownAgent, service: config.quota.service, metrics });
  let notifier: Notifier;
  try {
    notifier = await Notifier.create(config.notifiers, metrics, app.log);
  } catch (error) {
    await closeAgents();
    throw error;
  }
  const fallback = new FallbackStateStore(swift, () => swift.serviceAccount());
  const { ledger, ready: ledgerReady, watchState, pins } = await createLedger(config, swift, metrics, app.log);
  const watch = new QuotaWatch({ quota: config.quota, swift, fallback, notifier, metrics, log: app.log, ...(watchState ? { shared: watchState } : {}) });
  const identities = new TokenIdentities();
  // What Swift runs decides how requests are read (tempurl, formpost, S3, ...): known before the first request
  // when Swift answers in time, assumed (conservatively) until then.
  const watchedCapabilities = new CapabilitiesWatch(config.upstream, ownAgent, (error) => app.log.warn({ err: error }, 'cannot read Swift\'s /info; assuming every middleware that can write'));
  capabilities = watchedCapabilities;
  await watchedCapabilities.refresh();
  for (const [middleware, section] of [['domain_remap', config.domainRemap], ['cname_lookup', config.cnameLookup]] as const) {
    if (watchedCapabilities.current.known && watchedCapabilities.current.has(middleware) && !section) {
      app.log.warn(`Swift runs ${middleware} but the config has no [filter:${middleware}] section: writes addressed by a host name are refused until it has`);
    }
  }
  if (watchedCapabilities.current.known && watchedCapabilities.current.has('s3api') && !config.s3) {
    app.log.warn('Swift runs s3api but the config has no [filter:s3api] section: S3 writes addressed by a host name (virtual-hosted buckets) are refused until it has');
  }
  // Where a request stores, read before anything else (Host-based addressing included).
  const addresser = new HostAddresser({ domainRemap: config.domainRemap, cnameLookup: config.cnameLookup, capabilities: () => watchedCapabilities.current, upstreamHost: config.upstream.host });
  const gate = new QuotaCore({ config, swift, metrics, log: app.log, watch, identities, capabilities: () => watchedCapabilities.current, ledger, pins });
  const quota = quotaHooks(gate, bodyBuffers);
  // In this order: pending hit counters and soft states go to Swift, events to their providers, then the
  // connections to Swift close.
  app.addHook('onClose', async () => {
    watchedCapabilities.close();
    addresser.close();
    connectionBounds.close();
    bodies.close();
    await watch.close();
    await notifier.close();
    await ledger.close();
    await closeAgents();
  });

  if (config.accessLog) accessLog(app, { clients, userOf: (request) => gate.callerOf(callerToken(swiftView(request.raw).headers)) });
  metrics.setUpstreamProbe(async () => (await swiftAnswers(config.upstream, ownAgent)) === undefined);
  // Readiness turns 503 while the process shuts down (lifecycle/drain.ts; main.ts starts the drain).
  const drainState = new DrainState();
  const ops = { metrics, metricsPath: config.metricsPath, upstream: config.upstream, dispatcher: ownAgent, ledgerReady, metricsText: clusterMetricsText(metrics.registry), draining: () => drainState.notReady };
  // With an ops listener, /metrics and /readyz are answered there only: kept off the client port, which may be
  // public (readiness answers say why Swift or the ledger cannot be reached). /healthz stays on both.
  const opsServer = config.opsBind ? await opsListener(app, { ...config.opsBind, reusePort: takesReusePort(config.restart, config.opsBind.port) }, ops, transIds) : undefined;
  if (opsServer) {
    healthRoute(app);
    refuseOtherMethods(app, config.reportPath);
  } else {
    await app.register(opsRoutes, { ...ops, otherPaths: [config.reportPath], onClientPort: true });
    warnOpsOnClientPort(config.bindIp, config.metricsPath, app.log);
  }
  await app.register(reportRoute, { config, swift, gate });

  app.addHook('onResponse', (request, reply, done) => {
    metrics.countRequest(request.method, reply.statusCode, reply.elapsedTime);
    done();
  });

  await app.register(async (scope) => {
    // Fastify would parse, or refuse with 415, a Content-Type it does not know; Swift takes any. Without the
    // header, routing makes every body a pass-through stream; Swift gets it from the raw headers (swift-view.ts).
    // Callback-style hooks, and promises only where a request waits for something (a DNS lookup, a quota
    // decision): most requests need neither, and pay for no promise.
    scope.addHook('onRequest', (request, reply, done) => {
      if (request.headers['content-type'] !== undefined) delete request.headers['content-type'];
      const addressed = addresser.address(request.raw);
      if (addressed === undefined) return done();
      // cname_lookup's own answer to a host name it cannot resolve to the storage domain.
      const answer = (failure: string | undefined) => {
        if (failure === undefined) return done();
        reply.code(400).header('content-type', 'text/plain; charset=UTF-8').send(failure);
      };
      if (typeof addressed === 'string') return answer(addressed);
      addressed.then(answer, done);
    });
    await scope.register(forwardPlugin, {
      upstream: config.upstream,
      dispatcher,
      hooks: {
        preHandler: (request, reply, done) => {
          if (!bodies.enter(request, reply)) return; // answered: 503, too many bodies in progress
          quota.admit(request, reply, () => {
            if (reply.sent) return done();
            continueUnlessSent(request, reply);
            // Swift is contacted once the body has started (body-watch.ts).
            bodies.whenBodyStarts(request, done);
          }, done);
        },
        onUpstreamResponse: (request, reply, statusCode, headers, body) => {
          if (statusCode === 200 && request.method === 'GET' && isLoginPath(request.url)) rememberLogin(identities, request.headers, headers);
          return quota.onUpstreamResponse(request, reply, statusCode, headers, body);
        },
        upstreamEvents: quota.upstreamEvents,
        onUpstreamError: (request, reply, error) => {
          if (quota.answerUpstreamError(request, reply, error)) return true;
          if (error.cause instanceof NotSentError || error instanceof NotSentError) return false;
          // A body cut for a stall has had its 408; Swift's side was aborted on purpose.
          if (bodies.wasCut(request)) return true;
          // A client that went away mid-request breaks the exchange too; that is not Swift failing.
          if (request.raw.destroyed && !request.raw.complete) {
            request.log.debug({ err: error }, 'client went away before Swift answered');
            return false;
          }
          metrics.upstreamErrors.inc({ status: String(upstreamFailureStatus(error)) });
          request.log.warn({ err: error, url: request.url }, 'Swift request failed');
          return false;
        },
      },
    });
  });

  let running = config;
  const reload = async (next: Config): Promise<ReloadPlan> => {
    const plan = planReload(running, next);
    if (plan.applied.includes('[notify:*]')) await notifier.reload(plan.config.notifiers);
    gate.useConfig(plan.config);
    connectionBounds.use(plan.config.bounds);
    bodies.use(plan.config.bounds);
    bodyBuffers.use(plan.config.bounds);
    clients.use(plan.config.trace.trustedProxies, plan.config.trace.clientIpHeader);
    transIds.use(plan.config.trace.transIdSuffix);
    app.server.headersTimeout = plan.config.bounds.headerTimeoutSeconds * 1000;
    metrics.initialise(plan.config);
    app.log.level = plan.config.logLevel;
    running = plan.config;
    return plan;
  };

  return { app, ops: opsServer, metrics, gate, reload, drainState };
}

/** A tempauth login answered through the proxy: remember whose token it is, for quota events. */
function rememberLogin(identities: TokenIdentities, requestHeaders: Record<string, unknown>, responseHeaders: Record<string, unknown>): void {
  const user = requestHeaders['x-auth-user'] ?? requestHeaders['x-storage-user'];
  const token = responseHeaders['x-auth-token'] ?? responseHeaders['x-storage-token'];
  if (typeof user !== 'string' || typeof token !== 'string') return;
  identities.remember(token, user, Number(responseHeaders['x-auth-token-expires']));
}
