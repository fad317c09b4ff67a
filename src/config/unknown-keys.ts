/**
 * Refuses keys of the proxy's own sections that it does not read, naming the nearest known key.
 */
import { ConfigError } from './errors.js';
import type { IniDocument } from './ini.js';

/**
 * Stops start-up on a key of the proxy's own sections it does not read: `cache_timout = 30` would otherwise leave
 * the default in force without a word. The error names file, line and the nearest key it knows, and every other
 * unknown key after it, so one run of --check-config finds them all. Keys a Swift file puts in [DEFAULT] for
 * every section, and Swift's logging options of a filter, are Swift's own and accepted.
 */
export function rejectUnknownKeys(doc: IniDocument, knownKeys: Readonly<Record<string, readonly string[]>>): void {
  const inherited = new Set(Object.keys(doc.sections.DEFAULT ?? {}));
  const unknown: { section: string; key: string; line: number | undefined; reason: string }[] = [];
  for (const [name, known] of Object.entries(knownKeys)) {
    for (const key of Object.keys(doc.sections[name] ?? {})) {
      // Swift's own logging options (log_name, often as `set log_name = ...`, log_facility, ...) belong to any filter.
      const swiftLogging = name.startsWith('filter:') && key.startsWith('log_');
      if (known.includes(key) || inherited.has(key) || swiftLogging) continue;
      const nearest = nearestKey(key, known);
      unknown.push({ section: name, key, line: doc.lineOf(name, key), reason: `not a key of this section${nearest ? ` (did you mean "${nearest}"?)` : ''}` });
    }
  }
  if (unknown.length === 0) return;
  unknown.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  const [first, ...others] = unknown as [(typeof unknown)[number], ...typeof unknown];
  const more = others.map((u) => `\n  ${doc.file}:${u.line ?? '?'}: [${u.section}] ${u.key}: ${u.reason}`).join('');
  throw new ConfigError(doc.file, first.line, first.section, first.key, `${first.reason}${more}`);
}

/** The known key closest in spelling (Levenshtein distance at most 3), if any. */
function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: { key: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance = editDistance(key, candidate);
    if (distance <= 3 && (!best || distance < best.distance)) best = { key: candidate, distance };
  }
  return best?.key;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
