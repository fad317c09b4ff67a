/**
 * Runs a built swift-quota-proxy image with podman against a real Swift and checks it from outside, as a
 * client would. Called by docker/verify-image.sh after it built the image; usable alone too:
 *
 *   node --import tsx docker/verify-image.ts --image localhost/swift-quota-proxy:verify [options]
 *
 *   --upstream URL   use this Swift instead of starting one (test/swift/cluster.ts); it must have the users of
 *                    docker/proxy-server.conf (test:tester/testing, reseller:reseller/reseller) and an account
 *                    AUTH_test with room for 5 more containers is assumed to hold none yet
 *   --cli-flags      give the container `--config/--listen/--upstream` on its command line instead of the
 *                    SWIFT_QUOTA_PROXY_* environment (for a src/main.ts without the environment overrides)
 *   --no-healthz     skip /healthz, /readyz and the image's HEALTHCHECK (for a src/ without those routes)
 *   --swift-image IMAGE
 *                    run Swift from this image (docker/swift/Dockerfile, compose's `swift` service) on the host
 *                    network instead of test/swift/cluster.ts, and the proxy with docker/proxy-server.conf as
 *                    it is (upstream http://swift:8080, `swift` added to its /etc/hosts as 127.0.0.1); also
 *                    restarts the Swift container and reads the object again (its volume keeps the data)
 *
 * The container runs with host networking (Swift listens on loopback), the compose config
 * docker/proxy-server.conf mounted where the image reads it, and its listen address and upstream overridden.
 * Checks: /healthz, /readyz, `podman healthcheck run`, tempauth through the proxy, container + object PUT and
 * GET (bytes equal), the quota headers, a container_count refusal (403) at the compose config's default level,
 * /metrics, the process uid (10001), and exit code 0 after SIGTERM (`podman stop`). Cleans up after itself.
 * The compose config's ops listener (ops_bind_ip/ops_bind_port) keeps its port, as compose runs it: /readyz and
 * /metrics are asked there, and checked absent from the client port (where they are Swift's paths), with no
 * start-up warning about them; that port must be free on the host (host networking).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';
import { setTimeout as delay } from 'node:timers/promises';
import { loadConfig } from '../src/config/load.js';
import { startSwift, type SwiftCluster } from '../test/swift/cluster.js';
import { startRedis, type RedisServer } from '../test/swift/redis.js';
import { freePort } from '../test/helpers/ports.js';

const exec = promisify(execFile);
const ROOT = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const COMPOSE_CONFIG = path.join(ROOT, 'docker', 'proxy-server.conf');
const CONFIG_IN_IMAGE = '/etc/swift-quota-proxy/proxy-server.conf';
const PODMAN_RUN_FLAGS = ['--runtime', 'runc', '--ulimit', 'nofile=4096:4096', '--ulimit', 'nproc=1024:1024'];
const EXPECTED_UID = '10001';

const { values: opts } = parseArgs({
  options: {
    image: { type: 'string' },
    upstream: { type: 'string' },
    'cli-flags': { type: 'boolean', default: false },
    'no-healthz': { type: 'boolean', default: false },
    'swift-image': { type: 'string' },
  },
  strict: true,
});
if (!opts.image) {
  process.stderr.write('usage: node --import tsx docker/verify-image.ts --image IMAGE [--upstream URL] [--cli-flags] [--no-healthz]\n');
  process.exit(2);
}
const image = opts.image;

const startedAt = Date.now();
const elapsed = () => `${((Date.now() - startedAt) / 1000).toFixed(1)} s`;
const say = (line: string) => process.stdout.write(`[verify-image ${elapsed()}] ${line}\n`);
let checks = 0;
function check(ok: boolean, what: string, detail = ''): void {
  if (!ok) throw new Error(`FAILED: ${what}${detail ? `: ${detail}` : ''}`);
  checks += 1;
  say(`ok ${checks} - ${what}`);
}

async function podman(args: string[], { allowFail = false } = {}): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await exec('podman', args, { maxBuffer: 64 * 1024 * 1024 });
    return { code: 0, out: `${stdout}${stderr}`.trim() };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string; message: string };
    if (!allowFail) throw new Error(`podman ${args.join(' ')} failed: ${e.stderr ?? e.message}`);
    return { code: typeof e.code === 'number' ? e.code : 1, out: `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() };
  }
}


interface Answer {
  status: number;
  headers: Headers;
  body: Buffer;
}

async function call(method: string, url: string, headers: Record<string, string> = {}, body?: Buffer): Promise<Answer> {
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : new Uint8Array(body), signal: AbortSignal.timeout(15_000) });
  return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
}

/** Polls until the proxy in the container answers (or the container died). */
async function waitForProxy(container: string, url: string, probePath: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const state = await podman(['inspect', '--format', '{{.State.Status}}', container]);
    if (state.out !== 'running') throw new Error(`container is ${state.out}`);
    try {
      const res = await call('GET', `${url}${probePath}`);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no 200 from ${url}${probePath} within 30 s`);
    await delay(100);
  }
}

let swift: SwiftCluster | undefined;
let redis: RedisServer | undefined;
const container = `sqp-verify-${process.pid}`;
let containerStarted = false;
const swiftContainer = `sqp-verify-swift-${process.pid}`;
let swiftContainerStarted = false;
let swiftVolumeCreated = false;
// The fixed ports docker/swift/start.sh uses (on the host, with host networking).
const SWIFT_IMAGE_PORTS = [8080, 6200, 6201, 6202, 11211];
const SWIFT_IMAGE_URL = 'http://127.0.0.1:8080';

async function assertPortsFree(ports: number[]): Promise<void> {
  for (const port of ports) {
    await new Promise<void>((resolve, reject) => {
      const server = net.createServer();
      server.once('error', () => reject(new Error(`127.0.0.1:${port} is taken; the Swift image needs it (host network)`)));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
    });
  }
}

/** Until Swift in the container authenticates and takes a container PUT (the backends start after the proxy). */
async function waitForSwiftContainer(user: { account: string; user: string; key: string }): Promise<void> {
  const deadline = Date.now() + 60_000;
  let problem = 'no answer';
  for (;;) {
    const state = await podman(['inspect', '--format', '{{.State.Status}}', swiftContainer]);
    if (state.out !== 'running') throw new Error(`the Swift container is ${state.out}`);
    try {
      const auth = await call('GET', `${SWIFT_IMAGE_URL}/auth/v1.0`, { 'X-Auth-User': `${user.account}:${user.user}`, 'X-Auth-Key': user.key });
      const token = auth.headers.get('x-auth-token');
      const storage = auth.headers.get('x-storage-url');
      if (auth.status === 200 && token && storage) {
        const probe = `${storage}/verify-image-probe`;
        const put = await call('PUT', probe, { 'X-Auth-Token': token });
        await call('DELETE', probe, { 'X-Auth-Token': token });
        if (put.status === 201 || put.status === 202) return;
        problem = `probe container PUT answered ${put.status}`;
      } else {
        problem = `auth answered ${auth.status}`;
      }
    } catch (error) {
      problem = (error as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`Swift container not ready after 60 s: ${problem}`);
    await delay(250);
  }
}

async function main(): Promise<void> {
  const composeConfig = loadConfig(COMPOSE_CONFIG); // fails here, not in the container, if it does not load
  const tester = composeConfig.users.find((u) => u.groups.includes('.admin') && u.account === 'test');
  if (!tester) throw new Error(`${COMPOSE_CONFIG} has no .admin user of account test`);
  const containerLimit = composeConfig.quota.levels.byLevel.get('default')?.container_count;
  if (containerLimit === undefined || containerLimit > 50) throw new Error('the compose config needs a small container_count default');

  const swiftImage = opts['swift-image'];
  // The upstream the container is told to use; undefined: the config's own (http://swift:8080).
  let upstream = opts.upstream;
  if (swiftImage) {
    if (upstream) throw new Error('--swift-image and --upstream exclude each other');
    await assertPortsFree(SWIFT_IMAGE_PORTS);
    say(`starting Swift from ${swiftImage}`);
    await podman(['volume', 'create', swiftContainer]);
    swiftVolumeCreated = true;
    await podman([
      'run', '-d', '--name', swiftContainer, ...PODMAN_RUN_FLAGS, '--network', 'host',
      '-e', 'SWIFT_PROXY_BIND_IP=127.0.0.1', '-v', `${swiftContainer}:/srv`, swiftImage,
    ]);
    swiftContainerStarted = true;
    await waitForSwiftContainer(tester);
    const health = await podman(['healthcheck', 'run', swiftContainer], { allowFail: true });
    check(health.code === 0, "the Swift image's HEALTHCHECK passes and Swift takes writes", health.out);
  } else if (!upstream) {
    say('starting a single-node Swift (test/swift/cluster.ts)');
    swift = await startSwift({ log: say });
    upstream = swift.url;
  }
  const expectedUpstream = upstream ? new URL(upstream).origin : composeConfig.upstream.origin;
  const port = await freePort();
  const listen = `127.0.0.1:${port}`;
  const url = `http://${listen}`;
  // The ops listener as compose runs it (its address is the container's own there; the host's here).
  const ops = composeConfig.opsBind;
  if (ops) await assertPortsFree([ops.port]);
  const opsUrl = ops ? `http://127.0.0.1:${ops.port}` : url;

  const runArgs = [
    'run', '-d', '--name', container, ...PODMAN_RUN_FLAGS, '--network', 'host',
    '-v', `${COMPOSE_CONFIG}:${CONFIG_IN_IMAGE}:ro`,
  ];
  if (composeConfig.ledger.kind === 'redis') {
    // The compose config's workers share the compose Redis: here a loopback one, named by the environment.
    redis = await startRedis();
    say(`Redis for the ledger on ${redis.url} (${composeConfig.workers} workers)`);
    runArgs.push('-e', `SWIFT_QUOTA_PROXY_LEDGER=${redis.url}`);
  }
  if (swiftImage) runArgs.push('--add-host', `${composeConfig.upstream.hostname}:127.0.0.1`);
  if (opts['cli-flags']) {
    runArgs.push(image, 'node', 'dist/src/main.js', '--config', CONFIG_IN_IMAGE, '--listen', listen);
    if (upstream) runArgs.push('--upstream', upstream);
  } else {
    // The image's own CMD; it finds the config through SWIFT_QUOTA_PROXY_CONFIG, set in the image.
    runArgs.push('-e', `SWIFT_QUOTA_PROXY_LISTEN=${listen}`);
    if (upstream) runArgs.push('-e', `SWIFT_QUOTA_PROXY_UPSTREAM=${upstream}`);
    runArgs.push(image);
  }
  say(`podman ${runArgs.join(' ')}`);
  await podman(runArgs);
  containerStarted = true;
  await waitForProxy(container, url, opts['no-healthz'] ? composeConfig.metricsPath : '/healthz');
  const logs = (await podman(['logs', container])).out;
  check(logs.includes(`listening on ${url}`) && logs.includes(expectedUpstream), 'container logs its listen address and upstream', logs);
  if (ops) check(!logs.includes('no ops_bind_port'), 'no start-up warning about /metrics and /readyz on the client port', logs);

  const uid = await podman(['exec', container, 'node', '-e', 'process.stdout.write(String(process.getuid()))']);
  check(uid.out === EXPECTED_UID, `the proxy runs as uid ${EXPECTED_UID}`, uid.out);

  if (!opts['no-healthz']) {
    const healthz = await call('GET', `${url}/healthz`);
    check(healthz.status === 200 && healthz.body.toString().trim() === 'ok', 'GET /healthz answers 200 ok', `${healthz.status} ${healthz.body}`);
    const readyz = await call('GET', `${opsUrl}/readyz`);
    check(readyz.status === 200 && readyz.body.toString().trim() === 'ready', `GET /readyz answers 200 (config loaded, Swift healthy)${ops ? ' on the ops port' : ''}`, `${readyz.status} ${readyz.body}`);
    if (ops) {
      const opsHealthz = await call('GET', `${opsUrl}/healthz`);
      check(opsHealthz.status === 200, 'GET /healthz answers 200 on the ops port too', `${opsHealthz.status} ${opsHealthz.body}`);
      const clientReadyz = await call('GET', `${url}/readyz`);
      check(clientReadyz.body.toString().trim() !== 'ready', 'the client port does not answer /readyz itself (it goes to Swift)', `${clientReadyz.status} ${clientReadyz.body}`);
    }
    const health = await podman(['healthcheck', 'run', container], { allowFail: true });
    check(health.code === 0, "the image's HEALTHCHECK passes (podman healthcheck run)", health.out);
  } else {
    say('skipped /healthz, /readyz and HEALTHCHECK (--no-healthz)');
  }

  const login = async () => {
    const auth = await call('GET', `${url}/auth/v1.0`, { 'X-Auth-User': `${tester.account}:${tester.user}`, 'X-Auth-Key': tester.key });
    return { status: auth.status, token: auth.headers.get('x-auth-token'), storageUrl: auth.headers.get('x-storage-url') };
  };
  const { status, token, storageUrl } = await login();
  check(status === 200 && !!token && !!storageUrl, `tempauth login as ${tester.account}:${tester.user} through the container`, String(status));
  check(storageUrl === `${url}/v1/AUTH_${tester.account}`, 'the storage URL points at the proxy', String(storageUrl));
  const h = { 'X-Auth-Token': token! };

  const prefix = `verify-${randomBytes(3).toString('hex')}`;
  const containers = Array.from({ length: containerLimit + 1 }, (_, i) => `${storageUrl}/${prefix}-${i + 1}`);
  const object = `${containers[0]}/hello.bin`;
  const payload = randomBytes(256 * 1024);
  try {
    const put = await call('PUT', containers[0]!, h);
    check(put.status === 201, 'PUT container', String(put.status));
    const putObject = await call('PUT', object, { ...h, 'Content-Type': 'application/octet-stream' }, payload);
    check(putObject.status === 201, `PUT object (${payload.length} bytes)`, String(putObject.status));
    const get = await call('GET', object, h);
    check(get.status === 200 && get.body.equals(payload), 'GET object returns the same bytes', `${get.status}, ${get.body.length} bytes`);
    if (swiftImage) {
      say('podman restart of the Swift container (volume kept)');
      await podman(['restart', '--time', '10', swiftContainer]);
      await waitForSwiftContainer(tester);
      // tempauth keeps tokens in memcached, which restarted with the container: log in again.
      const relogin = await login();
      if (relogin.status !== 200 || !relogin.token) throw new Error(`login after the Swift restart answered ${relogin.status}`);
      h['X-Auth-Token'] = relogin.token;
      const again = await call('GET', object, h);
      check(again.status === 200 && again.body.equals(payload), 'after a Swift restart the object reads back the same', `${again.status}`);
    }
    const head = await call('HEAD', containers[0]!, h);
    check(
      head.headers.get('x-container-object-count') === '1' && head.headers.get('x-container-quota-level') === 'default',
      'HEAD container shows usage and the quota level',
      JSON.stringify(Object.fromEntries(head.headers)),
    );
    for (const c of containers.slice(1, containerLimit)) {
      const res = await call('PUT', c, h);
      if (res.status !== 201) throw new Error(`PUT ${c} answered ${res.status}`);
    }
    const refused = await call('PUT', containers[containerLimit]!, h);
    check(
      refused.status === 403 && refused.headers.get('x-quota-exceeded') === 'container_count',
      `container ${containerLimit + 1} is refused (container_count default ${containerLimit})`,
      `${refused.status} ${refused.body}`,
    );
  } finally {
    await call('DELETE', object, h).catch(() => undefined);
    for (const c of containers) await call('DELETE', c, h).catch(() => undefined);
  }

  const metrics = await call('GET', `${opsUrl}${composeConfig.metricsPath}`);
  const text = metrics.body.toString();
  check(
    metrics.status === 200 &&
      /swift_quota_proxy_requests_total\{method="PUT",status_class="2xx"\} \d+/.test(text) &&
      /swift_quota_proxy_quota_rejections_total\{kind="container_count",level="default"\} 1\b/.test(text),
    `GET ${composeConfig.metricsPath}${ops ? ' on the ops port' : ''} counts the requests and the refusal`,
    text.slice(0, 500),
  );
  if (ops) {
    const onClientPort = await call('GET', `${url}${composeConfig.metricsPath}`);
    check(!onClientPort.body.toString().includes('swift_quota_proxy_'), `the client port does not serve ${composeConfig.metricsPath}`, `${onClientPort.status} ${onClientPort.body.toString().slice(0, 200)}`);
  }

  say('podman stop (SIGTERM)');
  await podman(['stop', '--time', '10', container]);
  const exit = await podman(['inspect', '--format', '{{.State.ExitCode}}', container]);
  check(exit.out === '0', 'the proxy exits 0 on SIGTERM', exit.out);
  const stopLogs = (await podman(['logs', container])).out;
  check(/SIGTERM/.test(stopLogs), 'it logged the SIGTERM drain', stopLogs.split('\n').slice(-3).join('\n'));

  if (swiftImage) {
    await podman(['stop', '--time', '15', swiftContainer]);
    const swiftExit = await podman(['inspect', '--format', '{{.State.ExitCode}}', swiftContainer]);
    check(swiftExit.out === '0', 'the Swift container stops cleanly on SIGTERM', swiftExit.out);
  }
}

let failed = false;
try {
  await main();
  say(`all ${checks} checks passed`);
} catch (error) {
  failed = true;
  process.stderr.write(`[verify-image ${elapsed()}] ${(error as Error).message}\n`);
  if (containerStarted) {
    const logs = await podman(['logs', '--tail', '40', container], { allowFail: true });
    process.stderr.write(`--- podman logs ${container} ---\n${logs.out}\n`);
  }
} finally {
  if (containerStarted) await podman(['rm', '-f', '-t', '2', container], { allowFail: true });
  if (failed && swiftContainerStarted) {
    const logs = await podman(['logs', '--tail', '40', swiftContainer], { allowFail: true });
    process.stderr.write(`--- podman logs ${swiftContainer} ---\n${logs.out}\n`);
  }
  if (swiftContainerStarted) await podman(['rm', '-f', '-t', '2', swiftContainer], { allowFail: true });
  if (swiftVolumeCreated) await podman(['volume', 'rm', '-f', swiftContainer], { allowFail: true });
  await swift?.stop();
  await redis?.stop();
}
process.exit(failed ? 1 : 0);
