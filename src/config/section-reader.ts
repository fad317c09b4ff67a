/**
 * Typed reads of one section's values: every bad value stops start-up with file, line, section and key.
 */
import { ConfigError } from './errors.js';
import type { IniDocument, IniSection } from './ini.js';

export class SectionReader {
  constructor(
    private readonly doc: IniDocument,
    readonly name: string,
    private readonly values: IniSection,
  ) {}

  keys(): string[] {
    return Object.keys(this.values);
  }

  has(key: string): boolean {
    return this.values[key] !== undefined;
  }

  /**
   * Stops start-up at the line that set `key`. A value a Swift filter section inherited is reported in [DEFAULT],
   * where its line is, naming the section that read it.
   */
  fail(key: string | undefined, reason: string): never {
    if (key === undefined) throw new ConfigError(this.doc.file, this.doc.sectionLine(this.name), this.name, key, reason);
    const definedIn = this.doc.definedIn(this.name, key) ?? this.name;
    const inherited = definedIn === this.name ? '' : ` (inherited by [${this.name}])`;
    throw new ConfigError(this.doc.file, this.doc.lineOf(this.name, key), definedIn, key, `${reason}${inherited}`);
  }

  /** `file:line: [section] key`, as warnings name a setting. */
  place(key: string): string {
    const line = this.doc.lineOf(this.name, key);
    return `${this.doc.file}:${line ?? '?'}: [${this.doc.definedIn(this.name, key) ?? this.name}] ${key}`;
  }

  line(key: string): number | undefined {
    return this.doc.lineOf(this.name, key);
  }

  string(key: string, fallback: string): string {
    return this.values[key] ?? fallback;
  }

  raw(key: string): string | undefined {
    return this.values[key];
  }

  integer(key: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER, unit = ''): number {
    const raw = this.values[key];
    if (raw === undefined) return fallback;
    const value = Number(raw.trim());
    if (!/^-?\d+$/.test(raw.trim()) || value < min || value > max) {
      this.fail(key, `must be a whole number from ${min} to ${max}${unit ? ` (${unit})` : ''}, got "${raw}"`);
    }
    return value;
  }

  number(key: string, fallback: number, min: number, max: number): number {
    const raw = this.values[key];
    if (raw === undefined) return fallback;
    const value = Number(raw.trim());
    if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
      this.fail(key, `must be a number from ${min} to ${max}, got "${raw}"`);
    }
    return value;
  }

  /** Seconds, written as `604800`, `7d`, `12h`, `30m` or `45s`. */
  duration(key: string, fallback: number, min: number): number {
    const raw = this.values[key];
    if (raw === undefined) return fallback;
    const match = /^(\d+)\s*([smhd]?)$/i.exec(raw.trim());
    const unit = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 }[(match?.[2] ?? '').toLowerCase()] ?? 1;
    const value = match ? Number(match[1]) * unit : NaN;
    if (!match || !Number.isSafeInteger(value) || value < min) {
      this.fail(key, `must be a duration of at least ${min} s such as 604800, 7d, 12h, 30m or 45s, got "${raw}"`);
    }
    return value;
  }

  /** Bytes, written as `67108864`, `64M`, `512K` or `2G` (binary units). */
  size(key: string, fallback: number, min: number): number {
    const raw = this.values[key];
    if (raw === undefined) return fallback;
    const match = /^(\d+)\s*([kmgt]?)i?b?$/i.exec(raw.trim());
    const unit = 1024 ** ' kmgt'.indexOf((match?.[2] || ' ').toLowerCase());
    const value = match ? Number(match[1]) * unit : NaN;
    if (!match || !Number.isSafeInteger(value) || value < min) {
      this.fail(key, `must be a size of at least ${min} bytes such as 67108864, 64M or 1G, got "${raw}"`);
    }
    return value;
  }

  boolean(key: string, fallback: boolean): boolean {
    const raw = this.values[key];
    if (raw === undefined) return fallback;
    // The spellings Swift's config_true_value accepts.
    const lowered = raw.trim().toLowerCase();
    if (['true', '1', 'yes', 'on', 't', 'y'].includes(lowered)) return true;
    if (['false', '0', 'no', 'off', 'f', 'n'].includes(lowered)) return false;
    this.fail(key, `must be true or false, got "${raw}"`);
  }

  oneOf<T extends string>(key: string, fallback: T, allowed: readonly T[]): T {
    const raw = this.values[key];
    if (raw === undefined) return fallback;
    const value = raw.trim() as T;
    if (!allowed.includes(value)) this.fail(key, `must be one of ${allowed.join(', ')}, got "${raw}"`);
    return value;
  }
}

export function section(doc: IniDocument, name: string): SectionReader | undefined {
  const values = doc.sections[name];
  return values === undefined ? undefined : new SectionReader(doc, name, values);
}
