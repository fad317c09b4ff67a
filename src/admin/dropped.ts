/**
 * A level that accounts still hold is never dropped without a word: the accounts whose level was set through the
 * proxy or `accounts set` (admin/accounts.ts's registry) holding a level the configuration neither has nor maps
 * (`retired_levels = old:new`) are counted by level. `--check-config` and a reload (SIGHUP) refuse such a file
 * unless `allow_dropped_levels = true`; start-up warns.
 */
import type { Config } from '../config/load.js';
import type { SwiftClient } from '../swift/client.js';
import { readRegistry } from './accounts.js';

/**
 * Registered accounts by the unconfigured, unmapped level they were given (only the levels in `among`, when
 * given): read from the registry's listing, so a check of any number of accounts costs a GET per 10,000.
 */
export async function droppedLevels(config: Config, swift: SwiftClient, among?: ReadonlySet<string>): Promise<Map<string, string[]>> {
  const { levels, retiredLevels } = config.quota;
  const dropped = new Map<string, string[]>();
  for (const { account, level } of await readRegistry(swift)) {
    if (level === undefined || levels.byLevel.has(level) || retiredLevels.has(level) || (among && !among.has(level))) continue;
    dropped.set(level, [...(dropped.get(level) ?? []), account]);
  }
  return dropped;
}

/** One line per dropped level: how many accounts (the first few named), and what to do. */
export function droppedMessage(dropped: ReadonlyMap<string, readonly string[]>): string {
  return [...dropped]
    .map(([level, accounts]) => {
      const named = accounts.slice(0, 5).join(', ') + (accounts.length > 5 ? ', ...' : '');
      return `${accounts.length} known account${accounts.length === 1 ? '' : 's'} hold${accounts.length === 1 ? 's' : ''} level "${level}", which the file lacks (${named}): they would be held to "default"; map it with retired_levels = ${level}:<level>, or set allow_dropped_levels = true`;
    })
    .join('\n');
}

/** The levels `next` drops of those `running` has (a reload's question; nothing to read when none). */
export function levelsDropped(running: Config, next: Config): Set<string> {
  return new Set(running.quota.levels.names.filter((level) => !next.quota.levels.byLevel.has(level) && !next.quota.retiredLevels.has(level)));
}
