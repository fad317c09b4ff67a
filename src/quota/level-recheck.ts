/**
 * A scope's soft-limit episodes are judged by the limits of the level its account holds now. The watch reads
 * the level afresh before it reports a grace period that ended with no request to notice (another proxy or
 * worker may have changed it, or no check has run since), and right after a level change passed through
 * this proxy.
 *
 * What a level change does to an episode (decided for issue 23; docs/operations.md, "Level changes and soft
 * limits"): an episode is usage over *a* soft limit, measured from when it began. Under the new level's soft
 * limit usage is either back at or under it (the episode ends: back_below_soft, with the new level and
 * limit) or still over it (the episode goes on from when it began: the grace period the tenant was told of
 * neither restarts nor shortens; grace_expired, when it comes, names the new level and limit). Usage over the
 * new soft limit only starts an episode then, with the grace period from then.
 */
import type { Limits } from '../config/quota-levels.js';
import type { Scope } from './watch-scope.js';

export interface LevelLimits {
  readonly level: string;
  readonly limits: Limits;
  readonly soft: Limits;
}

/** The account's level now, read afresh (not from a cache that may predate a change). */
export type LevelSource = (account: string) => Promise<LevelLimits>;

/** The scope under `level`: itself when nothing changed. */
export function withLevel(scope: Scope, level: LevelLimits): Scope {
  if (scope.level === level.level && scope.limits === level.limits && scope.soft === level.soft) return scope;
  return { ...scope, level: level.level, limits: level.limits, soft: level.soft };
}
