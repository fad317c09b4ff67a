/**
 * `swift-quota-proxy accounts …`: quota administration from the command line, in the habits of setquota,
 * edquota -p, repquota and radosgw-admin quota set, read from and written to Swift as the service identity (a
 * reseller admin); the proxy need not run. Running proxies read a change with their next reading of the account
 * (within cache_timeout).
 *
 *   accounts show ACCOUNT [--json]
 *   accounts set [--level L | --clear-level] [--limit KIND=N]... [--clear KIND]... [--dry-run] [--create] [--file F | -] [ACCOUNT...]
 *   accounts copy FROM TO... [--dry-run] [--create]
 *   accounts list [--level L] [--near RATIO] [--sort name|usage] [--json]
 */
import { readFile } from 'node:fs/promises';
import { text } from 'node:stream/consumers';
import { Agent } from 'undici';
import { createMetrics } from '../metrics.js';
import { SwiftClient as Client } from '../swift/client.js';
import { parseArgs } from 'node:util';
import type { Config } from '../config/load.js';
import { QUOTA_KINDS, type QuotaKind } from '../config/quota-levels.js';
import { accountName } from '../report/collect.js';
import { inBatches, knownAccounts, nearest, readSettings, type AccountSettings } from './accounts.js';
import { applyChange, changedKeys, changeProblem, copyOf, readStored, type Change, type ChangeResult } from './changes.js';
import { announceForgets } from '../quota/ledger/forget-channel.js';

export const ACCOUNTS_USAGE = `accounts show ACCOUNT [--json]
       accounts set [--level L | --clear-level] [--limit KIND=N]... [--clear KIND]... [--dry-run] [--create] [--file F | -] [ACCOUNT...]
       accounts copy FROM TO... [--dry-run] [--create]
       accounts list [--level L] [--near RATIO] [--sort name|usage] [--json]`;

/** A mistake in the command line: printed with the usage, exit 2. */
export class AccountsUsageError extends Error {}

type Parsed = ReturnType<typeof parse>;

function parse(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      json: { type: 'boolean' },
      level: { type: 'string' },
      'clear-level': { type: 'boolean' },
      limit: { type: 'string', multiple: true },
      clear: { type: 'string', multiple: true },
      'dry-run': { type: 'boolean' },
      create: { type: 'boolean' },
      file: { type: 'string' },
      near: { type: 'string' },
      sort: { type: 'string' },
    },
    strict: true,
  });
}

/** Runs one `accounts` subcommand; resolves with what to print. */
export async function runAccounts(config: Config, swift: Client, argv: string[], stdin: () => Promise<string>): Promise<string> {
  let parsed: Parsed;
  try {
    parsed = parse(argv);
  } catch (error) {
    throw new AccountsUsageError((error as Error).message);
  }
  const [sub, ...names] = parsed.positionals;
  const accounts = names.map((name) => accountName(config, name));
  switch (sub) {
    case 'show':
      if (accounts.length !== 1) throw new AccountsUsageError('show takes one account');
      return show(await readSettings(config, swift, accounts[0]!), parsed.values.json === true);
    case 'set':
      return set(config, swift, parsed, [...accounts, ...(await fromFile(config, parsed.values.file, stdin))]);
    case 'copy': {
      if (accounts.length < 2) throw new AccountsUsageError('copy takes a source account and at least one target');
      const source = await readStored(swift, accounts[0]!);
      if (!source.exists) return `${accounts[0]}: does not exist in Swift\n`;
      return report(await announced(config, await applyChange(swift, accounts.slice(1), copyOf(source), options(parsed)), options(parsed).dryRun), parsed.values['dry-run'] === true);
    }
    case 'list':
      return list(config, swift, parsed);
    default:
      throw new AccountsUsageError(`unknown accounts command "${sub ?? ''}"`);
  }
}

const options = (parsed: Parsed) => ({ dryRun: parsed.values['dry-run'] === true, create: parsed.values.create === true });

async function set(config: Config, swift: Client, parsed: Parsed, accounts: string[]): Promise<string> {
  const change = changeOf(parsed);
  const problem = changeProblem(config, change);
  if (problem) throw new AccountsUsageError(problem);
  if (change.level === undefined && Object.keys(change.overrides).length === 0) throw new AccountsUsageError('set needs --level, --clear-level, --limit or --clear');
  if (accounts.length === 0) throw new AccountsUsageError('set needs accounts (arguments, --file F, or --file - for stdin)');
  return report(await announced(config, await applyChange(swift, [...new Set(accounts)], change, options(parsed)), options(parsed).dryRun), parsed.values['dry-run'] === true);
}

/** Running proxies on the config's Redis ledger drop their readings of the changed accounts (forget-channel.ts). */
async function announced(config: Config, results: ChangeResult[], dryRun: boolean): Promise<ChangeResult[]> {
  if (!dryRun) await announceForgets(config, changedKeys(results));
  return results;
}

function changeOf(parsed: Parsed): Change {
  const { values } = parsed;
  if (values.level !== undefined && values['clear-level']) throw new AccountsUsageError('--level and --clear-level together');
  const overrides: Partial<Record<QuotaKind, number | null>> = {};
  for (const item of values.limit ?? []) {
    const match = /^([a-z_]+)=([0-9]+)$/.exec(item);
    if (!match || !isKind(match[1]!)) throw new AccountsUsageError(`--limit ${item}: KIND=N with KIND one of ${QUOTA_KINDS.join(', ')} and N a whole number`);
    overrides[match[1]] = Number(match[2]);
  }
  for (const kind of values.clear ?? []) {
    if (!isKind(kind)) throw new AccountsUsageError(`--clear ${kind}: one of ${QUOTA_KINDS.join(', ')}`);
    overrides[kind] = null;
  }
  return { ...(values.level !== undefined ? { level: values.level } : values['clear-level'] ? { level: null } : {}), overrides };
}

const isKind = (name: string): name is QuotaKind => (QUOTA_KINDS as readonly string[]).includes(name);

/** Accounts one per line (blank lines and `#` comments skipped) from a file, or stdin for `-`. */
async function fromFile(config: Config, file: string | undefined, stdin: () => Promise<string>): Promise<string[]> {
  if (file === undefined) return [];
  const text = file === '-' ? await stdin() : await readFile(file, 'utf8');
  return text.split('\n').map((line) => line.replace(/#.*/, '').trim()).filter((line) => line !== '').map((name) => accountName(config, name));
}

function report(results: readonly ChangeResult[], dryRun: boolean): string {
  const lines = results.map((r) => `${r.account}: ${r.outcome === 'changed' ? r.changes.join(', ') : r.outcome === 'missing' ? 'does not exist in Swift (left alone; --create makes it)' : 'unchanged'}`);
  const count = (outcome: ChangeResult['outcome']) => results.filter((r) => r.outcome === outcome).length;
  lines.push(`${results.length} accounts: ${count('changed')} ${dryRun ? 'would change' : 'changed'}, ${count('unchanged')} unchanged, ${count('missing')} missing${dryRun ? ' (dry run: nothing written)' : ''}`);
  return `${lines.join('\n')}\n`;
}

function show(settings: AccountSettings, json: boolean): string {
  if (json) return `${JSON.stringify(settings, null, 2)}\n`;
  if (!settings.exists) return `${settings.account}: does not exist in Swift\n`;
  const stored = settings.storedLevel === undefined ? '' : settings.storedLevel === settings.level ? '' : ` (stored "${settings.storedLevel}" is not configured)`;
  const overrides = Object.entries(settings.overrides).map(([kind, value]) => `${kind}=${value}`).join(' ') || '(none)';
  const rows = QUOTA_KINDS.map((kind) => `  ${kind.padEnd(22)} ${String(settings.limits[kind] ?? 'unlimited').padStart(16)}`);
  const { containers, objects, bytes } = settings.usage;
  return `${settings.account}\n  level ${settings.level}${stored}\n  overrides ${overrides}\n  limits:\n${rows.join('\n')}\n  usage: ${containers} containers, ${objects} objects, ${bytes} bytes\n`;
}

async function list(config: Config, swift: Client, parsed: Parsed): Promise<string> {
  const { values } = parsed;
  const near = values.near === undefined ? undefined : Number(values.near);
  if (near !== undefined && !(near >= 0)) throw new AccountsUsageError(`--near ${values.near}: a ratio such as 0.9`);
  if (values.sort !== undefined && values.sort !== 'name' && values.sort !== 'usage') throw new AccountsUsageError('--sort name or --sort usage');
  let all = await inBatches(await knownAccounts(config, swift), (account) => readSettings(config, swift, account));
  all = all.filter((s) => s.exists && (values.level === undefined || s.level === values.level) && (near === undefined || nearest(s).share >= near));
  if (values.sort === 'usage') all.sort((a, b) => nearest(b).share - nearest(a).share || a.account.localeCompare(b.account));
  if (values.json) return `${JSON.stringify(all.map((s) => ({ ...s, nearest: nearest(s) })), null, 2)}\n`;
  const rows = all.map((s) => {
    const { kind, share } = nearest(s);
    return `${s.account.padEnd(32)} ${s.level.padEnd(10)} ${String(s.usage.containers).padStart(6)} ${String(s.usage.objects).padStart(10)} ${String(s.usage.bytes).padStart(16)} ${kind ? `${(share * 100).toFixed(1)}% of ${kind}` : '-'}`;
  });
  return `${['account'.padEnd(32), 'level'.padEnd(10), 'conts'.padStart(6), 'objects'.padStart(10), 'bytes'.padStart(16), 'nearest limit'].join(' ')}\n${rows.join('\n')}${rows.length ? '\n' : ''}`;
}

/** The command as main.ts runs it: its own connections to Swift as the service identity, stdin for `--file -`. */
export async function runAccountsCli(config: Config, argv: string[]): Promise<string> {
  if (argv.includes('--help') || argv.length === 0) return `usage: swift-quota-proxy --config FILE ${ACCOUNTS_USAGE}\n`;
  return withServiceClient(config, (swift) => runAccounts(config, swift, argv, () => text(process.stdin)));
}

/** Runs `use` with a client of Swift as the service identity, on connections of its own closed after. */
export async function withServiceClient<T>(config: Config, use: (swift: Client) => Promise<T>): Promise<T> {
  const agent = new Agent({ connections: 16 });
  try {
    return await use(new Client({ upstream: config.upstream, dispatcher: agent, service: config.quota.service, metrics: createMetrics() }));
  } finally {
    await agent.close();
  }
}
