/**
 * The Swift an integration test talks to. `npm test` (test/run.ts) starts one Swift for the whole run and
 * passes its URL in SWIFT_URL; a test file run on its own starts its own, stopped when the process exits.
 */
import { startSwift } from '../swift/cluster.js';

let shared: Promise<string> | undefined;

export function swiftUrl(): Promise<string> {
  const fromRunner = process.env.SWIFT_URL;
  if (fromRunner) return Promise.resolve(fromRunner);
  // Stopped by cluster.ts's exit handler when the test process ends.
  shared ??= startSwift().then((cluster) => cluster.url);
  return shared;
}
