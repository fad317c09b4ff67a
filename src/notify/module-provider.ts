/**
 * Loads an operator's own provider module, the seed article's pattern: a default export with `send(event)`,
 * either an object or a class (constructed once with the section's other settings). Loaded at start-up;
 * anything wrong stops start-up with the file and line of the `module =` setting.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { ConfigError } from '../config/errors.js';
import type { NotifierConfig } from '../config/load.js';
import type { QuotaEvent } from './event.js';

type ModuleConfig = Extract<NotifierConfig, { type: 'module' }>;

export interface LoadedModule {
  send(event: QuotaEvent): unknown;
  close?(): unknown;
}

function failure(config: ModuleConfig, reason: string): ConfigError {
  const { file, line, section, key } = config.place;
  return new ConfigError(file, line, section, key, reason);
}

function isClass(value: unknown): value is new (options: Readonly<Record<string, string>>) => unknown {
  return typeof value === 'function' && typeof (value as { prototype?: { send?: unknown } }).prototype?.send === 'function';
}

export async function loadProviderModule(config: ModuleConfig): Promise<LoadedModule> {
  const where = config.modulePath;
  if (!existsSync(where)) throw failure(config, `provider module ${where} does not exist`);
  let loaded: { default?: unknown };
  try {
    loaded = (await import(pathToFileURL(where).href)) as { default?: unknown };
  } catch (error) {
    const hint = /\.[cm]?ts$/.test(where) ? ' (TypeScript modules load only under a TypeScript loader such as tsx; compile it to .js/.mjs)' : '';
    throw failure(config, `provider module ${where} cannot be loaded: ${(error as Error).message}${hint}`);
  }
  const exported = loaded.default;
  if (exported === undefined || exported === null) {
    throw failure(config, `provider module ${where} has no default export: export default { send(event) { ... } } or a class with send(event)`);
  }
  let instance: unknown = exported;
  if (isClass(exported)) {
    try {
      instance = new exported(config.options);
    } catch (error) {
      throw failure(config, `provider class in ${where} threw when constructed: ${(error as Error).message}`);
    }
  }
  const send = (instance as { send?: unknown }).send;
  if (typeof send !== 'function') {
    throw failure(config, `the default export of ${where} has no send(event) method`);
  }
  const close = (instance as { close?: unknown }).close;
  return {
    send: (event) => send.call(instance, event),
    ...(typeof close === 'function' ? { close: () => close.call(instance) } : {}),
  };
}
