/**
 * `[notify:<name>]` sections: where quota events go (stdout, a webhook with its disk queue, or a module).
 */
import { dirname, resolve } from 'node:path';
import { ConfigError } from './errors.js';
import type { IniDocument } from './ini.js';
import { section, type SectionReader } from './section-reader.js';

export const NOTIFY_SECTION_PREFIX = 'notify:';
export const DEFAULT_NOTIFY_TIMEOUT = 10; // seconds a provider may take per event
export const DEFAULT_QUEUE_MAX_BYTES = 64 * 1024 ** 2;
export const DEFAULT_RETRY_MIN = 1; // seconds before the first webhook retry; doubles up to retry_max
export const DEFAULT_RETRY_MAX = 300;

/** Where a setting was read, for errors found after the config was loaded (a provider module that fails). */
export interface ConfigPlace {
  readonly file: string;
  readonly line: number | undefined;
  readonly section: string;
  readonly key: string;
}

interface NotifierBase {
  readonly name: string;
  /** Seconds one delivery may take before it counts as failed. */
  readonly timeoutSeconds: number;
}

export type NotifierConfig =
  | (NotifierBase & { readonly type: 'stdout' })
  | (NotifierBase & {
      readonly type: 'webhook';
      readonly url: URL;
      readonly bearerToken?: string;
      /**
       * Shared secret: each delivery is signed. `standard`: Standard Webhooks (webhook-id, webhook-timestamp,
       * webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">; a `whsec_<base64>` secret is the
       * key's bytes, any other string the key as it is); `legacy`: `X-Quota-Signature: sha256=<HMAC-SHA256 hex of
       * the body>`, which a captured delivery can be replayed against; `both` while receivers move over.
       */
      readonly secret?: string;
      readonly signature: 'standard' | 'legacy' | 'both';
      readonly queueDir: string;
      /** Where queue_dir is set, for a start-up error when the directory cannot be used. */
      readonly queueDirPlace: ConfigPlace;
      readonly queueMaxBytes: number;
      readonly retryMinSeconds: number;
      readonly retryMaxSeconds: number;
    })
  | (NotifierBase & {
      readonly type: 'module';
      /** Absolute path of the module (relative paths are taken from the config file's directory). */
      readonly modulePath: string;
      readonly place: ConfigPlace;
      /** The section's other keys, given to a provider class's constructor. */
      readonly options: Readonly<Record<string, string>>;
    });

const WEBHOOK_KEYS = ['type', 'url', 'bearer_token', 'secret', 'signature', 'timeout', 'queue_dir', 'queue_max_bytes', 'retry_min', 'retry_max'];

function parseNotifier(reader: SectionReader, file: string): NotifierConfig {
  const name = reader.name.slice(NOTIFY_SECTION_PREFIX.length).trim();
  if (name === '') reader.fail(undefined, 'needs a name: [notify:<name>]');
  const type = reader.has('type') ? reader.oneOf('type', 'stdout', ['stdout', 'webhook', 'module'] as const) : reader.fail(undefined, 'needs type = stdout, webhook or module');
  const timeoutSeconds = reader.integer('timeout', DEFAULT_NOTIFY_TIMEOUT, 1, 3600, 'seconds');
  switch (type) {
    case 'stdout':
      return Object.freeze({ name, type, timeoutSeconds });
    case 'webhook':
      return parseWebhook(reader, file, { name, type, timeoutSeconds });
    case 'module':
      return parseModule(reader, file, { name, type, timeoutSeconds });
  }
}

/** `type = webhook`: POSTs to url, signed or with a bearer token, through a disk queue (queue_dir). */
function parseWebhook(reader: SectionReader, file: string, base: NotifierBase & { readonly type: 'webhook' }): NotifierConfig {
  for (const key of reader.keys()) {
    if (!WEBHOOK_KEYS.includes(key)) reader.fail(key, `is not a webhook setting (known: ${WEBHOOK_KEYS.join(', ')})`);
  }
  const urlText = reader.raw('url') ?? reader.fail(undefined, 'needs url = http(s)://... (where events are POSTed)');
  let url: URL;
  try {
    url = new URL(urlText.trim());
  } catch {
    reader.fail('url', `must be an http:// or https:// URL, got "${urlText}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') reader.fail('url', `must be an http:// or https:// URL, got "${urlText}"`);
  const queueDir = reader.raw('queue_dir')?.trim() || reader.fail(undefined, 'needs queue_dir = <directory> (events wait there until delivered)');
  const bearerToken = reader.raw('bearer_token')?.trim();
  const secret = reader.raw('secret')?.trim();
  if (secret?.startsWith('whsec_') && !/^whsec_(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(secret)) {
    reader.fail('secret', 'a whsec_ secret is base64 after the prefix (as Standard Webhooks tools issue them)');
  }
  const signatureScheme = reader.oneOf('signature', 'standard', ['standard', 'legacy', 'both'] as const);
  const retryMinSeconds = reader.duration('retry_min', DEFAULT_RETRY_MIN, 1);
  const retryMaxSeconds = reader.duration('retry_max', DEFAULT_RETRY_MAX, 1);
  if (retryMaxSeconds < retryMinSeconds) reader.fail('retry_max', `must be at least retry_min (${retryMinSeconds} s)`);
  return Object.freeze({
    ...base,
    url,
    ...(bearerToken ? { bearerToken } : {}),
    ...(secret ? { secret } : {}),
    signature: signatureScheme,
    queueDir: resolve(dirname(resolve(file)), queueDir),
    queueDirPlace: Object.freeze({ file, line: reader.line('queue_dir'), section: reader.name, key: 'queue_dir' }),
    queueMaxBytes: reader.size('queue_max_bytes', DEFAULT_QUEUE_MAX_BYTES, 4096),
    retryMinSeconds,
    retryMaxSeconds,
  });
}

/** `type = module`: a module of the operator's (relative to the config file), given the section's other keys. */
function parseModule(reader: SectionReader, file: string, base: NotifierBase & { readonly type: 'module' }): NotifierConfig {
  const modulePath = reader.raw('module')?.trim() || reader.fail(undefined, 'needs module = <path of a .js/.mjs module whose default export has send(event)>');
  const options: Record<string, string> = {};
  for (const key of reader.keys()) if (!['type', 'module', 'timeout'].includes(key)) options[key] = reader.string(key, '');
  return Object.freeze({
    ...base,
    modulePath: resolve(dirname(resolve(file)), modulePath),
    place: Object.freeze({ file, line: reader.line('module'), section: reader.name, key: 'module' }),
    options: Object.freeze(options),
  });
}

/** Every `[notify:<name>]` section of the file, in file order. */
export function parseNotifiers(doc: IniDocument, file: string): NotifierConfig[] {
  const notifiers = Object.keys(doc.sections)
    .filter((name) => name.startsWith(NOTIFY_SECTION_PREFIX))
    .map((name) => parseNotifier(section(doc, name)!, file));
  refuseSharedQueueDirs(notifiers);
  return notifiers;
}

/**
 * Two webhooks of one config on one queue_dir would share its delivery lease: the holder sends every event in
 * the directory to its own url, so one receiver gets both's events and the other none. (Processes of one
 * provider, workers or proxies, share a queue_dir on purpose; that is the lease's job, not this.) Compared as
 * resolved paths; two names of one directory through a symlink are not caught here.
 */
function refuseSharedQueueDirs(notifiers: readonly NotifierConfig[]): void {
  const byDir = new Map<string, ConfigPlace>();
  for (const notifier of notifiers) {
    if (notifier.type !== 'webhook') continue;
    const first = byDir.get(notifier.queueDir);
    const { file, line, section: name, key } = notifier.queueDirPlace;
    if (first) {
      const where = `${first.file}:${first.line ?? '?'}`;
      throw new ConfigError(file, line, name, key, `is ${notifier.queueDir}, the queue of [${first.section}] too ([${first.section}] ${first.key} at ${where}): each webhook needs a queue_dir of its own (the process delivering a queue sends all its events to its own url)`);
    }
    byDir.set(notifier.queueDir, notifier.queueDirPlace);
  }
}
