/**
 * The proxy's own routes, answered here and never forwarded to Swift: Prometheus metrics, liveness and
 * readiness; on the client port, or on an ops listener of their own (ops_bind_ip/ops_bind_port).
 */
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { Dispatcher } from 'undici';
import type { Metrics } from '../metrics.js';
import type { TransIds } from './trans-id.js';

export const HEALTH_PATH = '/healthz';
export const READY_PATH = '/readyz';
/** Whether writes can be checked too: the usage ledger answers (a load balancer probes READY_PATH, which serves reads). */
export const READY_WRITES_PATH = '/readyz/writes';
const READY_TIMEOUT_MS = 2_000;

export interface OpsRoutesOptions {
  metrics: Metrics;
  metricsPath: string;
  /** More of the proxy's own (GET) paths, defined elsewhere, that take no other method. */
  otherPaths: string[];
  upstream: URL;
  dispatcher: Dispatcher;
  /** Whether the usage ledger answers (a shared Redis); always for the in-process one. */
  ledgerReady: () => Promise<boolean>;
  /** The metrics text: this process's registry, or with workers every worker's added up (cluster.ts). */
  metricsText?: () => Promise<string>;
  /**
   * Answered on the client port (no ops listener), which may be public: readiness says only which dependency
   * is missing ("upstream", "ledger"), never an internal address or error text; the ops listener says it all.
   */
  onClientPort?: boolean;
  /** True once the process is shutting down (lifecycle/drain.ts): readiness then answers 503 whatever else is fine. */
  draining?: () => boolean;
}

/** Whether Swift's proxy answers its `/healthcheck` (the healthcheck middleware) with 200: undefined, or what is wrong. */
export async function swiftAnswers(upstream: URL, dispatcher: Dispatcher): Promise<string | undefined> {
  try {
    const response = await dispatcher.request({
      origin: upstream.origin,
      path: '/healthcheck',
      method: 'GET',
      headers: { host: upstream.host },
      signal: AbortSignal.timeout(READY_TIMEOUT_MS),
    });
    await response.body.dump();
    return response.statusCode === 200 ? undefined : `Swift answered ${response.statusCode} to /healthcheck`;
  } catch (error) {
    return `Swift cannot be reached: ${(error as Error).message}`;
  }
}

export async function opsRoutes(app: FastifyInstance, options: OpsRoutesOptions): Promise<void> {
  const { metrics } = options;
  app.get(options.metricsPath, async (_request, reply) => {
    reply.header('content-type', metrics.registry.contentType);
    return options.metricsText ? options.metricsText() : metrics.registry.metrics();
  });
  healthRoute(app);
  // Readiness: the config is loaded (it is, or we would not be running) and Swift answers. Not the ledger: with
  // it away reads are served and writes get fail_mode, and a balancer that took every proxy out would stop reads.
  app.get(READY_PATH, async (_request, reply) => {
    if (options.draining?.()) return reply.code(503).type('text/plain').send('not ready: shutting down\n');
    const problem = await swiftAnswers(options.upstream, options.dispatcher);
    reply.type('text/plain');
    if (problem === undefined) return reply.send('ready\n');
    return reply.code(503).send(`not ready: ${options.onClientPort ? coarseReason(true) : problem}\n`);
  });
  // Writes checked too: Swift and the ledger answer.
  app.get(READY_WRITES_PATH, async (_request, reply) => {
    if (options.draining?.()) return reply.code(503).type('text/plain').send('not ready for writes: shutting down\n');
    const [swiftProblem, ledgerReady] = await Promise.all([swiftAnswers(options.upstream, options.dispatcher), options.ledgerReady()]);
    const problem = swiftProblem ?? (ledgerReady ? undefined : 'the usage ledger (Redis) cannot be reached: writes that need a check get fail_mode');
    reply.type('text/plain');
    if (problem === undefined) return reply.send('ready for writes\n');
    return reply.code(503).send(`not ready for writes: ${options.onClientPort ? coarseReason(swiftProblem !== undefined) : problem}\n`);
  });
  for (const path of [options.metricsPath, READY_PATH, READY_WRITES_PATH, ...options.otherPaths]) refuseOtherMethods(app, path);
}

/** What readiness tells the client port of a problem: which dependency, nothing of where it is. */
function coarseReason(upstream: boolean): string {
  return upstream ? 'upstream' : 'ledger';
}

/**
 * Liveness: the process answers. Never depends on Swift, so that an orchestrator does not restart proxies
 * because Swift is down. Also on the client port when there is an ops listener: it tells nothing, and liveness
 * probes (the image's HEALTHCHECK among them) ask the port that serves clients.
 */
export function healthRoute(app: FastifyInstance): void {
  app.get(HEALTH_PATH, async (_request, reply) => reply.type('text/plain').send('ok\n'));
  refuseOtherMethods(app, HEALTH_PATH);
}

/**
 * The ops listener: these routes on a server of their own, which listens when the proxy's app gets ready (so
 * before the client port, and a port it cannot have stops start-up like the client port's) and closes with it.
 * Its requests are not the clients': no access log lines, not in the request metrics.
 */
export async function opsListener(app: FastifyInstance, bind: { readonly host: string; readonly port: number; readonly reusePort?: boolean }, options: Omit<OpsRoutesOptions, 'otherPaths'>, transIds?: TransIds): Promise<FastifyInstance> {
  const ops = Fastify({ loggerInstance: app.log, logController: new LogController({ disableRequestLogging: true }), ...(transIds ? { genReqId: transIds.next } : {}) });
  transIds?.stamp(ops);
  await ops.register(opsRoutes, { ...options, otherPaths: [] });
  app.addHook('onReady', async () => {
    // reuse_port as on the client port: a new instance takes the ops port beside this one during an upgrade.
    await ops.listen({ host: bind.host, port: bind.port, ...(bind.reusePort ? { reusePort: true } : {}) });
  });
  app.addHook('onClose', async () => {
    await ops.close();
  });
  return ops;
}

/**
 * Without an ops listener, /metrics and /readyz stay on the client port (as before ops_bind_port existed:
 * scrapes and probes configured against it keep working). When that port is not loopback-only, the metrics
 * are readable by anyone who reaches it: said once at start-up, with what to do about it.
 */
export function warnOpsOnClientPort(bindIp: string, metricsPath: string, log: { warn(message: string): void }): void {
  if (['127.0.0.1', '::1', 'localhost'].includes(bindIp)) return;
  log.warn(`no ops_bind_port: ${metricsPath} and ${READY_PATH} are answered on the client port (${bindIp}), readable by every client; set ops_bind_ip/ops_bind_port to serve them on an internal address only`);
}

/** The proxy's own paths are never forwarded: other methods than GET and HEAD get 405 here. */
export function refuseOtherMethods(app: FastifyInstance, path: string): void {
  const methods = app.supportedMethods.filter((method) => method !== 'GET' && method !== 'HEAD');
  app.route({
    method: methods,
    url: path,
    handler: async (_request, reply) => reply.code(405).header('allow', 'GET, HEAD').type('text/plain').send('Method Not Allowed\n'),
  });
}
