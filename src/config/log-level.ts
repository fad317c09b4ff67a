/**
 * `log_level` in the spellings a Swift operator writes (Swift upper-cases it and looks it up in Python's logging
 * module: DEBUG, INFO, WARNING, WARN, ERROR, CRITICAL, FATAL) and pino's own (trace ... fatal), in any case.
 */
import type { SectionReader } from './section-reader.js';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace';

export const DEFAULT_LOG_LEVEL: LogLevel = 'info';

const LEVELS: Readonly<Record<string, LogLevel>> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARNING: 'warn',
  WARN: 'warn',
  ERROR: 'error',
  CRITICAL: 'fatal',
  FATAL: 'fatal',
};

/**
 * Swift takes an unknown name silently as INFO; here it stops start-up, as any other bad value does. NOTSET is
 * refused too: on Swift's logger it means "whatever the parent logger says" (in effect Python's WARNING), which
 * no one writing it expects.
 */
export function parseLogLevel(proxy: SectionReader | undefined): LogLevel {
  const raw = proxy?.raw('log_level');
  if (raw === undefined) return DEFAULT_LOG_LEVEL;
  const level = LEVELS[raw.trim().toUpperCase()];
  if (level === undefined) {
    const hint = raw.trim().toUpperCase() === 'NOTSET' ? ' (NOTSET leaves the level to a parent logger in Python: name the level)' : '';
    return proxy!.fail('log_level', `must be DEBUG, INFO, WARNING (WARN), ERROR or CRITICAL as in Swift, or trace, debug, info, warn, error, fatal, in any case; got "${raw}"${hint}`);
  }
  return level;
}
