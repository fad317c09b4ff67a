/**
 * The `quota = {...}` JSON of `[filter:quota]`: kind → level → limit, as in the StackLab article.
 * Turned around into level → kind → limit, which is how the proxy looks limits up.
 */

export const QUOTA_KINDS = ['container_count', 'object_count', 'container_usage', 'account_object_count', 'account_usage'] as const;
export type QuotaKind = (typeof QUOTA_KINDS)[number];

/**
 * The kinds that cap an account's total across all its containers. Optional: a level without them is not
 * limited in total, so the three per-container kinds alone keep working as before.
 */
export const ACCOUNT_WIDE_KINDS: readonly QuotaKind[] = ['account_object_count', 'account_usage'];
/** The kinds measured in bytes; the others count objects or containers. */
export const BYTE_KINDS: ReadonlySet<QuotaKind> = new Set(['container_usage', 'account_usage']);
/** Whether `kind` is measured in bytes (else in objects or containers). */
export const inBytes = (kind: QuotaKind): boolean => BYTE_KINDS.has(kind);

export const DEFAULT_LEVEL = 'default';

/** A level's limits; a kind the operator did not configure is absent and not enforced. */
export type Limits = Readonly<Partial<Record<QuotaKind, number>>>;

export interface QuotaLevels {
  readonly names: readonly string[];
  readonly byLevel: ReadonlyMap<string, Limits>;
  /**
   * Account-wide limits per storage policy (`"account_usage:gold"`), by level, then by the policy's name in lower
   * case (Swift compares policy names without case). Only the account-wide kinds; a level without an entry for a
   * policy is not limited in it.
   */
  readonly byPolicy: ReadonlyMap<string, ReadonlyMap<string, Limits>>;
  /** The policies `byPolicy` names, in lower case. */
  readonly policies: readonly string[];
}

/**
 * A storage policy's name as Swift allows it (storage_policy.py: letters, digits and dashes), after the kind and a
 * colon: `account_usage:gold` is the account's bytes in containers of policy "gold".
 */
const POLICY_KIND = /^(account_usage|account_object_count):([A-Za-z0-9-]+)$/;

/** The account-wide kind and policy of a `kind:policy` key of `quota`, or undefined for any other key. */
export function policyKindOf(key: string): { kind: QuotaKind; policy: string } | undefined {
  const match = POLICY_KIND.exec(key);
  return match ? { kind: match[1] as QuotaKind, policy: match[2]!.toLowerCase() } : undefined;
}

export interface LevelsReporter {
  /** Stops start-up; lineOffset counts lines from the `quota =` line. */
  fail(reason: string, lineOffset?: number): never;
  warn(message: string, lineOffset?: number): void;
}

// The article was typeset: its JSON came out with curly quotes and primes (“L1″: 10). Those are never valid
// JSON, so mapping them to ASCII cannot change the meaning of a config that was valid; we do it and warn.
const TYPOGRAPHIC_DOUBLE = /[\u201C\u201D\u201E\u201F\u2033\u2036\u00AB\u00BB]/g;
const TYPOGRAPHIC_SINGLE = /[\u2018\u2019\u201A\u201B\u2032\u2035]/g;

function lineOffsetAt(text: string, position: number): number {
  let lines = 0;
  for (let i = 0; i < position && i < text.length; i++) if (text[i] === '\n') lines++;
  return lines;
}

function normaliseQuotes(text: string, report: LevelsReporter): string {
  const lines = text.split('\n');
  const touched: number[] = [];
  const fixed = lines.map((line, offset) => {
    const out = line.replace(TYPOGRAPHIC_DOUBLE, '"').replace(TYPOGRAPHIC_SINGLE, "'");
    if (out !== line) touched.push(offset);
    return out;
  });
  if (touched.length > 0) {
    report.warn(
      `typographic quotes (“ ” ″ ′) replaced by ASCII quotes on ${touched.length} line(s); please fix the file`,
      touched[0],
    );
  }
  return fixed.join('\n');
}

function parseJson(text: string, report: LevelsReporter): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const position = /position (\d+)/.exec(message);
    const offset = position ? lineOffsetAt(text, Number(position[1])) : 0;
    return report.fail(`is not valid JSON: ${message}`, offset);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Line offset of the first `"name"` in the text, to point errors at the right line of a long block. */
function offsetOf(text: string, name: string): number {
  const index = text.indexOf(`"${name}"`);
  return index < 0 ? 0 : lineOffsetAt(text, index);
}

/** Reads a `kind → level → limit` JSON block: the shape both `quota` and `soft_quota` use. */
type KindLevelTable = Map<QuotaKind, Map<string, number>>;

function parseKindLevelTable(raw: string, report: LevelsReporter, what: string): { perKind: KindLevelTable; perPolicy: Map<string, KindLevelTable>; text: string } {
  const text = normaliseQuotes(raw, report);
  const json = parseJson(text, report);
  if (!isPlainObject(json)) report.fail(`must be a JSON object mapping quota kinds to ${what}`);

  const perKind: KindLevelTable = new Map();
  const perPolicy = new Map<string, KindLevelTable>();
  for (const [kind, levels] of Object.entries(json)) {
    const inPolicy = policyKindOf(kind);
    if (!(QUOTA_KINDS as readonly string[]).includes(kind) && !inPolicy) {
      report.fail(`unknown quota kind "${kind}" (known: ${QUOTA_KINDS.join(', ')}, and account_usage:<policy>, account_object_count:<policy>)`, offsetOf(text, kind));
    }
    if (!isPlainObject(levels)) report.fail(`${kind} must be an object of level: limit`, offsetOf(text, kind));
    const limits = new Map<string, number>();
    for (const [level, limit] of Object.entries(levels)) {
      if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 0) {
        report.fail(`level "${level}" of ${kind} must be a whole number >= 0, got ${JSON.stringify(limit)}`, offsetOf(text, kind));
      }
      limits.set(level, limit);
    }
    if (!inPolicy) perKind.set(kind as QuotaKind, limits);
    else {
      const table = perPolicy.get(inPolicy.policy) ?? new Map<QuotaKind, Map<string, number>>();
      if (table.has(inPolicy.kind)) report.fail(`${kind} names policy "${inPolicy.policy}" of ${inPolicy.kind} twice (policy names are compared without case)`, offsetOf(text, kind));
      perPolicy.set(inPolicy.policy, table.set(inPolicy.kind, limits));
    }
  }
  return { perKind, perPolicy, text };
}

/** Level → kind → limit of a kind → level → limit table, a missing level given the default's (with a warning). */
function byLevelOf(perKind: KindLevelTable, names: readonly string[], report: LevelsReporter, text: string, label: (kind: QuotaKind) => string = (kind) => kind): Map<string, Limits> {
  const byLevel = new Map<string, Limits>();
  for (const level of names) {
    const limits: Partial<Record<QuotaKind, number>> = {};
    for (const [kind, levels] of perKind) {
      const own = levels.get(level);
      if (own === undefined) {
        report.warn(`level "${level}" has no ${label(kind)} limit: it gets the default level's ${levels.get(DEFAULT_LEVEL)}`, offsetOf(text, label(kind)));
      }
      limits[kind] = own ?? levels.get(DEFAULT_LEVEL)!;
    }
    byLevel.set(level, Object.freeze(limits));
  }
  return byLevel;
}

export function parseQuotaLevels(raw: string, report: LevelsReporter): QuotaLevels {
  const { perKind, perPolicy, text } = parseKindLevelTable(raw, report, 'levels');
  const tables: Array<[string, KindLevelTable]> = [['', perKind], ...perPolicy];
  for (const [policy, table] of tables) {
    for (const [kind, limits] of table) {
      const name = policy === '' ? kind : `${kind}:${policy}`;
      if (!limits.has(DEFAULT_LEVEL)) report.fail(`${name} has no "${DEFAULT_LEVEL}" level`, offsetOf(text, name));
    }
  }
  if (perKind.size === 0 && perPolicy.size === 0) report.fail(`must configure at least one of ${QUOTA_KINDS.join(', ')}`);
  for (const kind of QUOTA_KINDS) {
    if (!perKind.has(kind) && !ACCOUNT_WIDE_KINDS.includes(kind)) report.warn(`${kind} is not configured: it is not enforced`);
  }

  const names = [...new Set(tables.flatMap(([, table]) => [...table.values()].flatMap((limits) => [...limits.keys()])))];
  const byLevel = byLevelOf(perKind, names, report, text);
  const byPolicy = new Map<string, Map<string, Limits>>(names.map((level) => [level, new Map()]));
  for (const [policy, table] of perPolicy) {
    for (const [level, limits] of byLevelOf(table, names, report, text, (kind) => `${kind}:${policy}`)) byPolicy.get(level)!.set(policy, limits);
  }
  return Object.freeze({ names: Object.freeze(names), byLevel, byPolicy, policies: Object.freeze([...perPolicy.keys()]) });
}

/**
 * Soft limits per level: an absolute limit from `soft_quota` where it names one, else `ratio` × the hard
 * limit (rounded down) when a ratio is set, else none. A soft limit above its hard limit could never warn
 * before the hard limit refuses, so it stops start-up.
 */
export function parseSoftLimits(
  raw: string | undefined,
  ratio: number | undefined,
  hard: QuotaLevels,
  report: LevelsReporter,
): ReadonlyMap<string, Limits> {
  const { perKind: absolute, perPolicy, text } = raw === undefined ? { perKind: new Map<QuotaKind, Map<string, number>>(), perPolicy: new Map(), text: '' } : parseKindLevelTable(raw, report, 'soft limits');
  for (const policy of perPolicy.keys()) report.fail(`the limits of policy "${policy}" have no soft limits yet: only their hard limits are enforced`);
  for (const [kind, levels] of absolute) {
    for (const level of levels.keys()) {
      if (!hard.byLevel.has(level)) report.fail(`level "${level}" of ${kind} is not a level of quota (${hard.names.join(', ')})`, offsetOf(text, kind));
    }
  }
  const byLevel = new Map<string, Limits>();
  for (const [level, limits] of hard.byLevel) {
    const soft: Partial<Record<QuotaKind, number>> = {};
    for (const kind of QUOTA_KINDS) {
      const hardLimit = limits[kind];
      if (hardLimit === undefined) continue;
      const own = absolute.get(kind)?.get(level);
      const value = own ?? (ratio === undefined ? undefined : Math.floor(hardLimit * ratio));
      if (value === undefined) continue;
      if (value > hardLimit) {
        report.fail(`soft limit ${value} of level "${level}" for ${kind} is above its hard limit ${hardLimit}`, offsetOf(text, kind));
      }
      soft[kind] = value;
    }
    byLevel.set(level, Object.freeze(soft));
  }
  return byLevel;
}
