/**
 * Builds the Fastify application: the proxy's own routes (metrics, health, readiness), and everything else
 * forwarded to Swift through the front doors (http/quota-hooks.ts). Does not listen; main.ts and the tests do.
 */
import Fastify, { LogController, type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Config } from './config/load.js';
import { planReload, type ReloadPlan } from './config/reload.js';
import { droppedLevels, droppedMessage, levelsDropped } from './admin/dropped.js';
import type { SwiftClient } from './swift/client.js';
import { createMetrics, type Metrics } from './metrics.js';
import { FORWARDED_METHODS, forwardPlugin, upstreamFailureStatus, type ForwardHooks } from './proxy/forward.js';
import { NotSentError } from './proxy/wire.js';
import { clientErrorHandler, createProxyServer, type RawAnswer } from './server.js';
import { healthRoute, opsListener, opsRoutes, refuseOtherMethods, swiftAnswers, warnOpsOnClientPort } from './http/ops-routes.js';
import { DrainState, takesReusePort } from './lifecycle/drain.js';
import { accessLog, clientAddressOf, rawAccessLine } from './http/access-log.js';
import { ClientAddresses } from './http/client-address.js';
import { TransIds } from './http/trans-id.js';
import { callerToken } from './auth/authority.js';
import { swiftView } from './proxy/swift-view.js';
import type { QuotaCore } from './quota/core.js';
import { QuotaHooks } from './http/quota-hooks.js';
import { clusterMetricsText } from './cluster.js';
import { type TokenIdentities, isLoginPath } from './auth/identities.js';
import { reportRoute } from './http/report-route.js';
import { ConnectionBounds } from './http/connection-bounds.js';
import { BodyWatch } from './http/body-watch.js';
import { BodyBuffers } from './http/body-buffer.js';
import { UNKNOWN_CAPABILITIES } from './swift/capabilities.js';
import { createServices, type Services } from './services.js';

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

/** What the HTTP edge keeps per client and per request: bounds, addresses, ids, bodies in progress. */
interface Edge {
  readonly connectionBounds: ConnectionBounds;
  readonly clients: ClientAddresses;
  readonly transIds: TransIds;
  readonly bodies: BodyWatch;
  readonly bodyBuffers: BodyBuffers;
}

function createEdge(config: Config, metrics: Metrics): Edge {
  const refused = (bound: string) => metrics.clientRefusals.inc({ bound });
  // Who the client is behind trusted load balancers, and the ids of the proxy's own answers (docs/operations.md).
  const clients = new ClientAddresses(config.trace.trustedProxies, config.trace.clientIpHeader);
  return {
    // What one client may hold of the proxy (docs/operations.md, "Bounds on what a client can hold").
    connectionBounds: new ConnectionBounds(config.bounds, refused),
    clients,
    transIds: new TransIds(config.trace.transIdSuffix),
    bodies: new BodyWatch(config.bounds, refused, (request) => clientAddressOf(request, clients)),
    bodyBuffers: new BodyBuffers(config.bounds, refused),
  };
}

export async function buildApp(config: Config, options: AppOptions = {}): Promise<ProxyApp> {
  const metrics = createMetrics();
  metrics.initialise(config);
  const edge = createEdge(config, metrics);
  // Read by the server factory, before /info has been read: Swift's defaults until then.
  let capabilities: { readonly current: { readonly maxHeaderCount: number } } = { current: UNKNOWN_CAPABILITIES };
  const app = createFastify(config, options, edge, () => capabilities.current.maxHeaderCount);
  metrics.countConnections(app.server);
  const services = await createServices(config, metrics, app.log, (watch) => (capabilities = watch));
  app.addHook('onClose', async () => {
    edge.connectionBounds.close();
    edge.bodies.close();
    await services.close();
  });
  const { core } = services;
  if (config.accessLog) accessLog(app, { clients: edge.clients, userOf: (request) => core.callerOf(callerToken(swiftView(request.raw).headers)) });
  metrics.setUpstreamProbe(async () => (await swiftAnswers(config.upstream, services.ownAgent)) === undefined);
  // Readiness turns 503 while the process shuts down (lifecycle/drain.ts; main.ts starts the drain).
  const drainState = new DrainState();
  const ops = await registerOps(app, config, metrics, services, edge, drainState);
  await app.register(reportRoute, { config, swift: core.swift, gate: core });
  app.addHook('onResponse', (request, reply, done) => {
    metrics.countRequest(request.method, reply.statusCode, reply.elapsedTime);
    done();
  });
  await registerForwarding(app, config, metrics, services, edge);
  return { app, ops, metrics, gate: core, reload: reloader(app, config, metrics, services, edge), drainState };
}

function createFastify(config: Config, options: AppOptions, edge: Edge, maxHeaderCount: () => number): FastifyInstance {
  // Answers given before Fastify has the request (431, unparsable requests): an id and an access line too.
  const rawAnswers = {
    transId: edge.transIds.next,
    answered: (answer: RawAnswer) => {
      if (config.accessLog) rawAccessLine(app, answer);
    },
  };
  const app = Fastify({
    logger: options.logger ?? { level: config.logLevel },
    // Fastify's own per-request log lines would cost every proxied request; access logs are our own.
    logController: new LogController({ disableRequestLogging: true }),
    serverFactory: (handler) => createProxyServer(handler, { headerTimeoutSeconds: config.bounds.headerTimeoutSeconds, maxHeaderCount, bounds: edge.connectionBounds, ...rawAnswers }),
    clientErrorHandler: clientErrorHandler(rawAnswers),
    // Swift-style transaction ids, random: unique across workers and proxies (trans-id.ts).
    genReqId: edge.transIds.next,
    // Swift object names may be up to 1 KiB and account/container names long too; the whole path is one
    // wildcard parameter to the router.
    routerOptions: { maxParamLength: 64 * 1024 },
    requestTimeout: 0,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  });
  edge.transIds.stamp(app);
  for (const method of FORWARDED_METHODS) {
    if (!app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody: true });
  }
  return app;
}

/**
 * /metrics, /healthz, /readyz. With an ops listener, /metrics and /readyz are answered there only: kept off the
 * client port, which may be public (readiness answers say why Swift or the ledger cannot be reached). /healthz
 * stays on both.
 */
async function registerOps(app: FastifyInstance, config: Config, metrics: Metrics, services: Services, edge: Edge, drainState: DrainState): Promise<FastifyInstance | undefined> {
  const ops = { metrics, metricsPath: config.metricsPath, upstream: config.upstream, dispatcher: services.ownAgent, ledgerReady: services.ledgerReady, metricsText: clusterMetricsText(metrics.registry), draining: () => drainState.notReady };
  const opsServer = config.opsBind ? await opsListener(app, { ...config.opsBind, reusePort: takesReusePort(config.restart, config.opsBind.port) }, ops, edge.transIds) : undefined;
  if (opsServer) {
    healthRoute(app);
    refuseOtherMethods(app, config.reportPath);
  } else {
    await app.register(opsRoutes, { ...ops, otherPaths: [config.reportPath], onClientPort: true });
    warnOpsOnClientPort(config.bindIp, config.metricsPath, app.log);
  }
  return opsServer;
}

/** Everything else goes to Swift, through the front doors (http/quota-hooks.ts). */
async function registerForwarding(app: FastifyInstance, config: Config, metrics: Metrics, services: Services, edge: Edge): Promise<void> {
  await app.register(async (scope) => {
    // Fastify would parse, or refuse with 415, a Content-Type it does not know; Swift takes any. Without the
    // header, routing makes every body a pass-through stream; Swift gets it from the raw headers (swift-view.ts).
    // Callback-style hooks, and promises only where a request waits for something (a DNS lookup, a quota
    // decision): most requests need neither, and pay for no promise.
    scope.addHook('onRequest', (request, reply, done) => {
      if (request.headers['content-type'] !== undefined) delete request.headers['content-type'];
      const addressed = services.addresser.address(request.raw);
      if (addressed === undefined) return done();
      // cname_lookup's own answer to a host name it cannot resolve to the storage domain.
      const answer = (failure: string | undefined) => {
        if (failure === undefined) return done();
        reply.code(400).header('content-type', 'text/plain; charset=UTF-8').send(failure);
      };
      if (typeof addressed === 'string') return answer(addressed);
      addressed.then(answer, done);
    });
    await scope.register(forwardPlugin, { upstream: config.upstream, dispatcher: services.dispatcher, hooks: forwardHooks(metrics, services, edge) });
  });
}

function forwardHooks(metrics: Metrics, services: Services, edge: Edge): ForwardHooks {
  const { bodies } = edge;
  const quota = new QuotaHooks(services.core, edge.bodyBuffers);
  return {
    preHandler: (request, reply, done) => {
      if (!bodies.enter(request, reply)) return; // answered: 503, too many bodies in progress
      quota.admit(request, reply, () => {
        if (reply.sent) return done();
        quota.continueUnlessSent(request, reply);
        // Swift is contacted once the body has started (body-watch.ts).
        bodies.whenBodyStarts(request, done);
      }, done);
    },
    onUpstreamResponse: (request, reply, statusCode, headers, body) => {
      if (statusCode === 200 && request.method === 'GET' && isLoginPath(request.url)) rememberLogin(services.identities, request.headers, headers);
      return quota.onUpstreamResponse(request, reply, statusCode, headers, body);
    },
    upstreamEvents: (request) => quota.upstreamEvents(request),
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
  };
}

/** Applies a newly loaded configuration's reloadable settings (config/reload.ts decides which). */
function reloader(app: FastifyInstance, config: Config, metrics: Metrics, services: Services, edge: Edge): (next: Config) => Promise<ReloadPlan> {
  let running = config;
  return async (next) => {
    await refuseDroppedLevels(running, next, services.core.swift);
    const plan = planReload(running, next);
    if (plan.applied.includes('[notify:*]')) await services.notifier.reload(plan.config.notifiers);
    services.core.useConfig(plan.config);
    edge.connectionBounds.use(plan.config.bounds);
    edge.bodies.use(plan.config.bounds);
    edge.bodyBuffers.use(plan.config.bounds);
    edge.clients.use(plan.config.trace.trustedProxies, plan.config.trace.clientIpHeader);
    edge.transIds.use(plan.config.trace.transIdSuffix);
    app.server.headersTimeout = plan.config.bounds.headerTimeoutSeconds * 1000;
    metrics.initialise(plan.config);
    app.log.level = plan.config.logLevel;
    running = plan.config;
    return plan;
  };
}

/** A reload that would drop a level known accounts hold, unmapped and not allowed, is refused (admin/dropped.ts). */
async function refuseDroppedLevels(running: Config, next: Config, swift: SwiftClient): Promise<void> {
  const removed = levelsDropped(running, next);
  if (removed.size === 0 || next.quota.allowDroppedLevels) return;
  const dropped = await droppedLevels(next, swift, removed);
  if (dropped.size > 0) throw new Error(droppedMessage(dropped));
}

/** A tempauth login answered through the proxy: remember whose token it is, for quota events. */
function rememberLogin(identities: TokenIdentities, requestHeaders: Record<string, unknown>, responseHeaders: Record<string, unknown>): void {
  const user = requestHeaders['x-auth-user'] ?? requestHeaders['x-storage-user'];
  const token = responseHeaders['x-auth-token'] ?? responseHeaders['x-storage-token'];
  if (typeof user !== 'string' || typeof token !== 'string') return;
  identities.remember(token, user, Number(responseHeaders['x-auth-token-expires']));
}
