/**
 * Reads a Swift `proxy-server.conf`-style file into sections of string values, remembering the line each
 * key was defined on so that later validation can point at it.
 *
 * The `ini` package does the section/key bookkeeping; this module adds what Swift configs need and `ini`
 * lacks (see shared notes): values spread over several lines (indented continuation lines, as Python's
 * configparser takes them, and JSON blocks printed flush-left, as in the StackLab article, joined until
 * their brackets balance), `#` and `;` inside values (`use = egg:swift#proxy`), `set key = value`, and
 * `%(here)s`-style interpolation. Values stay strings: `true` is not turned into a boolean here.
 */
import { dirname, resolve } from 'node:path';
import ini from 'ini';
import { ConfigError } from './errors.js';

export type IniSection = Readonly<Record<string, string>>;

export interface IniDocument {
  readonly file: string;
  readonly sections: Readonly<Record<string, IniSection>>;
  /** Line (1-based) where `[section] key` was defined; for keys inherited from [DEFAULT], the DEFAULT line. */
  lineOf(section: string, key: string): number | undefined;
  /** The section whose line defines the value `[section] key` has: the section itself, or `DEFAULT`. */
  definedIn(section: string, key: string): string | undefined;
  /** Line of the `[section]` header. */
  sectionLine(section: string): number | undefined;
  /**
   * Keys a section sets that [DEFAULT] sets too, without `set`: paste.deploy hands Swift [DEFAULT]'s value
   * (its loader skips a section's option that is also a default), and so does this reader; worth a warning.
   */
  readonly shadowedByDefault: ReadonlyArray<{ readonly section: string; readonly key: string; readonly line: number; readonly defaultLine: number }>;
}

interface RawEntry {
  section: string;
  key: string;
  value: string;
  line: number;
  /** Written `set key = value`: paste.deploy lets it override [DEFAULT]'s key of that name. */
  viaSet?: boolean;
}

export interface IniOptions {
  /**
   * Whether a section gets [DEFAULT]'s keys. In Swift every section does (ConfigParser's defaults, paste.deploy's
   * global_conf); a program reading the same file for itself may keep [DEFAULT], which is Swift's, out of its own
   * sections. Interpolation (`%(name)s`) still sees [DEFAULT]'s values everywhere, as in ConfigParser.
   */
  readonly inheritsDefault?: (section: string) => boolean;
}

const DEFAULT_SECTION = 'DEFAULT';
// As Python's ConfigParser.SECTCRE (`\[(?P<header>.+)\]`, matched at the start of the stripped line): the name
// runs to the line's last `]`, and whatever follows it (`[filter:x]  ; a note`) is ignored.
const SECTION_RE = /^\[(.+)\]/;
const KEY_VALUE_RE = /^([^=:\s][^=:]*?)\s*[=:]\s*(.*)$/;

/** Net count of opening minus closing brackets, ignoring those inside double-quoted strings. */
function bracketDepth(text: string): number {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
  }
  return depth;
}

function isComment(line: string): boolean {
  const trimmed = line.trimStart();
  return trimmed.startsWith('#') || trimmed.startsWith(';');
}

/**
 * Python's ConfigParser, which Swift and paste.deploy read this file with, is strict: a section named twice, or a
 * key set twice in one section, stops Swift with DuplicateSectionError / DuplicateOptionError. [DEFAULT] may appear
 * twice (ConfigParser keeps it apart from the other sections), its keys not. Names are compared as written
 * (Swift's loader keeps their case), and `set key` is a name of its own there.
 */
class DuplicateCheck {
  private readonly sections = new Map<string, number>();
  private readonly keys = new Map<string, number>();

  constructor(private readonly file: string) {}

  section(name: string, line: number): void {
    const first = this.sections.get(name);
    if (first !== undefined && name !== DEFAULT_SECTION) {
      throw new ConfigError(this.file, line, name, undefined, `section named twice: on line ${first} and on line ${line} (Swift's ConfigParser refuses this too: merge them into one)`);
    }
    if (first === undefined) this.sections.set(name, line);
  }

  key(section: string, name: string, key: string, line: number): void {
    const id = `${section}\0${name}`;
    const first = this.keys.get(id);
    if (first !== undefined) {
      throw new ConfigError(this.file, line, section, key, `set twice in [${section}]: on line ${first} and on line ${line} (Swift's ConfigParser refuses this too, and which one counts would be a guess: keep one)`);
    }
    this.keys.set(id, line);
  }
}

/** Splits the text into logical entries: one per key, continuation lines joined with '\n'. */
function readEntries(text: string, file: string): { entries: RawEntry[]; sectionLines: Map<string, number> } {
  const entries: RawEntry[] = [];
  const sectionLines = new Map<string, number>();
  const duplicates = new DuplicateCheck(file);
  let section: string | undefined;
  let open: RawEntry | undefined;
  let openDepth = 0;

  const lines = text.split(/\r?\n/);
  lines.forEach((rawLine, index) => {
    const lineNo = index + 1;
    const line = rawLine.replace(/\s+$/, '');

    // Inside an unbalanced JSON value every line belongs to it, whatever its indentation.
    if (open && openDepth > 0) {
      open.value += `\n${line.trim()}`;
      openDepth += bracketDepth(line);
      return;
    }
    if (line.trim() === '') {
      open = undefined;
      return;
    }
    if (isComment(line)) return;
    if (open && /^\s/.test(line)) {
      open.value += `\n${line.trim()}`;
      openDepth = bracketDepth(open.value);
      return;
    }
    open = undefined;

    const sectionMatch = SECTION_RE.exec(line);
    if (sectionMatch) {
      section = sectionMatch[1]!.trim();
      duplicates.section(section, lineNo);
      if (!sectionLines.has(section)) sectionLines.set(section, lineNo);
      return;
    }
    const setPrefix = /^set\s+/.exec(line)?.[0];
    const kv = KEY_VALUE_RE.exec(setPrefix ? line.slice(setPrefix.length) : line);
    if (!kv) {
      throw new ConfigError(file, lineNo, section, undefined, `cannot read "${line.trim()}": expected "key = value" or "[section]"`);
    }
    if (section === undefined) {
      throw new ConfigError(file, lineNo, undefined, kv[1], 'key outside of any [section]');
    }
    duplicates.key(section, `${setPrefix ? 'set ' : ''}${kv[1]!.trim()}`, kv[1]!.trim(), lineNo);
    open = { section, key: kv[1]!.trim(), value: kv[2]!.trim(), line: lineNo, ...(setPrefix ? { viaSet: true } : {}) };
    openDepth = bracketDepth(open.value);
    entries.push(open);
  });
  if (open && openDepth > 0) {
    throw new ConfigError(file, open.line, open.section, open.key, 'value opens a bracket that is never closed');
  }
  return { entries, sectionLines };
}

/** Re-renders the entries as plain INI that `ini` parses without mangling: every name and value quoted. */
function toPlainIni(entries: RawEntry[]): string {
  const bySection = new Map<string, RawEntry[]>();
  for (const entry of entries) {
    const list = bySection.get(entry.section) ?? [];
    list.push(entry);
    bySection.set(entry.section, list);
  }
  const out: string[] = [];
  for (const [section, list] of bySection) {
    // `ini` nests sections on unescaped dots; Swift section names are flat.
    out.push(`[${section.replaceAll('.', '\\.')}]`);
    for (const entry of list) out.push(`${JSON.stringify(entry.key)} = ${JSON.stringify(entry.value)}`);
  }
  return out.join('\n');
}

// Python configparser's MAX_INTERPOLATION_DEPTH: a value may refer to one that refers to another, and so on.
const MAX_INTERPOLATION_DEPTH = 10;

function interpolate(value: string, vars: Record<string, string>, at: RawEntry, file: string, depth = 0): string {
  if (depth > MAX_INTERPOLATION_DEPTH) {
    throw new ConfigError(file, at.line, at.section, at.key, `interpolation nested more than ${MAX_INTERPOLATION_DEPTH} deep (a value that refers to itself?)`);
  }
  return value.replace(/%(%|\(([^)]+)\)s)/g, (whole, _all: string, name: string | undefined) => {
    if (name === undefined) return '%';
    const replacement = vars[name];
    if (replacement === undefined) {
      throw new ConfigError(file, at.line, at.section, at.key, `unknown interpolation ${whole}`);
    }
    return interpolate(replacement, vars, at, file, depth + 1);
  });
}

export function parseSwiftIni(text: string, file: string, options: IniOptions = {}): IniDocument {
  const { entries, sectionLines } = readEntries(text, file);
  const parsed = ini.decode(toPlainIni(entries)) as Record<string, Record<string, unknown>>;
  const inherits = (section: string) => section !== DEFAULT_SECTION && (options.inheritsDefault?.(section) ?? true);

  // `key` and `set key` may both be in a section (ConfigParser's names differ): the later one wins.
  const byKey = new Map<string, RawEntry>();
  for (const entry of entries) byKey.set(`${entry.section}\0${entry.key}`, entry);
  const defaultEntry = (section: string, key: string) => (inherits(section) ? byKey.get(`${DEFAULT_SECTION}\0${key}`) : undefined);
  // paste.deploy's rule for a section that gets [DEFAULT]: a key [DEFAULT] sets too is [DEFAULT]'s, unless the
  // section writes `set key = value`.
  const shadowed = (section: string, own: RawEntry | undefined) =>
    own !== undefined && !own.viaSet && section !== DEFAULT_SECTION && defaultEntry(section, own.key) !== undefined;
  const entryOf = (section: string, key: string) => {
    const own = byKey.get(`${section}\0${key}`);
    return shadowed(section, own) ? defaultEntry(section, key) : (own ?? defaultEntry(section, key));
  };

  const defaults: Record<string, string> = { here: dirname(resolve(file)), __file__: resolve(file) };
  const defaultSection = parsed[DEFAULT_SECTION] ?? {};
  for (const [key, value] of Object.entries(defaultSection)) defaults[key] = String(value);

  const sections: Record<string, IniSection> = {};
  for (const [name, values] of Object.entries(parsed)) {
    const merged: Record<string, string> = inherits(name) ? { ...pickOwn(defaultSection) } : {};
    // Interpolation sees what ConfigParser's section holds: [DEFAULT], then the section's own keys (not `set`
    // ones: "set key" is a name of its own there), whichever value paste.deploy then hands Swift.
    const vars: Record<string, string> = { ...defaults };
    for (const [key, value] of Object.entries(values)) {
      const own = byKey.get(`${name}\0${key}`);
      if (!own?.viaSet) vars[key] = String(value);
      if (!shadowed(name, own)) merged[key] = String(value);
    }
    for (const [key, value] of Object.entries(merged)) {
      // A value [DEFAULT] gives is interpolated within [DEFAULT] (paste.deploy's defaults()), the section's own
      // within the section.
      const own = byKey.get(`${name}\0${key}`);
      const fromDefault = own === undefined || shadowed(name, own);
      merged[key] = interpolate(value, fromDefault ? defaults : vars, entryOf(name, key)!, file);
    }
    sections[name] = Object.freeze(merged);
  }

  const shadowedByDefault = entries
    .filter((entry) => byKey.get(`${entry.section}\0${entry.key}`) === entry && shadowed(entry.section, entry))
    .map((entry) => Object.freeze({ section: entry.section, key: entry.key, line: entry.line, defaultLine: defaultEntry(entry.section, entry.key)!.line }));
  return {
    file,
    sections: Object.freeze(sections),
    shadowedByDefault: Object.freeze(shadowedByDefault),
    lineOf: (section, key) => entryOf(section, key)?.line,
    definedIn: (section, key) => entryOf(section, key)?.section,
    sectionLine: (section) => sectionLines.get(section),
  };
}

function pickOwn(values: Record<string, unknown>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(values)) out[key] = String(value);
  return out;
}
