/**
 * The proxy's command line as a child process, for tests that need a process of its own (signals, kill -9,
 * workers).
 */
import { spawn, type ChildProcess } from 'node:child_process';

export const MAIN = ['--import', 'tsx', 'src/main.ts'];

export interface StartedCli {
  child: ChildProcess;
  url: string;
  /** Everything it wrote to stdout and stderr so far. */
  output: () => string;
}

/** Starts the CLI and waits for its "listening" line. */
export function startCli(args: string[], env: Record<string, string> = {}): Promise<StartedCli> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let output = '';
    const deadline = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`no "listening on" line within 30 s:\n${output}`));
    }, 30_000).unref();
    const onData = (data: Buffer) => {
      output += data.toString();
      const match = /listening on (http:\/\/[^,\s"]+)/.exec(output);
      if (match) {
        clearTimeout(deadline); // a process that outlives 30 s (workers, long tests) is not killed then
        resolve({ child, url: match[1]!, output: () => output });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.on('exit', (code) => reject(new Error(`exited ${code} before listening:\n${output}`)));
  });
}
