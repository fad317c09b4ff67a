/**
 * The checks start-up makes beyond reading the file, written once so that `--check-config` makes every one of
 * them too (main.ts calls loadCheckedConfig in both): a check that passes and a start that fails on the same file
 * is what this module is for. Each check is the closest one that changes nothing: a queue directory that does not
 * exist yet is not created (created by root, the service's user could not write it), a provider module is not
 * imported (importing runs its code). Keystone and Redis URLs are checked when the file is read (keystone.ts,
 * ledger.ts), so both paths have them.
 */
import { constants } from 'node:fs';
import { access, open, stat, unlink } from 'node:fs/promises';
import net from 'node:net';
import { dirname, join } from 'node:path';
import { ConfigError } from './errors.js';
import { loadConfig, PROXY_SECTION, type Config, type ConfigOverrides, type NotifierConfig } from './load.js';

export interface StartupCheckOptions {
  /**
   * Bind the listeners' addresses for a moment and let them go (--check-config only: start-up binds them for
   * real). A port in use is a warning, since a running proxy holds its own port while its file is checked; so is
   * a port this user may not bind (the service may run as another); an address this host lacks is an error.
   */
  readonly probeListeners?: boolean;
}

/** Reads the file and makes every start-up check; warnings of both come back in the config's `warnings`. */
export async function loadCheckedConfig(file: string, overrides: ConfigOverrides, options: StartupCheckOptions = {}): Promise<Config> {
  const config = loadConfig(file, overrides);
  const warnings = await checkStartup(config, options);
  return warnings.length === 0 ? config : Object.freeze({ ...config, warnings: Object.freeze([...config.warnings, ...warnings]) });
}

/** The start-up checks of a loaded config: throws a ConfigError for what would stop start-up, returns warnings. */
export async function checkStartup(config: Config, options: StartupCheckOptions = {}): Promise<string[]> {
  const warnings: string[] = [];
  for (const notifier of config.notifiers) await checkNotifier(notifier);
  if (options.probeListeners) {
    await probeListener(config, config.bindIp, config.bindPort, warnings);
    if (config.opsBind) await probeListener(config, config.opsBind.host, config.opsBind.port, warnings);
  }
  return warnings;
}

async function checkNotifier(notifier: NotifierConfig): Promise<void> {
  if (notifier.type === 'webhook') {
    const { file, line, section, key } = notifier.queueDirPlace;
    const problem = await queueDirProblem(notifier.queueDir);
    if (problem) throw new ConfigError(file, line, section, key, `cannot use ${notifier.queueDir} for the event queue: ${problem}`);
  } else if (notifier.type === 'module') {
    const { file, line, section, key } = notifier.place;
    const problem = await access(notifier.modulePath, constants.R_OK).then(() => undefined, (error: NodeJS.ErrnoException) => error.code);
    if (problem === 'ENOENT') throw new ConfigError(file, line, section, key, `provider module ${notifier.modulePath} does not exist`);
    if (problem) throw new ConfigError(file, line, section, key, `provider module ${notifier.modulePath} cannot be read: ${problem}`);
  }
}

/**
 * Why the event queue could not live in `dir`, as DiskQueue.open would find it (it creates the directory and
 * writes a probe file): an existing directory gets a probe file written and removed; a missing one needs its
 * nearest existing parent to be a directory this user may create entries in.
 */
async function queueDirProblem(dir: string): Promise<string | undefined> {
  const found = await stat(dir).catch((error: NodeJS.ErrnoException) => error);
  if (found instanceof Error) {
    if (found.code !== 'ENOENT') return found.message; // Node's message starts with the code
    return creatableProblem(dir);
  }
  if (!found.isDirectory()) return `ENOTDIR: ${dir} is not a directory`;
  const probe = join(dir, `.check-config-${process.pid}-${Date.now()}`);
  try {
    await (await open(probe, 'wx')).close();
    await unlink(probe);
    return undefined;
  } catch (error) {
    const { code, message } = error as NodeJS.ErrnoException;
    return `${code}: cannot write in it (${message})`;
  }
}

async function creatableProblem(dir: string): Promise<string | undefined> {
  for (let parent = dirname(dir), child = dir; parent !== child; child = parent, parent = dirname(parent)) {
    const found = await stat(parent).catch((error: NodeJS.ErrnoException) => error);
    if (found instanceof Error) {
      if (found.code === 'ENOENT') continue;
      return found.message;
    }
    if (!found.isDirectory()) return `ENOTDIR: ${parent} is not a directory`;
    const denied = await access(parent, constants.W_OK | constants.X_OK).then(() => undefined, (error: NodeJS.ErrnoException) => error);
    return denied ? `${denied.code}: ${dir} does not exist and cannot be created in ${parent}` : undefined;
  }
  return undefined;
}

/** Binds host:port and lets go: an address this host does not have, or may not bind, stops start-up. */
async function probeListener(config: Config, host: string, port: number, warnings: string[]): Promise<void> {
  if (port === 0) return;
  const error = await new Promise<NodeJS.ErrnoException | undefined>((resolve) => {
    const server = net.createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
  if (!error) return;
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (error.code === 'EADDRINUSE') {
    warnings.push(`${config.file}: [${PROXY_SECTION}] cannot listen on ${where} now: it is in use (by this proxy running, or by something else, which would stop start-up)`);
    return;
  }
  if (error.code === 'EACCES') {
    // The check may run as another user than the service (a port below 1024 needs root or CAP_NET_BIND_SERVICE).
    warnings.push(`${config.file}: [${PROXY_SECTION}] this user may not listen on ${where} (EACCES): start-up will fail unless the service runs with that right`);
    return;
  }
  throw new ConfigError(config.file, undefined, PROXY_SECTION, undefined, `cannot listen on ${where}: ${error.code ?? ''} ${error.message}`.trim());
}
