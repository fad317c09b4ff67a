/**
 * The generation of the Redis ledger this process is in (the generation rule: redis.ts and redis-scripts.ts),
 * and how a ledger script runs in it: refused for an old generation (GEN), the script runs once more in the
 * generation Redis has now, after this process has put back there what it holds.
 */
import { randomBytes } from 'node:crypto';
import { LedgerUnavailableError } from './ledger.js';
import type { LedgerScripts } from './redis-scripts.js';

export interface LedgerGenerationOptions {
  scripts: Pick<LedgerScripts, 'ledgerJoin'>;
  /** `<prefix>gen`. */
  genKey: string;
  /** Redis no longer has the generation this process was in: what it cached from that one goes. */
  onLeft(): void;
  /** A generation joined in place of one Redis refused: the reservations and pins this process holds go back. */
  putBack(gen: string): Promise<void>;
  onError?(error: unknown, what: string): void;
}

export class LedgerGeneration {
  private gen: string | undefined;
  /** The generation last joined (kept while `gen` is unset for a rejoin): to tell a new one apart. */
  private lastGen: string | undefined;
  private joining: Promise<string> | undefined;

  constructor(private readonly options: LedgerGenerationOptions) {}

  /** The generation this process is in; undefined before it joined one, and while it joins a new one. */
  get joined(): string | undefined {
    return this.gen;
  }

  /** The generation this process is in, joining one first if it is in none. */
  current(): Promise<string> {
    if (this.gen !== undefined) return Promise.resolve(this.gen);
    this.joining ??= this.join().finally(() => {
      this.joining = undefined;
    });
    return this.joining;
  }

  /** Runs a script with the current generation, joining a new one once if Redis lost its data. */
  async run<T>(call: (gen: string) => Promise<T>): Promise<T> {
    let gen: string;
    try {
      gen = await this.current();
    } catch (error) {
      throw unavailable(error);
    }
    try {
      return await call(gen);
    } catch (error) {
      if (!isGenError(error)) throw unavailable(error);
    }
    try {
      return await call(await this.rejoin(gen));
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** Adopts the generation of the Redis primary now answering, starting one if it has none of its own (JOIN). */
  private async join(): Promise<string> {
    const gen = await this.options.scripts.ledgerJoin(this.options.genKey, randomBytes(8).toString('hex'));
    const previous = this.lastGen;
    this.gen = this.lastGen = gen;
    if (previous !== undefined && previous !== gen) {
      this.options.onError?.(new Error('the ledger lost its data or its primary changed (failover): starting a new generation from Swift'), 'generation');
    }
    return gen;
  }

  /**
   * Redis has another generation than ours (it lost its data, or another primary answers): readings go, our
   * reservations and pins go back.
   */
  private async rejoin(stale: string): Promise<string> {
    if (this.gen === stale) {
      this.gen = undefined;
      this.options.onLeft();
    }
    const gen = await this.current();
    await this.options.putBack(gen);
    return gen;
  }
}

/** Whether a script refused the generation it was sent with. */
export function isGenError(error: unknown): boolean {
  return error instanceof Error && /\bGEN$/.test(error.message);
}

function unavailable(error: unknown): Error {
  if (error instanceof LedgerUnavailableError) return error;
  return new LedgerUnavailableError(`the usage ledger (Redis) did not answer: ${(error as Error)?.message ?? String(error)}`, { cause: error });
}
