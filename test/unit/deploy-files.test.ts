/**
 * The deployment files (Dockerfile, docker/) agree with the proxy and with each other: the Grafana dashboard
 * only queries metrics the proxy really exports (read from the real registry of src/metrics.ts), through the
 * provisioned datasource, for the job and instance its variables pick, each in a unit of what it measures; the
 * compose file publishes only the proxy and Grafana and mounts the config where the image reads it; Prometheus
 * scrapes the proxy's metrics path and loads the alert rules, which promtool checks and tests
 * (alerts.test.yml); the compose proxy config loads and has the
 * swift service's users; the image's HEALTHCHECK command works. No YAML library: a small reader below takes the
 * block-style subset these files use and throws on anything else. Every checker returns a list of problems;
 * the tests also feed each one broken copies, so a check that can never fail would be noticed.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { loadConfig } from '../../src/config/load.js';
import { createMetrics } from '../../src/metrics.js';
import { LTS_MAJOR } from '../helpers/node-runtime.js';
import { promtool } from '../helpers/promtool.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const DOCKER = join(ROOT, 'docker');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');
const run = promisify(execFile);

// ---------------------------------------------------------------------------------------------------------
// A minimal YAML reader: block mappings and sequences, plain/quoted scalars, flow sequences of scalars,
// comments. Anchors, aliases, tags, block scalars, flow mappings and multi-document files are refused.
// ---------------------------------------------------------------------------------------------------------

type Yaml = string | number | boolean | null | Yaml[] | { [key: string]: Yaml };

interface Line {
  indent: number;
  text: string;
  no: number; // 1-based
}

class YamlError extends Error {}

function stripComment(text: string): string {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      if (i === 0 || /[\s:[,-]/.test(text[i - 1]!)) quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(text[i - 1]!))) {
      return text.slice(0, i);
    }
  }
  return text;
}

function yamlLines(source: string): Line[] {
  const lines: Line[] = [];
  source.split('\n').forEach((raw, i) => {
    const text = stripComment(raw.replace(/\r$/, '')).trimEnd();
    if (text.trim() === '' || (i === 0 && text === '---')) return;
    const indent = /^ */.exec(text)![0].length;
    if (text[indent] === '\t') throw new YamlError(`line ${i + 1}: tab in indentation`);
    if (text.trim() === '---' || text.trim() === '...') throw new YamlError(`line ${i + 1}: only one document is supported`);
    lines.push({ indent, text: text.slice(indent), no: i + 1 });
  });
  return lines;
}

function scalar(text: string, no: number): Yaml {
  const t = text.trim();
  if (/^[&*!|>%@`]/.test(t)) throw new YamlError(`line ${no}: unsupported YAML (${t[0]}): ${t}`);
  if (t.startsWith('"')) {
    if (!/^"(?:[^"\\]|\\.)*"$/.test(t)) throw new YamlError(`line ${no}: bad double-quoted string ${t}`);
    return JSON.parse(t) as string;
  }
  if (t.startsWith("'")) {
    if (!/^'(?:[^']|'')*'$/.test(t)) throw new YamlError(`line ${no}: bad single-quoted string ${t}`);
    return t.slice(1, -1).replace(/''/g, "'");
  }
  if (t.startsWith('[')) {
    if (!t.endsWith(']')) throw new YamlError(`line ${no}: multi-line flow sequences are not supported`);
    const inner = t.slice(1, -1).trim();
    return inner === '' ? [] : inner.split(',').map((item) => scalar(item, no));
  }
  if (t.startsWith('{')) {
    if (t === '{}') return {};
    throw new YamlError(`line ${no}: flow mappings are not supported`);
  }
  if (t === 'true' || t === 'false') return t === 'true';
  if (t === 'null' || t === '~' || t === '') return null;
  if (/^-?\d+$/.test(t)) return Number(t);
  return t;
}

/** `key: value` / `key:` at the start of text, the key plain or quoted; undefined if text is no mapping entry. */
function splitKey(text: string, no: number): { key: string; rest: string } | undefined {
  const quoted = /^("(?:[^"\\]|\\.)*"|'(?:[^']|'')*')\s*:(?:\s+|$)(.*)$/.exec(text);
  if (quoted) return { key: String(scalar(quoted[1]!, no)), rest: quoted[2]! };
  const plain = /^([^\s"'\[{#&*!|>%@`-][^:]*?|-[^\s:][^:]*?)\s*:(?:\s+|$)(.*)$/.exec(text);
  if (plain) return { key: plain[1]!, rest: plain[2]! };
  return undefined;
}

export function parseYaml(source: string): Yaml {
  const lines = yamlLines(source);
  let pos = 0;

  function block(indent: number): Yaml {
    const first = lines[pos]!;
    return first.text === '-' || first.text.startsWith('- ') ? sequence(indent) : mapping(indent);
  }

  function valueAfterKey(rest: string, indent: number, no: number): Yaml {
    if (rest !== '') return scalar(rest, no);
    const next = lines[pos];
    if (next && next.indent > indent) return block(next.indent);
    // YAML lets a sequence under a key start at the key's own indentation.
    if (next && next.indent === indent && (next.text === '-' || next.text.startsWith('- '))) return sequence(indent);
    return null;
  }

  function mapping(indent: number, firstInline?: Line): { [key: string]: Yaml } {
    const out: { [key: string]: Yaml } = {};
    let line: Line | undefined = firstInline;
    for (;;) {
      if (!line) {
        const next = lines[pos];
        if (!next || next.indent < indent) break;
        if (next.indent > indent) throw new YamlError(`line ${next.no}: unexpected indentation`);
        if (next.text === '-' || next.text.startsWith('- ')) break; // the parent's compact sequence goes on
        line = next;
        pos++;
      }
      const entry = splitKey(line.text, line.no);
      if (!entry) throw new YamlError(`line ${line.no}: expected "key: value", got ${line.text}`);
      if (Object.hasOwn(out, entry.key)) throw new YamlError(`line ${line.no}: duplicate key ${entry.key}`);
      out[entry.key] = valueAfterKey(entry.rest, indent, line.no);
      line = undefined;
    }
    return out;
  }

  function sequence(indent: number): Yaml[] {
    const out: Yaml[] = [];
    for (;;) {
      const line = lines[pos];
      if (!line || line.indent !== indent || !(line.text === '-' || line.text.startsWith('- '))) break;
      pos++;
      const content = line.text.slice(1).replace(/^ +/, '');
      const contentIndent = indent + (line.text.length - content.length);
      if (content === '') {
        const next = lines[pos];
        out.push(next && next.indent > indent ? block(next.indent) : null);
      } else if (content.startsWith('- ')) {
        throw new YamlError(`line ${line.no}: nested compact sequences are not supported`);
      } else if (splitKey(content, line.no)) {
        out.push(mapping(contentIndent, { indent: contentIndent, text: content, no: line.no }));
      } else {
        out.push(scalar(content, line.no));
      }
    }
    return out;
  }

  if (lines.length === 0) return null;
  if (lines[0]!.indent !== 0) throw new YamlError(`line ${lines[0]!.no}: the document must start at column 0`);
  const doc = block(0);
  if (pos < lines.length) throw new YamlError(`line ${lines[pos]!.no}: unexpected content: ${lines[pos]!.text}`);
  return doc;
}

type YamlMap = { [key: string]: Yaml };
const isMap = (v: Yaml | undefined): v is YamlMap => typeof v === 'object' && v !== null && !Array.isArray(v);
const asMap = (v: Yaml | undefined): YamlMap => (isMap(v) ? v : {});
const asList = (v: Yaml | undefined): Yaml[] => (Array.isArray(v) ? v : []);
const asStrings = (v: Yaml | undefined): string[] => asList(v).map(String);

// ---------------------------------------------------------------------------------------------------------
// Dockerfiles
// ---------------------------------------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
}

function dockerInstructions(source: string): Instruction[] {
  const joined = source
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return joined
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '')
    .map((line) => {
      const [keyword, ...rest] = line.split(/\s+/);
      return { keyword: keyword!.toUpperCase(), args: rest.join(' ') };
    });
}

/** ENV K=V pairs of the instructions (quoted values unquoted). */
function dockerEnv(instructions: Instruction[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { keyword, args } of instructions) {
    if (keyword !== 'ENV') continue;
    for (const match of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
      env[match[1]!] = match[2]!.startsWith('"') ? (JSON.parse(match[2]!) as string) : match[2]!;
    }
  }
  return env;
}

/** The text of the Dockerfile from its `runtime` stage to the end. */
function runtimeStage(source: string): string {
  const at = source.search(/^FROM \S+ AS runtime$/m);
  return at < 0 ? '' : source.slice(at);
}

// ---------------------------------------------------------------------------------------------------------
// Grafana dashboard
// ---------------------------------------------------------------------------------------------------------

const PROMQL_KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'bool', 'offset', 'and', 'or', 'unless', 'inf', 'nan']);

/** The metric names a PromQL expression selects (label names, functions, durations and variables left out). */
export function promqlMetricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, ' ') // strings (label values)
    .replace(/\{[^}]*\}/g, ' ') // label matchers
    .replace(/\[[^\]]*\]/g, ' ') // ranges and subqueries
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ') // label lists
    .replace(/\$\{?[A-Za-z0-9_]+\}?/g, ' '); // dashboard variables
  const names = new Set<string>();
  for (const match of stripped.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)) {
    const before = stripped[match.index - 1];
    if (before !== undefined && /[0-9.]/.test(before)) continue; // 1e3, 0.5
    const after = stripped.slice(match.index + match[0].length).trimStart();
    if (after.startsWith('(')) continue; // function or aggregation
    if (PROMQL_KEYWORDS.has(match[0].toLowerCase())) continue;
    names.add(match[0]);
  }
  return [...names];
}

/** The selectors of an expression: each metric name with the text of its label matchers (empty without). */
export function promqlSelectors(expr: string): Array<{ name: string; matchers: string }> {
  const out: Array<{ name: string; matchers: string }> = [];
  const closing = (from: number, open: string, close: string): number => {
    let depth = 0;
    for (let i = from; i < expr.length; i++) {
      const c = expr[i]!;
      if (c === '"' || c === "'" || c === '`') i = stringEnd(i);
      else if (c === open) depth++;
      else if (c === close && --depth === 0) return i;
    }
    return expr.length;
  };
  const stringEnd = (from: number): number => {
    const quote = expr[from];
    for (let i = from + 1; i < expr.length; i++) {
      if (expr[i] === '\\' && quote !== '`') i++;
      else if (expr[i] === quote) return i;
    }
    return expr.length;
  };
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i]!;
    if (c === '"' || c === "'" || c === '`') i = stringEnd(i);
    else if (c === '{') i = closing(i, '{', '}');
    else if (c === '[') i = closing(i, '[', ']');
    else if (/[A-Za-z_:]/.test(c)) {
      const word = /^[A-Za-z_:][A-Za-z0-9_:]*/.exec(expr.slice(i))![0];
      const before = expr[i - 1];
      let next = i + word.length;
      while (expr[next] === ' ') next++;
      if (before !== undefined && /[0-9.]/.test(before)) {
        next = i + word.length - 1; // a number's exponent or a duration's unit
      } else if (expr[next] === '(' || /^(by|without)\s*\(/.test(expr.slice(next))) {
        // a function or aggregation; a label list after by, without, on, ignoring, group_*
        if (/^(by|without|on|ignoring|group_left|group_right)$/.test(word)) next = closing(next, '(', ')');
        else next = i + word.length - 1;
      } else if (!PROMQL_KEYWORDS.has(word.toLowerCase())) {
        if (expr[next] === '{') {
          const end = closing(next, '{', '}');
          out.push({ name: word, matchers: expr.slice(next + 1, end) });
          next = end;
        } else {
          out.push({ name: word, matchers: '' });
          next = i + word.length - 1;
        }
      } else {
        next = i + word.length - 1;
      }
      i = Math.max(i, next);
    }
  }
  return out;
}

/** What an expression measures, which decides the units it may be shown in. */
export type Quantity = 'ratio' | 'seconds' | 'bytes' | 'bytes per second' | 'cores' | 'per second' | 'count';

export function quantityOf(expr: string): Quantity {
  const name = promqlMetricNames(expr)[0] ?? '';
  if (/\)\s*\/\s*[a-z(]/.test(expr)) return 'ratio';
  if (/\bhistogram_quantile\s*\(/.test(expr)) return name.endsWith('_seconds_bucket') ? 'seconds' : 'count';
  if (/\bi?rate\s*\(/.test(expr)) return name.endsWith('_seconds_total') ? 'cores' : name.endsWith('_bytes_total') ? 'bytes per second' : 'per second';
  if (/\bincrease\s*\(/.test(expr)) return 'count';
  return name.endsWith('_seconds') ? 'seconds' : name.endsWith('_bytes') ? 'bytes' : 'count';
}

/** Grafana units for each quantity: a count is never shown as a rate, nor seconds as a plain number. */
const UNITS_OF: Record<Quantity, readonly string[]> = {
  ratio: ['percentunit'],
  seconds: ['s', 'ms'],
  bytes: ['bytes', 'decbytes'],
  'bytes per second': ['Bps', 'binBps'],
  cores: ['short', 'none'],
  'per second': ['reqps', 'cps', 'ops'],
  count: ['short', 'none'],
};

interface ExportedMetric {
  name: string;
  type: string;
}

async function exportedMetrics(): Promise<ExportedMetric[]> {
  const metrics = createMetrics();
  return (await metrics.registry.getMetricsAsJSON()).map((m) => ({ name: m.name, type: String(m.type) }));
}

/** Whether a name in a query is one the proxy exports: itself, or a histogram's _bucket/_sum/_count series. */
function isExported(name: string, exported: ExportedMetric[]): boolean {
  if (exported.some((m) => m.name === name)) return true;
  const series = /^(.*)_(bucket|sum|count)$/.exec(name);
  return !!series && exported.some((m) => m.name === series[1] && (m.type === 'histogram' || m.type === 'summary'));
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
const isObject = (v: Json | undefined): v is { [key: string]: Json } => typeof v === 'object' && v !== null && !Array.isArray(v);

export function dashboardProblems(dashboard: Json, datasourceUid: string, exported: ExportedMetric[]): string[] {
  const problems: string[] = [];
  if (!isObject(dashboard)) return ['the dashboard is not a JSON object'];
  for (const key of ['title', 'uid'] as const) {
    if (typeof dashboard[key] !== 'string' || dashboard[key] === '') problems.push(`dashboard has no ${key}`);
  }
  if (typeof dashboard.schemaVersion !== 'number' || dashboard.schemaVersion < 36) problems.push('dashboard schemaVersion missing or < 36');
  if (!Array.isArray(dashboard.panels) || dashboard.panels.length === 0) return [...problems, 'dashboard has no panels'];

  // job and instance variables, read from a metric the proxy exports, so that several proxies can be told apart.
  const variables = isObject(dashboard.templating) && Array.isArray(dashboard.templating.list) ? dashboard.templating.list : [];
  for (const name of ['job', 'instance']) {
    const variable = variables.find((v) => isObject(v) && v.name === name);
    if (!isObject(variable)) {
      problems.push(`dashboard has no ${name} variable`);
      continue;
    }
    const query = isObject(variable.query) ? variable.query.query : variable.query;
    const metric = typeof query === 'string' ? /^label_values\(\s*([A-Za-z_:][A-Za-z0-9_:]*)/.exec(query)?.[1] : undefined;
    if (!metric || !isExported(metric, exported)) problems.push(`variable ${name} is not label_values() of an exported metric: ${JSON.stringify(query)}`);
    else if (!new RegExp(`,\\s*${name}\\s*\\)$`).test(String(query))) problems.push(`variable ${name} does not list ${name} values: ${String(query)}`);
  }

  const panels: Json[] = [];
  for (const panel of dashboard.panels) {
    panels.push(panel);
    if (isObject(panel) && panel.type === 'row' && Array.isArray(panel.panels)) panels.push(...panel.panels);
  }
  const ids = new Set<number>();
  panels.forEach((panel, index) => {
    if (!isObject(panel)) return problems.push(`panel #${index} is not an object`);
    const label = `panel ${JSON.stringify(panel.title ?? `#${index}`)}`;
    if (typeof panel.id !== 'number') problems.push(`${label} has no numeric id`);
    else if (ids.has(panel.id)) problems.push(`${label} repeats id ${panel.id}`);
    else ids.add(panel.id);
    if (typeof panel.title !== 'string' || panel.title.trim() === '') problems.push(`${label} has no title`);
    if (typeof panel.type !== 'string' || panel.type === '') problems.push(`${label} has no type`);
    const grid = panel.gridPos;
    if (!isObject(grid) || !['x', 'y', 'w', 'h'].every((k) => typeof grid[k] === 'number')) problems.push(`${label} has no gridPos`);
    if (panel.type === 'row') return;
    const ds = panel.datasource;
    if (!isObject(ds) || ds.type !== 'prometheus' || ds.uid !== datasourceUid) {
      problems.push(`${label} datasource is ${JSON.stringify(ds)}, not the provisioned prometheus uid ${datasourceUid}`);
    }
    if (!Array.isArray(panel.targets) || panel.targets.length === 0) return problems.push(`${label} has no targets`);
    const fieldConfig = isObject(panel.fieldConfig) ? panel.fieldConfig : {};
    const defaults = isObject(fieldConfig.defaults) ? fieldConfig.defaults : {};
    const custom = isObject(defaults.custom) ? defaults.custom : {};
    const stacking = isObject(custom.stacking) ? custom.stacking.mode : undefined;
    // Series of one query split by a label are parts of one whole; series of several queries are not.
    if (stacking !== undefined && stacking !== 'none' && panel.targets.length > 1) problems.push(`${label} stacks ${panel.targets.length} different queries`);
    const overridesOf = (refId: string): { [key: string]: Json } => {
      const found: { [key: string]: Json } = {};
      for (const o of Array.isArray(fieldConfig.overrides) ? fieldConfig.overrides : []) {
        if (!isObject(o) || !isObject(o.matcher) || o.matcher.id !== 'byFrameRefID' || o.matcher.options !== refId) continue;
        for (const property of Array.isArray(o.properties) ? o.properties : []) if (isObject(property) && typeof property.id === 'string') found[property.id] = property.value ?? null;
      }
      return found;
    };
    const refIds = new Set<string>();
    for (const t of panel.targets) {
      if (!isObject(t)) {
        problems.push(`${label} has a target that is not an object`);
        continue;
      }
      if (typeof t.refId !== 'string' || refIds.has(t.refId)) problems.push(`${label} target refId missing or repeated`);
      else refIds.add(t.refId);
      if (t.datasource !== undefined && (!isObject(t.datasource) || t.datasource.uid !== datasourceUid)) {
        problems.push(`${label} target ${String(t.refId)} uses datasource ${JSON.stringify(t.datasource)}`);
      }
      if (typeof t.expr !== 'string' || t.expr.trim() === '') {
        problems.push(`${label} target ${String(t.refId)} has an empty expr`);
        continue;
      }
      const names = promqlMetricNames(t.expr);
      if (names.length === 0) problems.push(`${label} target ${String(t.refId)} selects no metric: ${t.expr}`);
      for (const name of names) {
        if (!isExported(name, exported)) problems.push(`${label} queries ${name}, which the proxy does not export`);
      }
      for (const { name, matchers } of promqlSelectors(t.expr)) {
        if (!/\bjob\s*=~\s*"\$job"/.test(matchers) || !/\binstance\s*=~\s*"\$instance"/.test(matchers)) {
          problems.push(`${label} target ${String(t.refId)} selects ${name} without job=~"$job" and instance=~"$instance"`);
        }
      }
      const own = overridesOf(String(t.refId));
      const unit = String(own.unit ?? defaults.unit ?? '');
      const quantity = quantityOf(t.expr);
      if (!UNITS_OF[quantity].includes(unit)) problems.push(`${label} target ${String(t.refId)} shows ${quantity} in unit "${unit}" (${UNITS_OF[quantity].join(' or ')} expected)`);
      // Another unit than the panel's needs an axis of its own (cores and seconds do not share a scale).
      if (own.unit !== undefined && own.unit !== defaults.unit && own['custom.axisPlacement'] !== 'right') {
        problems.push(`${label} target ${String(t.refId)} in unit "${String(own.unit)}" shares the "${String(defaults.unit)}" axis`);
      }
    }
    return undefined;
  });
  return problems;
}

// ---------------------------------------------------------------------------------------------------------
// Compose, Prometheus, Grafana provisioning
// ---------------------------------------------------------------------------------------------------------

interface Mount {
  source: string;
  target: string;
  readOnly: boolean;
}

function mounts(service: YamlMap): Mount[] {
  return asList(service.volumes).map((v) => {
    if (typeof v !== 'string') throw new Error(`long-form volume entries are not checked: ${JSON.stringify(v)}`);
    const [source = '', target = '', mode = ''] = v.split(':');
    return { source, target, readOnly: mode.split(',').includes('ro') };
  });
}

const containerPortOf = (spec: string) => spec.split(':').at(-1)!.split('/')[0]!;

/** The container ports a `ports:` entry publishes: short syntax (`[IP:][HOST:]CONTAINER[/proto]`, ranges too) or long. */
function publishedContainerPorts(entry: Yaml): number[] {
  const spec = isMap(entry) ? String(entry.target ?? '') : containerPortOf(String(entry));
  const [from = NaN, to = from] = spec.split('-').map(Number);
  return Number.isInteger(from) && Number.isInteger(to) ? Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i) : [];
}

export interface ComposeExpectations {
  configPathInImage: string; // the Dockerfile's SWIFT_QUOTA_PROXY_CONFIG
  proxyPort: string; // the port the image listens on (EXPOSE, SWIFT_QUOTA_PROXY_LISTEN)
  opsPort?: string; // the compose config's ops_bind_port, if it has one: /metrics and /readyz, never published
  dashboardsPath: string; // where the Grafana dashboard provider reads JSON files
  composeDir: string; // to resolve the bind mounts' host paths
  ledgerHost?: string; // the host of the compose config's Redis ledger, if it has one
  ruleFiles?: string[]; // prometheus.yml's rule_files (relative to it), mounted beside it
  drainSeconds?: number; // the compose config's drain_delay + drain_timeout: stop_grace_period must exceed it
}

/** Seconds of a compose duration (`75s`, `1m30s`, `2m`); NaN when it is none. */
function composeSeconds(value: unknown): number {
  const match = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(String(value ?? ''));
  if (!match || String(value) === '') return NaN;
  return Number(match[1] ?? 0) * 3600 + Number(match[2] ?? 0) * 60 + Number(match[3] ?? 0);
}

export function composeProblems(compose: Yaml, expect: ComposeExpectations): string[] {
  const problems: string[] = [];
  const services = asMap(asMap(compose).services);
  for (const name of ['swift', 'proxy', 'prometheus', 'grafana']) {
    if (!isMap(services[name])) problems.push(`service ${name} is missing`);
  }
  const published = Object.keys(services).filter((name) => asMap(services[name]).ports !== undefined).sort();
  if (published.join(',') !== 'grafana,proxy') problems.push(`services with ports: ${published.join(', ') || 'none'}; only proxy and grafana may publish`);

  const declaredVolumes = Object.keys(asMap(asMap(compose).volumes));
  for (const [name, value] of Object.entries(services)) {
    for (const m of mounts(asMap(value))) {
      if (m.source.startsWith('.') || m.source.startsWith('/')) {
        if (!existsSync(resolve(expect.composeDir, m.source))) problems.push(`${name} mounts ${m.source}, which does not exist`);
      } else if (!declaredVolumes.includes(m.source)) {
        problems.push(`${name} uses volume ${m.source}, not declared under volumes`);
      }
    }
    const build = asMap(value).build;
    if (build !== undefined) {
      const context = typeof build === 'string' ? build : String(asMap(build).context ?? '.');
      const dockerfile = typeof build === 'string' ? 'Dockerfile' : String(asMap(build).dockerfile ?? 'Dockerfile');
      if (!existsSync(resolve(expect.composeDir, context, dockerfile))) problems.push(`${name} builds ${context}/${dockerfile}, which does not exist`);
    }
  }

  const proxy = asMap(services.proxy);
  const proxyBuild = asMap(proxy.build);
  if (resolve(expect.composeDir, String(proxyBuild.context)) !== ROOT || proxyBuild.dockerfile !== 'Dockerfile') {
    problems.push('proxy is not built from the repository root Dockerfile');
  }
  const configMount = mounts(proxy).find((m) => m.target === expect.configPathInImage);
  if (!configMount) problems.push(`proxy does not mount a config at ${expect.configPathInImage}`);
  else if (resolve(expect.composeDir, configMount.source) !== join(DOCKER, 'proxy-server.conf') || !configMount.readOnly) {
    problems.push(`proxy config mount should be ./proxy-server.conf, read-only; is ${configMount.source}`);
  }
  if (!asStrings(proxy.ports).some((p) => containerPortOf(p) === expect.proxyPort && p.split(':').includes(expect.proxyPort))) {
    problems.push(`proxy does not publish ${expect.proxyPort}:${expect.proxyPort}`);
  }

  if (expect.opsPort !== undefined) {
    // /metrics, and /readyz's reasons (internal addresses), are for the compose network: Prometheus, a balancer.
    if (expect.opsPort === expect.proxyPort) problems.push(`the ops port is the client port ${expect.proxyPort}`);
    const publishing = asList(proxy.ports).filter((p) => publishedContainerPorts(p).includes(Number(expect.opsPort)));
    if (publishing.length > 0) problems.push(`proxy publishes its ops port ${expect.opsPort} on the host (${publishing.map((p) => JSON.stringify(p)).join(', ')})`);
    if (!asStrings(proxy.expose).includes(expect.opsPort)) problems.push(`proxy does not expose its ops port ${expect.opsPort} to the compose network`);
  }

  if (expect.drainSeconds !== undefined) {
    // Past it the engine sends SIGKILL: requests still draining would be cut.
    const grace = composeSeconds(proxy.stop_grace_period);
    if (!(grace > expect.drainSeconds)) problems.push(`proxy's stop_grace_period (${String(proxy.stop_grace_period)}) is not longer than drain_delay + drain_timeout (${expect.drainSeconds} s)`);
  }

  if (expect.ledgerHost !== undefined) {
    const ledger = services[expect.ledgerHost];
    if (!isMap(ledger)) problems.push(`the proxy's ledger is on ${expect.ledgerHost}, which is no service`);
    else if (typeof ledger.image !== 'string' || !/^(docker\.io\/)?redis:/.test(ledger.image)) problems.push(`${expect.ledgerHost} is not the official redis image`);
    if (!Object.keys(asMap(proxy.depends_on)).includes(expect.ledgerHost)) problems.push(`proxy does not depend on ${expect.ledgerHost}, its ledger`);
  }

  const swift = asMap(services.swift);
  if (!mounts(swift).some((m) => m.target === '/srv' && declaredVolumes.includes(m.source))) problems.push('swift keeps its device on no named volume at /srv');

  const prometheus = asMap(services.prometheus);
  const promConfig = mounts(prometheus).find((m) => resolve(expect.composeDir, m.source) === join(DOCKER, 'prometheus', 'prometheus.yml'));
  if (!promConfig) problems.push('prometheus does not mount prometheus/prometheus.yml');
  else if (!asStrings(prometheus.command).includes(`--config.file=${promConfig.target}`)) {
    problems.push(`prometheus is not started with --config.file=${promConfig.target}`);
  }
  if (typeof prometheus.image !== 'string' || !/^(docker\.io\/)?prom\/prometheus:/.test(prometheus.image)) problems.push('prometheus is not the official prom/prometheus image');
  for (const file of expect.ruleFiles ?? []) {
    const mount = mounts(prometheus).find((m) => resolve(expect.composeDir, m.source) === join(DOCKER, 'prometheus', file));
    if (!mount || !promConfig || mount.target !== `${dirname(promConfig.target)}/${file}`) problems.push(`prometheus does not mount prometheus/${file} beside its config, where rule_files names it`);
  }

  const grafana = asMap(services.grafana);
  if (typeof grafana.image !== 'string' || !/^(docker\.io\/)?grafana\/grafana(-oss)?:/.test(grafana.image)) problems.push('grafana is not the official grafana/grafana image');
  const grafanaMounts = mounts(grafana);
  const byHostPath = (p: string) => grafanaMounts.find((m) => resolve(expect.composeDir, m.source) === join(DOCKER, p));
  if (byHostPath('grafana/provisioning')?.target !== '/etc/grafana/provisioning') problems.push('grafana does not mount grafana/provisioning at /etc/grafana/provisioning');
  if (byHostPath('grafana/dashboards')?.target !== expect.dashboardsPath) {
    problems.push(`grafana does not mount grafana/dashboards at the provider's path ${expect.dashboardsPath}`);
  }
  if (!asStrings(grafana.ports).some((p) => containerPortOf(p) === '3000')) problems.push('grafana does not publish port 3000');
  return problems;
}

/** `clientTarget`: the proxy's client port, which does not serve metrics_path once the proxy has an ops listener. */
export function prometheusProblems(config: Yaml, target: string, metricsPath: string, clientTarget?: string): string[] {
  const jobs = asList(asMap(config).scrape_configs).map(asMap);
  const targetsOf = (j: YamlMap) => asList(j.static_configs).flatMap((s) => asStrings(asMap(s).targets));
  const problems: string[] = [];
  if (clientTarget !== undefined && jobs.some((j) => targetsOf(j).includes(clientTarget))) {
    problems.push(`a job scrapes ${clientTarget}, the client port, where ${metricsPath} is Swift's (the proxy answers it on its ops port)`);
  }
  const job = jobs.find((j) => targetsOf(j).includes(target));
  if (!job) return [...problems, `no scrape job has the target ${target}`];
  const path = job.metrics_path ?? '/metrics';
  if (path !== metricsPath) problems.push(`the job scrapes ${String(path)}, the proxy serves ${metricsPath}`);
  const interval = job.scrape_interval ?? asMap(asMap(config).global).scrape_interval;
  if (interval !== '5s') problems.push(`the proxy is scraped every ${String(interval)}, not 5s`);
  return problems;
}

/** prometheus.yml's rule_files. */
function ruleFilesOf(config: Yaml): string[] {
  return asStrings(asMap(config).rule_files);
}

// ---------------------------------------------------------------------------------------------------------
// The files themselves
// ---------------------------------------------------------------------------------------------------------

const dockerfile = read('Dockerfile');
const prebuilt = read('docker/Dockerfile.prebuilt');
const runtimeInstructions = dockerInstructions(runtimeStage(dockerfile));
const imageEnv = dockerEnv(runtimeInstructions);
const datasources = parseYaml(read('docker/grafana/provisioning/datasources/prometheus.yaml'));
const providers = parseYaml(read('docker/grafana/provisioning/dashboards/dashboards.yaml'));
const provisionedDatasource = asMap(asList(asMap(datasources).datasources)[0]);
const dashboardsPath = String(asMap(asMap(asList(asMap(providers).providers)[0]).options).path);
const expectations: ComposeExpectations = {
  configPathInImage: imageEnv.SWIFT_QUOTA_PROXY_CONFIG ?? '',
  proxyPort: (imageEnv.SWIFT_QUOTA_PROXY_LISTEN ?? '').split(':').at(-1) ?? '',
  dashboardsPath,
  composeDir: DOCKER,
  ruleFiles: ruleFilesOf(parseYaml(read('docker/prometheus/prometheus.yml'))),
  ...composeLedgerHost(),
  ...composeOpsPort(),
  drainSeconds: composeDrainSeconds(),
};

/** docker/proxy-server.conf's ops_bind_port, if it has an ops listener. */
function composeOpsPort(): { opsPort?: string } {
  const { opsBind } = loadConfig(join(DOCKER, 'proxy-server.conf'));
  return opsBind ? { opsPort: String(opsBind.port) } : {};
}

/** docker/proxy-server.conf's drain_delay + drain_timeout. */
function composeDrainSeconds(): number {
  const { restart } = loadConfig(join(DOCKER, 'proxy-server.conf'));
  return restart.drainDelaySeconds + restart.drainTimeoutSeconds;
}

/** The host of docker/proxy-server.conf's Redis ledger (a compose service), if it names one. */
function composeLedgerHost(): { ledgerHost?: string } {
  const { ledger } = loadConfig(join(DOCKER, 'proxy-server.conf'));
  return ledger.kind === 'redis' ? { ledgerHost: new URL(ledger.url).hostname } : {};
}
const dashboardText = read('docker/grafana/dashboards/swift-quota-proxy.json');

describe('the minimal YAML reader', () => {
  test('reads block mappings, sequences, compact sequences, quoted and flow scalars, comments', () => {
    const doc = parseYaml(
      [
        '# comment',
        'a: 1',
        'b: "x: # not a comment"',
        "c: 'it''s'",
        'd:',
        '  - one  # comment',
        '  - key: v',
        '    other: [p, "q"]',
        '  -',
        '    nested: true',
        'e:',
        '- compact',
        'f: http://host:9090/path',
        'g: ./a.conf:/etc/a.conf:ro',
        'h:',
        '  i: {}',
        '',
      ].join('\n'),
    );
    assert.deepEqual(doc, {
      a: 1,
      b: 'x: # not a comment',
      c: "it's",
      d: ['one', { key: 'v', other: ['p', 'q'] }, { nested: true }],
      e: ['compact'],
      f: 'http://host:9090/path',
      g: './a.conf:/etc/a.conf:ro',
      h: { i: {} },
    });
  });

  test('refuses what it does not understand instead of misreading it', () => {
    for (const source of ['a: |\n  text\n', 'a: &anchor 1\n', 'a:\n\tb: 1\n', 'a: 1\n  b: 2\n', 'a: 1\na: 2\n', 'a: {b: 1}\n', 'a: 1\n---\nb: 2\n']) {
      assert.throws(() => parseYaml(source), YamlError, JSON.stringify(source));
    }
  });
});

describe('promqlMetricNames', () => {
  test('finds metric names, not functions, label names, label values, ranges or variables', () => {
    assert.deepEqual(
      promqlMetricNames('histogram_quantile(0.99, sum by (le, target) (rate(a_seconds_bucket{target="account", x=~"b_c"}[$__rate_interval])))'),
      ['a_seconds_bucket'],
    );
    assert.deepEqual(promqlMetricNames('sum(rate(x_total{result="hit"}[5m])) / sum without (kind) (rate(x_total[5m])) > bool 0.5'), ['x_total']);
    assert.deepEqual(promqlMetricNames('sum(increase(a_total[$__range])) + on (job) group_left b_gauge offset 5m'), ['a_total', 'b_gauge']);
  });
});

describe('Grafana dashboard', () => {
  test('is a provisionable dashboard whose every query uses an exported metric through the provisioned datasource', async () => {
    assert.equal(provisionedDatasource.type, 'prometheus');
    assert.equal(typeof provisionedDatasource.uid, 'string');
    const exported = await exportedMetrics();
    assert.ok(exported.some((m) => m.name === 'swift_quota_proxy_requests_total'), 'the registry was read');
    const dashboard = JSON.parse(dashboardText) as Json;
    assert.deepEqual(dashboardProblems(dashboard, String(provisionedDatasource.uid), exported), []);
  });

  test('covers the metrics the issue asks for', () => {
    for (const metric of [
      'swift_quota_proxy_requests_total',
      'swift_quota_proxy_quota_rejections_total',
      'swift_quota_proxy_usage_cache_requests_total',
      'swift_quota_proxy_usage_lookup_duration_seconds_bucket',
      'swift_quota_proxy_upstream_errors_total',
      'swift_quota_proxy_reservations_in_flight',
      'swift_quota_proxy_level_changes_total',
      'swift_quota_proxy_request_duration_seconds_bucket',
      'swift_quota_proxy_client_received_bytes_total',
      'swift_quota_proxy_client_sent_bytes_total',
      'swift_quota_proxy_upstream_up',
      'swift_quota_proxy_check_failures_total',
      'swift_quota_proxy_reservation_oldest_age_seconds',
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
    ]) {
      assert.ok(dashboardText.includes(metric), metric);
    }
  });

  test('has latency quantiles of the proxy\'s requests and an error ratio', () => {
    const exprs = (JSON.parse(dashboardText) as { panels: Array<{ targets: Array<{ expr: string }> }> }).panels.flatMap((p) => p.targets.map((t) => t.expr));
    for (const q of ['0.5', '0.99']) {
      assert.ok(exprs.some((e) => e.startsWith(`histogram_quantile(${q}, sum by (le) (rate(swift_quota_proxy_request_duration_seconds_bucket{`)), `p${q}`);
    }
    assert.ok(exprs.some((e) => /status_class="5xx"[^/]*\/ sum\(rate\(swift_quota_proxy_requests_total\{/.test(e)), '5xx ratio');
    assert.ok(exprs.some((e) => /upstream_errors_total[^/]*\/ sum\(rate\(swift_quota_proxy_requests_total\{/.test(e)), 'upstream error ratio');
  });

  test('promqlSelectors and quantityOf read what the unit and variable checks need', () => {
    assert.deepEqual(promqlSelectors('sum by (le, x) (rate(a_bucket{job=~"$job", y="}"}[5m])) / on (job) group_left b offset 5m + 1e3'), [
      { name: 'a_bucket', matchers: 'job=~"$job", y="}"' },
      { name: 'b', matchers: '' },
    ]);
    assert.equal(quantityOf('sum(rate(a_total[5m])) / sum(rate(b_total[5m]))'), 'ratio');
    assert.equal(quantityOf('histogram_quantile(0.9, sum by (le) (rate(a_seconds_bucket[5m])))'), 'seconds');
    assert.equal(quantityOf('rate(process_cpu_seconds_total[5m])'), 'cores');
    assert.equal(quantityOf('rate(a_bytes_total[5m])'), 'bytes per second');
    assert.equal(quantityOf('sum(rate(a_total[5m]))'), 'per second');
    assert.equal(quantityOf('sum(increase(a_total[5m]))'), 'count');
    assert.equal(quantityOf('max(a_lag_seconds)'), 'seconds');
    assert.equal(quantityOf('a_in_flight'), 'count');
  });

  test('the checker fails on unknown metrics, non-histogram _bucket, empty exprs, repeated ids and other datasources', async () => {
    const exported = await exportedMetrics();
    const uid = String(provisionedDatasource.uid);
    const broken = (mutate: (panels: { [key: string]: Json }[]) => void): string[] => {
      const dashboard = JSON.parse(dashboardText) as { panels: { [key: string]: Json }[] };
      mutate(dashboard.panels);
      return dashboardProblems(dashboard as unknown as Json, uid, exported);
    };
    const firstTarget = (panels: { [key: string]: Json }[]) => (panels[0]!.targets as { [key: string]: Json }[])[0]!;
    const panelTitled = (panels: { [key: string]: Json }[], title: string) => panels.find((panel) => panel.title === title) ?? assert.fail(`no panel ${title}`);
    const cases: Array<[string, (panels: { [key: string]: Json }[]) => void, RegExp]> = [
      ['misspelt metric', (p) => { firstTarget(p).expr = 'sum(rate(swift_quota_proxy_request_total[5m]))'; }, /does not export/],
      ['_bucket of a counter', (p) => { firstTarget(p).expr = 'rate(swift_quota_proxy_requests_total_bucket[5m])'; }, /does not export/],
      ['metric of another exporter', (p) => { firstTarget(p).expr = 'up'; }, /does not export/],
      ['empty expr', (p) => { firstTarget(p).expr = ' '; }, /empty expr/],
      ['repeated id', (p) => { p[1]!.id = p[0]!.id!; }, /repeats id/],
      ['no title', (p) => { delete p[0]!.title; }, /has no title/],
      ['no targets', (p) => { p[0]!.targets = []; }, /has no targets/],
      ['other datasource', (p) => { p[0]!.datasource = { type: 'prometheus', uid: 'elsewhere' }; }, /datasource/],
      ['a selector without $instance', (p) => { firstTarget(p).expr = 'sum(rate(swift_quota_proxy_requests_total{job=~"$job"}[5m]))'; }, /without job=~"\$job" and instance=~"\$instance"/],
      ['a count in a rate unit', (p) => { (panelTitled(p, 'Quota events per interval').fieldConfig as { defaults: { unit: string } }).defaults.unit = 'reqps'; }, /shows count in unit "reqps"/],
      ['a gauge in a rate unit', (p) => { (panelTitled(p, 'Notification queue depth').fieldConfig as { defaults: { unit: string } }).defaults.unit = 'reqps'; }, /shows count in unit "reqps"/],
      ['seconds on the cores axis', (p) => { (panelTitled(p, 'CPU (cores) and event loop lag (s)').fieldConfig as { overrides: Json[] }).overrides = []; }, /shows seconds in unit "short"/],
      ['seconds beside cores on one axis', (p) => {
        const cpu = panelTitled(p, 'CPU (cores) and event loop lag (s)').fieldConfig as { overrides: Array<{ properties: Array<{ id: string }> }> };
        cpu.overrides[0]!.properties = cpu.overrides[0]!.properties.filter((property) => property.id !== 'custom.axisPlacement');
      }, /shares the "short" axis/],
      ['unrelated queries stacked', (p) => { (panelTitled(p, 'Client traffic').fieldConfig as { defaults: { custom: { stacking: { mode: string } } } }).defaults.custom.stacking.mode = 'normal'; }, /stacks 2 different queries/],
    ];
    for (const [name, mutate, expected] of cases) {
      const problems = broken(mutate);
      assert.ok(problems.some((p) => expected.test(p)), `${name}: ${JSON.stringify(problems)}`);
    }
    assert.ok(dashboardProblems({ title: 'x' }, uid, exported).includes('dashboard has no panels'));
    const withVariables = (mutate: (list: Array<{ [key: string]: Json }>) => void): string[] => {
      const dashboard = JSON.parse(dashboardText) as { templating: { list: Array<{ [key: string]: Json }> } };
      mutate(dashboard.templating.list);
      return dashboardProblems(dashboard as unknown as Json, uid, exported);
    };
    assert.ok(withVariables((list) => list.splice(list.findIndex((v) => v.name === 'instance'), 1)).includes('dashboard has no instance variable'));
    assert.match(withVariables((list) => { list[0]!.query = { query: 'label_values(up, job)' }; }).join(), /variable job is not label_values\(\) of an exported metric/);
  });
});

describe('docker/compose.yaml', () => {
  const compose = parseYaml(read('docker/compose.yaml'));

  test('has swift, redis, proxy, prometheus and grafana; publishes only the proxy and Grafana; mounts the config where the image reads it', () => {
    assert.equal(expectations.configPathInImage, '/etc/swift-quota-proxy/proxy-server.conf');
    assert.equal(expectations.ledgerHost, 'redis', 'the compose proxy runs workers on the compose Redis');
    assert.equal(expectations.proxyPort, '8081');
    assert.equal(expectations.opsPort, '8090', 'the compose proxy has an ops listener (docs/operations.md recommends one for a client port facing clients)');
    assert.deepEqual(composeProblems(compose, expectations), []);
  });

  test('the checker fails on a published Swift or Prometheus, a missing service, a wrong mount', () => {
    const mutated = (mutate: (services: YamlMap) => void): string[] => {
      const copy = parseYaml(read('docker/compose.yaml'));
      mutate(asMap(asMap(copy).services));
      return composeProblems(copy, expectations);
    };
    const cases: Array<[string, (s: YamlMap) => void, RegExp]> = [
      ['prometheus published', (s) => { asMap(s.prometheus).ports = ['9090:9090']; }, /only proxy and grafana/],
      ['swift published', (s) => { asMap(s.swift).ports = ['8080:8080']; }, /only proxy and grafana/],
      ['grafana missing', (s) => { delete s.grafana; }, /service grafana is missing/],
      ['config elsewhere', (s) => { asMap(s.proxy).volumes = ['./proxy-server.conf:/etc/proxy.conf:ro']; }, /does not mount a config/],
      ['config writable', (s) => { asMap(s.proxy).volumes = [`./proxy-server.conf:${expectations.configPathInImage}`]; }, /read-only/],
      ['missing host file', (s) => { asMap(s.prometheus).volumes = ['./prometheus/missing.yml:/etc/prometheus/prometheus.yml:ro']; }, /does not exist|does not mount/],
      ['proxy on another port', (s) => { asMap(s.proxy).ports = ['8082:8082']; }, /does not publish 8081/],
      ['ops port published', (s) => { asMap(s.proxy).ports = ['8081:8081', '8090:8090']; }, /publishes its ops port 8090 on the host/],
      ['ops port published on loopback', (s) => { asMap(s.proxy).ports = ['8081:8081', '127.0.0.1:18090:8090/tcp']; }, /publishes its ops port 8090/],
      ['ops port published in a range', (s) => { asMap(s.proxy).ports = ['8081-8095:8081-8095']; }, /publishes its ops port 8090/],
      ['ops port published, long syntax', (s) => { asMap(s.proxy).ports = ['8081:8081', { target: 8090, published: 8090 }]; }, /publishes its ops port 8090/],
      ['ops port not exposed', (s) => { delete asMap(s.proxy).expose; }, /does not expose its ops port 8090/],
      ['redis published', (s) => { asMap(s.redis).ports = ['6379:6379']; }, /only proxy and grafana/],
      ['redis missing', (s) => { delete s.redis; }, /which is no service/],
      ['no stop grace period', (s) => { delete asMap(s.proxy).stop_grace_period; }, /stop_grace_period \(undefined\)/],
      ['a grace period shorter than the drain', (s) => { asMap(s.proxy).stop_grace_period = '30s'; }, /stop_grace_period \(30s\) is not longer than drain_delay \+ drain_timeout \(65 s\)/],
      ['proxy starts before its ledger', (s) => { delete asMap(asMap(s.proxy).depends_on).redis; }, /does not depend on redis/],
      ['alert rules not mounted', (s) => { asMap(s.prometheus).volumes = mounts(asMap(s.prometheus)).filter((m) => !m.source.endsWith('alerts.yml')).map((m) => `${m.source}:${m.target}:ro`); }, /does not mount prometheus\/alerts.yml/],
    ];
    for (const [name, mutate, expected] of cases) {
      const problems = mutated(mutate);
      assert.ok(problems.some((p) => expected.test(p)), `${name}: ${JSON.stringify(problems)}`);
    }
  });
});

describe('docker/prometheus/prometheus.yml', () => {
  const proxyConfig = loadConfig(join(DOCKER, 'proxy-server.conf'));
  // With an ops listener the proxy answers metrics_path there only (on the client port it goes to Swift).
  const target = `proxy:${expectations.opsPort}`;
  const clientTarget = `proxy:${expectations.proxyPort}`;

  test("scrapes the proxy's metrics path on its ops port every 5 s, not the client port", () => {
    assert.ok(expectations.opsPort !== undefined, 'docker/proxy-server.conf has an ops listener');
    assert.deepEqual(prometheusProblems(parseYaml(read('docker/prometheus/prometheus.yml')), target, proxyConfig.metricsPath, clientTarget), []);
  });

  test('the checker fails on another path, target or interval, and on a scrape of the client port', () => {
    const base = read('docker/prometheus/prometheus.yml');
    assert.match(prometheusProblems(parseYaml(base.replace('metrics_path: /metrics', 'metrics_path: /stats')), target, '/metrics').join(), /scrapes \/stats/);
    assert.match(prometheusProblems(parseYaml(base.replace(`- ${target}`, '- proxy:9999')), target, '/metrics').join(), /no scrape job/);
    assert.match(prometheusProblems(parseYaml(base.replace('scrape_interval: 5s', 'scrape_interval: 30s')), target, '/metrics').join(), /not 5s/);
    const onClientPort = prometheusProblems(parseYaml(base.replace(`- ${target}`, `- ${clientTarget}`)), target, '/metrics', clientTarget).join();
    assert.match(onClientPort, /scrapes proxy:8081, the client port/);
    assert.match(onClientPort, /no scrape job has the target proxy:8090/);
    const both = prometheusProblems(parseYaml(base.replace(`- ${target}`, `- ${target}\n          - ${clientTarget}`)), target, '/metrics', clientTarget);
    assert.deepEqual(both, ['a job scrapes proxy:8081, the client port, where /metrics is Swift\'s (the proxy answers it on its ops port)']);
  });

  test('loads the shipped alert rules, and promtool accepts the config with them', async () => {
    assert.deepEqual(expectations.ruleFiles, ['alerts.yml']);
    const checked = await promtool(['check', 'config', join(DOCKER, 'prometheus', 'prometheus.yml')]);
    assert.equal(checked.code, 0, checked.output);
    assert.match(checked.output, /SUCCESS: 1 rule files found/);
  });
});

describe('docker/prometheus/alerts.yml', () => {
  const rulesFile = join(DOCKER, 'prometheus', 'alerts.yml');
  const testFile = join(DOCKER, 'prometheus', 'alerts.test.yml');
  const rules = asList(asMap(parseYaml(read('docker/prometheus/alerts.yml'))).groups).flatMap((group) => asList(asMap(group).rules).map(asMap));
  const alertNames = rules.map((rule) => String(rule.alert));
  // What the issue asks alerts for, each by its rule.
  const expected = ['SwiftQuotaProxyUpstreamErrors', 'SwiftQuotaProxySwiftUnreachable', 'SwiftQuotaProxyFailClosedRefusals', 'SwiftQuotaProxyNotificationQueueGrowing', 'SwiftQuotaProxyReservationStuck'];

  test('has the alerts the issue asks for; promtool check rules accepts them', async () => {
    for (const name of expected) assert.ok(alertNames.includes(name), name);
    const checked = await promtool(['check', 'rules', rulesFile]);
    assert.equal(checked.code, 0, checked.output);
    assert.match(checked.output, new RegExp(`SUCCESS: ${rules.length} rules found`));
  });

  test('every expression uses metrics the proxy exports (or up) and keeps job and instance when it aggregates', async () => {
    const exported = await exportedMetrics();
    for (const rule of rules) {
      const expr = String(rule.expr);
      for (const name of promqlMetricNames(expr)) assert.ok(name === 'up' || isExported(name, exported), `${String(rule.alert)}: ${name}`);
      for (const list of expr.matchAll(/\b(?:by|without)\s*\(([^)]*)\)/g)) {
        assert.ok(/\bjob\b/.test(list[1]!) && /\binstance\b/.test(list[1]!), `${String(rule.alert)} aggregates away job or instance: ${list[0]}`);
      }
      assert.match(String(asMap(rule.labels).severity), /^(critical|warning)$/, String(rule.alert));
      assert.ok(asMap(rule.annotations).summary && asMap(rule.annotations).description, String(rule.alert));
    }
  });

  test('promtool test rules: every alert fires on trouble and stays quiet on health and blips (alerts.test.yml)', async () => {
    const tests = asList(asMap(parseYaml(read('docker/prometheus/alerts.test.yml'))).tests).flatMap((t) => asList(asMap(t).alert_rule_test).map(asMap));
    for (const name of alertNames) {
      const cases = tests.filter((c) => c.alertname === name);
      assert.ok(cases.some((c) => asList(c.exp_alerts).length > 0), `${name} is never expected to fire`);
      assert.ok(cases.some((c) => asList(c.exp_alerts).length === 0), `${name} is never expected to stay quiet`);
    }
    const tested = await promtool(['test', 'rules', testFile]);
    assert.equal(tested.code, 0, tested.output);
    assert.match(tested.output, /SUCCESS/);
  });

  test('promtool test rules fails when a rule no longer behaves as alerts.test.yml expects', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'sqp-alerts-'));
    try {
      await copyFile(testFile, join(dir, 'alerts.test.yml'));
      const original = read('docker/prometheus/alerts.yml');
      const mutations: Array<[string, string, string]> = [
        ['SwiftQuotaProxyUpstreamErrors', '[5m])) > 0.01', '[5m])) > 0.05'],
        ['SwiftQuotaProxyDown', 'for: 2m', 'for: 0m'],
        ['SwiftQuotaProxyReservationStuck', 'reservation_oldest_age_seconds > 3600', 'reservation_oldest_age_seconds > 36000'],
      ];
      for (const [alert, from, to] of mutations) {
        assert.ok(original.includes(from), from);
        await writeFile(join(dir, 'alerts.yml'), original.replace(from, to));
        const tested = await promtool(['test', 'rules', join(dir, 'alerts.test.yml')]);
        assert.notEqual(tested.code, 0, `${alert} mutated: ${tested.output}`);
        assert.match(tested.output, new RegExp(`alertname: ${alert}\\b`));
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('docker/proxy-server.conf and the swift service', () => {
  const config = loadConfig(join(DOCKER, 'proxy-server.conf'));
  const startScript = read('docker/swift/start.sh');

  test('loads without warnings, forwards to the swift service, and has the seed article levels', () => {
    assert.deepEqual(config.warnings, []);
    assert.equal(config.upstream.origin, 'http://swift:8080');
    const seed = loadConfig(join(ROOT, 'test', 'fixtures', 'seed-article.conf'));
    assert.deepEqual(Object.fromEntries(config.quota.levels.byLevel), Object.fromEntries(seed.quota.levels.byLevel));
    assert.ok(config.quota.service.kind === 'tempauth' && config.quota.service.user.groups.includes('.reseller_admin'));
  });

  test('has an ops listener on every address of the container, on another port than the client port', () => {
    // Without one, /metrics and /readyz are on the published client port and the proxy warns at start-up
    // (bind_ip 0.0.0.0 is not loopback). 0.0.0.0: Prometheus reaches it over the compose network, which a
    // loopback ops_bind_ip would not let it; compose.yaml keeps it off the host (checked above).
    assert.equal(config.bindIp, '0.0.0.0');
    assert.deepEqual(config.opsBind, { host: '0.0.0.0', port: 8090 });
    assert.equal(imageEnv.SWIFT_QUOTA_PROXY_LISTEN, `0.0.0.0:${config.bindPort}`, 'the image listens where the file says');
  });

  test('has exactly the tempauth users of docker/swift/start.sh', () => {
    const swiftUsers = [...startScript.matchAll(/^user_([^_\s]+)_(\S+) = (\S+)((?: \S+)*)$/gm)].map((m) => `${m[1]}:${m[2]} ${m[3]}${m[4]}`).sort();
    const proxyUsers = config.users.map((u) => `${u.account}:${u.user} ${[u.key, ...u.groups].join(' ')}`).sort();
    assert.deepEqual(swiftUsers, [
      'reseller:reseller reseller .reseller_admin',
      'system:root testpass .admin',
      'test:tester testing .admin',
    ]);
    assert.deepEqual(proxyUsers, swiftUsers);
  });

  test("swift's start script is valid bash and has the pipeline the proxy relies on, on port 8080", async () => {
    await run('bash', ['-n', join(DOCKER, 'swift', 'start.sh')]);
    await run('bash', ['-n', join(DOCKER, 'verify-image.sh')]);
    const pipeline = /^pipeline = (catch_errors .*proxy-server)$/m.exec(startScript)?.[1]?.split(' ') ?? [];
    for (const filter of ['healthcheck', 'cache', 'tempauth', 'copy', 'slo', 'dlo']) assert.ok(pipeline.includes(filter), filter);
    assert.match(startScript, /PROXY_PORT=\$\{SWIFT_PROXY_PORT:-8080\}/);
  });
});

describe('Dockerfile', () => {
  const build = dockerInstructions(dockerfile);
  const find = (keyword: string) => runtimeInstructions.filter((i) => i.keyword === keyword).map((i) => i.args);

  test('is multi-stage from Node 24 (LTS) bookworm-slim base images given as build arguments', () => {
    assert.ok(build.some((i) => i.keyword === 'ARG' && i.args === 'BUILD_IMAGE=node:24-bookworm-slim'));
    assert.ok(build.some((i) => i.keyword === 'ARG' && i.args === 'RUNTIME_IMAGE=node:24-bookworm-slim'));
    // The suite runs on the image's Node (test/helpers/node-runtime.ts), and package.json supports it.
    assert.equal(LTS_MAJOR, 24);
    const engines = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    assert.equal(engines, '>=22.12.0', 'the LTS lines 22 and 24 (Node 20 is past its end of life)');
    assert.deepEqual(build.filter((i) => i.keyword === 'FROM').map((i) => i.args), ['${BUILD_IMAGE} AS build', '${RUNTIME_IMAGE} AS runtime']);
    const runs = build.filter((i) => i.keyword === 'RUN').map((i) => i.args).join('\n');
    for (const step of ['npm ci', 'npm run build', 'npm prune --omit=dev']) assert.ok(runs.includes(step), step);
  });

  test('runs dist/src/main.js as uid 10001 on 8081 with the config path and listen address in the environment', () => {
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string> };
    assert.deepEqual(find('CMD'), [`["node", "${pkg.bin['swift-quota-proxy']}"]`]);
    assert.deepEqual(find('USER'), ['10001:10001']);
    assert.deepEqual(find('EXPOSE'), ['8081']);
    assert.deepEqual(find('STOPSIGNAL'), ['SIGTERM']);
    assert.equal(imageEnv.SWIFT_QUOTA_PROXY_CONFIG, '/etc/swift-quota-proxy/proxy-server.conf');
    assert.equal(imageEnv.SWIFT_QUOTA_PROXY_LISTEN, '0.0.0.0:8081');
    assert.match(find('HEALTHCHECK').join(), /\/healthz/);
  });

  test('docker/Dockerfile.prebuilt has the same runtime stage', () => {
    assert.notEqual(runtimeStage(dockerfile), '');
    assert.equal(runtimeStage(prebuilt), runtimeStage(dockerfile));
  });

  test('.dockerignore keeps the build context to what the build stage needs', () => {
    const ignored = read('.dockerignore').split('\n').map((l) => l.trim());
    for (const entry of ['**/node_modules', 'dist', '.git', 'test', 'docker', '.cache', '.scratch']) assert.ok(ignored.includes(entry), entry);
    for (const needed of ['src', 'package.json', 'package-lock.json', 'tsconfig.json']) assert.ok(!ignored.includes(needed), needed);
  });

  test('the HEALTHCHECK command exits 0 on a 200 from /healthz on the listen port, 1 otherwise', async () => {
    const healthcheck = find('HEALTHCHECK').join();
    const json = /CMD (\[.*\])$/.exec(healthcheck)?.[1];
    assert.ok(json, healthcheck);
    const [cmd, ...args] = JSON.parse(json) as string[];
    assert.equal(cmd, 'node');
    let status = 200;
    const paths: string[] = [];
    const server = http.createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(req.url === '/healthz' ? status : 404).end('ok');
    });
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const { port } = server.address() as AddressInfo;
    const probe = (listen: string) =>
      run(process.execPath, args, { env: { ...process.env, SWIFT_QUOTA_PROXY_LISTEN: listen } }).then(
        () => 0,
        (error: { code?: number }) => error.code ?? -1,
      );
    try {
      assert.equal(await probe(`0.0.0.0:${port}`), 0);
      status = 503;
      assert.equal(await probe(`0.0.0.0:${port}`), 1);
      server.close();
      assert.equal(await probe(`0.0.0.0:${port}`), 1, 'nothing listening');
      assert.deepEqual(paths, ['/healthz', '/healthz']);
    } finally {
      server.close();
    }
  });
});
