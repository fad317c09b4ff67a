/**
 * `npm run demo`: a local single-node Swift with swift-quota-proxy in front of it, for trying things out.
 * Installs Swift from Debian if it is missing (as root), starts it on free loopback ports, starts the proxy
 * command on 127.0.0.1:8081 (DEMO_PORT to change), prints how to use it, and stops both on Ctrl-C.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startSwift } from './cluster.js';
import { proxyConfigText } from '../helpers/proxy.js';

// The levels of the StackLab article, with a small object_count so that limits are quick to reach.
const DEMO_LEVELS = {
  container_count: { default: 5, L1: 10, L2: 25 },
  object_count: { default: 20, L1: 500000, L2: 1000000 },
  container_usage: { default: 2147483648, L1: 10737418240, L2: 53687091200 },
};

const port = Number(process.env.DEMO_PORT ?? 8081);
const swift = await startSwift({ log: (line) => console.log(line) });
const dir = await mkdtemp(join(tmpdir(), 'swift-quota-proxy-demo-'));
const configFile = join(dir, 'proxy-server.conf');
// Soft limits at 80 % of every hard limit, and quota events printed as JSON lines with the log.
const config = proxyConfigText({
  upstream: swift.url,
  port,
  quota: DEMO_LEVELS,
  extraQuotaLines: ['soft_ratio = 0.8'],
  extraSections: ['[notify:log]', 'type = stdout'],
});
await writeFile(configFile, config.replace('log_level = warn', 'log_level = info'));

const proxy = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--config', configFile], { stdio: ['ignore', 'inherit', 'inherit'] });

async function stop(code: number): Promise<never> {
  proxy.kill('SIGTERM');
  await swift.stop();
  await rm(dir, { recursive: true, force: true });
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));
proxy.on('exit', (code) => {
  console.error(`swift-quota-proxy exited with ${code}`);
  void stop(code ?? 1);
});

const url = `http://127.0.0.1:${port}`;
console.log(`
Swift (direct):           ${swift.url}
swift-quota-proxy:        ${url}   (metrics: ${url}/metrics)
config:                   ${configFile}
levels: default = 5 containers, 20 objects per container; L1 and L2 as in the StackLab article;
        soft limits at 80 % of each (quota events are printed here as JSON lines)

Try it (users: test:tester/testing, reseller:reseller/reseller, qa1:admin/qa1pass ...):
  swift -A ${url}/auth/v1.0 -U test:tester -K testing stat
  swift -A ${url}/auth/v1.0 -U test:tester -K testing upload demo ${configFile}
  curl -i ${url}/auth/v1.0 -H 'X-Storage-User: reseller:reseller' -H 'X-Storage-Pass: reseller'
  curl -i -X POST ${url}/v1/AUTH_test -H 'X-Auth-Token: <reseller token>' -H 'X-Account-Meta-Quota: L1'
  curl -s ${url}/metrics | grep swift_quota_proxy_quota
  curl -s ${url}/quota/report?format=text -H 'X-Auth-Token: <token>'
  node --import tsx src/main.ts report --config ${configFile}

Ctrl-C stops the proxy and Swift.`);
