/**
 * What the differential checks share: a seeded PRNG, so that a failing input can be made again from its seed,
 * and a way to run many inputs through Swift's own Python code in one process (a reference script reading one
 * JSON object a line and answering one a line, in order).
 */
import { spawn } from 'node:child_process';

/** Debian's python, which has Swift's modules (one earlier on PATH may not). */
export const PYTHON = '/usr/bin/python3';

/** A small deterministic PRNG (mulberry32). */
export function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every input through the reference `script`, one process for all of them; its answers, in order. */
export async function throughReference<T>(script: string, inputs: readonly object[]): Promise<T[]> {
  const child = spawn(PYTHON, [script], { stdio: ['pipe', 'pipe', 'inherit'] });
  const output: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
  const exited = new Promise<void>((resolve, reject) => child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${script} exited ${code}`)))));
  child.stdin.end(inputs.map((input) => `${JSON.stringify(input)}\n`).join(''));
  await exited;
  const lines = Buffer.concat(output).toString('utf8').trim().split('\n');
  if (lines.length !== inputs.length) throw new Error(`${script} answered ${lines.length} of ${inputs.length} inputs`);
  return lines.map((line) => JSON.parse(line) as T);
}
