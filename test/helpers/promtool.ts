/**
 * Prometheus's promtool, for the tests that hold the proxy's metrics and the shipped alert rules to what
 * Prometheus itself accepts. It comes with Debian's `prometheus` package, installed (as root) when missing, as
 * test/swift/cluster.ts installs Swift.
 */
import { spawn } from 'node:child_process';
import { installMissingPackages } from '../swift/cluster.js';
import { runCommand, type CommandResult } from '../swift/run-command.js';

export const PROMTOOL = '/usr/bin/promtool';
let installing: Promise<void> | undefined;

/** Installs Debian's prometheus package (for promtool) if promtool is missing. */
export function ensurePromtool(): Promise<void> {
  // Only promtool is wanted: the server the package also brings is never started by the tests.
  installing ??= installMissingPackages([{ pkg: 'prometheus', file: PROMTOOL }], 'promtool').catch((error: unknown) => {
    installing = undefined; // let a later call try again
    throw error;
  });
  return installing;
}

/** Runs promtool (installing it first if need be), `stdin` written to it; the result whatever the exit code. */
export async function promtool(args: string[], options: { cwd?: string; stdin?: string } = {}): Promise<CommandResult> {
  await ensurePromtool();
  if (options.stdin === undefined) return runCommand(PROMTOOL, args, { ...(options.cwd ? { cwd: options.cwd } : {}), timeoutMs: 60_000 });
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, args, { cwd: options.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => chunks.push(chunk));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${PROMTOOL}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output: Buffer.concat(chunks).toString('utf8'), timedOut: signal === 'SIGKILL' });
    });
    child.stdin.end(options.stdin);
  });
}
