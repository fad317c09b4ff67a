/**
 * The Swift an integration test talks to. `npm test` (test/run.ts) starts one Swift for the whole run and
 * passes its URL in SWIFT_URL; a test file run on its own starts its own, stopped when the process exits.
 */
import { startSwift, SWIFT_DIR_ENV } from '../swift/cluster.js';

interface SharedSwift {
  url: string;
  dns: string | undefined;
  /** The cluster's dir (rings, swift.conf), when known: the runner's cluster publishes it (cluster.ts). */
  dir: string | undefined;
}

let shared: Promise<SharedSwift> | undefined;

function swift(): Promise<SharedSwift> {
  const fromRunner = process.env.SWIFT_URL;
  if (fromRunner) return Promise.resolve({ url: fromRunner, dns: process.env.SWIFT_DNS, dir: process.env[SWIFT_DIR_ENV] });
  // Stopped by cluster.ts's exit handler when the test process ends.
  shared ??= startSwift({ hostAddressing: true }).then((cluster) => ({ url: cluster.url, dns: cluster.dns, dir: cluster.dir }));
  return shared;
}

export async function swiftUrl(): Promise<string> {
  return (await swift()).url;
}

/** The test Swift's dir: another proxy-server can serve its rings and storage servers (swift/keystone.ts). */
export async function swiftDir(): Promise<string> {
  const { dir } = await swift();
  if (!dir) throw new Error(`SWIFT_URL is set but ${SWIFT_DIR_ENV} is not: the runner's Swift did not say where its rings are`);
  return dir;
}

/** The DNS server the test Swift's cname_lookup asks (`127.0.0.1:<port>`), if it runs cname_lookup. */
export async function swiftDns(): Promise<string | undefined> {
  return (await swift()).dns;
}

let sharedRedis: Promise<string> | undefined;

/**
 * The Redis a test's shared ledgers use: `npm test` starts one for the run (REDIS_URL); a test file run on its
 * own starts its own. Tests keep apart by their own key prefixes.
 */
export function redisUrl(): Promise<string> {
  const fromRunner = process.env.REDIS_URL;
  if (fromRunner) return Promise.resolve(fromRunner);
  sharedRedis ??= import('../swift/redis.js').then(async ({ startRedis }) => (await startRedis()).url);
  return sharedRedis;
}
