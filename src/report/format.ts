/**
 * The usage report as text: one aligned table per account, sizes in binary units, like `repquota -s`. Pure.
 */
import type { AccountReport, Measure, UsageReport } from './collect.js';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function humanBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value >= 100 ? Math.round(value) : value.toFixed(1)} ${UNITS[unit]}`;
}

export function humanDuration(seconds: number): string {
  const d = Math.floor(seconds / 86_400);
  const h = Math.floor((seconds % 86_400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  const s = seconds % 60;
  if (d > 0) return `${d}d${h > 0 ? `${h}h` : ''}`;
  if (h > 0) return `${h}h${m > 0 ? `${m}m` : ''}`;
  if (m > 0) return `${m}m${s > 0 ? `${s}s` : ''}`;
  return `${s}s`;
}

function graceCell(measure: Measure): string {
  if (!measure.grace) return '-';
  return measure.grace.state === 'expired' ? 'expired' : `${humanDuration(measure.grace.remaining_seconds)} left`;
}

/** Columns: left-aligned where `left[i]`, right-aligned otherwise, two spaces apart. */
export function alignTable(rows: readonly (readonly string[])[], left: readonly boolean[]): string[] {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => [...(row[column] ?? '')].length)));
  return rows.map((row) =>
    row
      .map((cell, column) => (left[column] ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!)))
      .join('  ')
      .trimEnd(),
  );
}

const count = (value: number | null) => (value === null ? '-' : String(value));
const bytes = (value: number | null) => (value === null ? '-' : humanBytes(value));

/** An account total's limits beside it, when it has any: the hard limit, and a soft one with its grace state. */
function totalLimits(measure: Measure, show: (value: number | null) => string): string {
  if (measure.hard === null && measure.soft === null) return '';
  if (measure.soft === null) return ` (hard ${show(measure.hard)})`;
  return ` (soft ${show(measure.soft)}, hard ${show(measure.hard)}, grace ${graceCell(measure)})`;
}

function accountText(account: AccountReport): string[] {
  if (!account.exists) return [`*** ${account.account}: no such account in Swift (level ${account.level})`];
  const c = account.containers;
  const lines = [
    `*** ${account.account}  level ${account.level}  containers ${c.used} (soft ${count(c.soft)}, hard ${count(c.hard)}, grace ${graceCell(c)})  ` +
      `objects ${account.objects_used}${totalLimits(account.total_objects, count)}  ` +
      `bytes ${humanBytes(account.bytes_used)}${totalLimits(account.total_bytes, bytes)}  hits ${account.hits}`,
  ];
  if (account.container_list.length === 0) return [...lines, '    (no containers)'];
  const header = ['Container', 'Objects', 'soft', 'hard', 'grace', 'Bytes', 'soft', 'hard', 'grace', 'Hits'];
  const rows = account.container_list.map((container) => [
    container.name,
    count(container.objects.used),
    count(container.objects.soft),
    count(container.objects.hard),
    graceCell(container.objects),
    bytes(container.bytes.used),
    bytes(container.bytes.soft),
    bytes(container.bytes.hard),
    graceCell(container.bytes),
    String(container.hits),
  ]);
  const left = [true, false, false, false, true, false, false, false, true, false];
  return [...lines, ...alignTable([header, ...rows], left).map((line) => `    ${line}`)];
}

export function formatReport(report: UsageReport): string {
  const lines = [`Quota report generated ${report.generated}; grace period ${humanDuration(report.grace_period_seconds)}`];
  for (const account of report.accounts) lines.push('', ...accountText(account));
  return `${lines.join('\n')}\n`;
}
