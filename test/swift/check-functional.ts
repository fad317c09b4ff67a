// Runs Swift's own functional tests directly against a fresh single-node Swift, as a baseline for the same suite
// run through the quota proxy. Usage: node --import tsx test/swift/check-functional.ts
import { startSwift } from './cluster.js';
import { ensureFunctionalSuite, runFunctionalSuite } from './functional.js';

const [treeDir, swift] = await Promise.all([ensureFunctionalSuite(), startSwift({ log: console.log })]);
try {
  const { hostname, port } = new URL(swift.url);
  const result = await runFunctionalSuite({ treeDir, authHost: hostname, authPort: Number(port), label: 'direct' });
  for (const failure of result.failures) console.log(failure);
  const { durationSeconds, skipped, errors } = result;
  console.log(`direct against Swift in ${durationSeconds.toFixed(0)} s, ${skipped} skipped, ${errors} errors`);
  console.log(`${result.passed} passed, ${result.failed} failed`);
  process.exitCode = result.failed + result.errors > 0 ? 1 : 0;
} finally {
  await swift.stop();
}
