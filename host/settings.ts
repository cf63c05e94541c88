/**
 * App settings and host.json, read the way Core Tools (`func start`) and the Functions host do.
 *
 * - `local.settings.json` `Values` become environment variables, but a variable already set in the
 *   process environment wins (Core Tools does not overwrite the environment).
 * - host.json may be overridden per value with `AzureFunctionsJobHost__path__to__value` settings
 *   (https://learn.microsoft.com/azure/azure-functions/functions-host-json#override-hostjson-values).
 * - `extensions.queues` defaults and limits follow QueuesOptions.cs of the WebJobs storage extension.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { LocalSettingsError, readLocalSettingsFile, type LocalSettings } from '../src/cli/localSettings';

export type Settings = Record<string, string>;

export class HostConfigError extends Error {
  override readonly name = 'HostConfigError';
}

export interface LocalSettingsFile {
  readonly values: Settings;
  /** `Host.LocalHttpPort` of local.settings.json, if any. */
  readonly localHttpPort?: number;
  readonly path?: string;
}

/**
 * Reads `local.settings.json` if present, with the CLI's reader (src/cli/localSettings.ts); a missing
 * file is normal (settings then come from the environment).
 */
export function readLocalSettings(rootDir: string): LocalSettingsFile {
  let local: LocalSettings;
  try {
    local = readLocalSettingsFile(rootDir);
  } catch (error) {
    if (!(error instanceof LocalSettingsError)) throw error;
    throw new HostConfigError(
      error.code === 'encrypted' ? `${error.message}; the local host only reads plain settings` : error.message,
    );
  }
  if (local.path === undefined) return { values: {} };
  let localHttpPort: number | undefined;
  if (isRecord(local.host) && local.host.LocalHttpPort !== undefined) {
    const port = Number(local.host.LocalHttpPort);
    if (!Number.isInteger(port) || port < 0 || port > 65535)
      throw new HostConfigError(`${local.path}: Host.LocalHttpPort must be a port number`);
    localHttpPort = port;
  }
  return { values: local.values, localHttpPort, path: local.path };
}

/**
 * The effective settings: local.settings.json < process environment < explicit overrides.
 * `undefined` in overrides removes a setting.
 */
export function mergeSettings(
  local: Settings,
  env: NodeJS.ProcessEnv,
  overrides: Record<string, string | undefined> = {},
): Settings {
  const result: Settings = { ...local };
  for (const [key, value] of Object.entries(env)) if (value !== undefined) result[key] = value;
  for (const [key, value] of Object.entries(overrides)) {
    if (value === undefined) delete result[key];
    else result[key] = value;
  }
  return result;
}

/** Tracks changes to `process.env` so that a programmatic host can put it back when it closes. */
export class EnvScope {
  readonly #previous = new Map<string, string | undefined>();

  set(key: string, value: string | undefined): void {
    if (!this.#previous.has(key)) this.#previous.set(key, process.env[key]);
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }

  /** Sets every key whose value differs from the current environment. */
  apply(settings: Settings): void {
    for (const [key, value] of Object.entries(settings)) {
      if (process.env[key] !== value) this.set(key, value);
    }
  }

  restore(): void {
    for (const [key, value] of this.#previous) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
    this.#previous.clear();
  }
}

// --- host.json ------------------------------------------------------------------------------------

export type HostJson = Record<string, unknown>;

export function readHostJson(rootDir: string, settings: Settings = {}): HostJson {
  const file = path.join(rootDir, 'host.json');
  if (!existsSync(file)) {
    throw new HostConfigError(
      `Unable to find host.json in ${rootDir}; the function app root must contain one (like func start)`,
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(stripBom(readFileSync(file, 'utf8')));
  } catch (error) {
    throw new HostConfigError(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (!isRecord(parsed)) throw new HostConfigError(`${file} must contain a JSON object`);
  return applyHostJsonOverrides(parsed, settings);
}

const HOST_OVERRIDE_PREFIX = 'azurefunctionsjobhost__';

/** Applies `AzureFunctionsJobHost__a__b=value` settings; keys match case-insensitively like .NET configuration. */
export function applyHostJsonOverrides(hostJson: HostJson, settings: Settings): HostJson {
  const result = structuredClone(hostJson);
  for (const [key, value] of Object.entries(settings)) {
    if (!key.toLowerCase().startsWith(HOST_OVERRIDE_PREFIX)) continue;
    const parts = key.slice(HOST_OVERRIDE_PREFIX.length).split('__').filter(Boolean);
    if (parts.length === 0) continue;
    let node: Record<string, unknown> = result;
    for (const [i, part] of parts.entries()) {
      const existing = Object.keys(node).find((k) => k.toLowerCase() === part.toLowerCase()) ?? part;
      if (i === parts.length - 1) {
        node[existing] = value;
      } else {
        if (!isRecord(node[existing])) node[existing] = {};
        node = node[existing] as Record<string, unknown>;
      }
    }
  }
  return result;
}

/** Case-insensitive property lookup along a path, as .NET configuration binding does. */
export function getPath(obj: unknown, ...keys: string[]): unknown {
  let node = obj;
  for (const key of keys) {
    if (!isRecord(node)) return undefined;
    const match = Object.keys(node).find((k) => k.toLowerCase() === key.toLowerCase());
    if (match === undefined) return undefined;
    node = node[match];
  }
  return node;
}

/**
 * Parses a .NET TimeSpan as written in host.json: `hh:mm:ss`, `hh:mm:ss.fffffff`, `d.hh:mm:ss[.f]`.
 * Returns milliseconds.
 */
export function parseTimeSpan(raw: unknown, name: string): number {
  if (typeof raw === 'number' && Number.isFinite(raw)) {
    // A bare number is how host.json v1 spelled milliseconds; accept it rather than guess seconds.
    return raw;
  }
  if (typeof raw !== 'string')
    throw new HostConfigError(`${name} must be a TimeSpan string like "00:00:30" (got ${JSON.stringify(raw)})`);
  const match = /^\s*(-)?(?:(\d+)\.)?(\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,7}))?)?\s*$/.exec(raw);
  if (!match) throw new HostConfigError(`${name} must be a TimeSpan like "00:00:30" or "00:00:00.500" (got "${raw}")`);
  const [, sign, days, hours, minutes, seconds, fraction] = match;
  const h = Number(hours);
  const m = Number(minutes);
  const s = Number(seconds ?? 0);
  if (h > 23 || m > 59 || s > 59) throw new HostConfigError(`${name}: "${raw}" is out of range`);
  const fractionMs = fraction ? Number(`0.${fraction}`) * 1000 : 0;
  const total = ((Number(days ?? 0) * 24 + h) * 60 + m) * 60_000 + s * 1000 + fractionMs;
  return sign ? -total : total;
}

export type QueueMessageEncoding = 'base64' | 'none';

export interface QueueOptions {
  readonly batchSize: number;
  readonly newBatchThreshold: number;
  readonly maxPollingIntervalMs: number;
  readonly visibilityTimeoutMs: number;
  readonly maxDequeueCount: number;
  readonly messageEncoding: QueueMessageEncoding;
}

/** QueuesOptions.MaxBatchSize */
export const MAX_BATCH_SIZE = 32;
/** QueuePollingIntervals.Minimum */
export const MIN_POLLING_INTERVAL_MS = 100;

function toInteger(raw: unknown, name: string): number {
  const value = typeof raw === 'string' ? Number(raw.trim()) : raw;
  if (typeof value !== 'number' || !Number.isInteger(value))
    throw new HostConfigError(`${name} must be a whole number (got ${JSON.stringify(raw)})`);
  return value;
}

/**
 * `extensions.queues` with the host's defaults. `development` selects the 2 s default
 * maxPollingInterval that the host uses when AZURE_FUNCTIONS_ENVIRONMENT is Development (func start);
 * otherwise the default is 1 minute.
 */
export function resolveQueueOptions(hostJson: HostJson, development: boolean): QueueOptions {
  const q = getPath(hostJson, 'extensions', 'queues');
  const get = (key: string): unknown => getPath(q, key);
  const prefix = 'host.json extensions.queues.';

  const batchSize = get('batchSize') === undefined ? 16 : toInteger(get('batchSize'), `${prefix}batchSize`);
  if (batchSize <= 0) throw new HostConfigError(`${prefix}batchSize must be greater than zero`);
  if (batchSize > MAX_BATCH_SIZE)
    throw new HostConfigError(`${prefix}batchSize must not be greater than ${MAX_BATCH_SIZE}`);

  const newBatchThreshold =
    get('newBatchThreshold') === undefined
      ? Math.floor(batchSize / 2)
      : toInteger(get('newBatchThreshold'), `${prefix}newBatchThreshold`);
  if (newBatchThreshold < 0) throw new HostConfigError(`${prefix}newBatchThreshold must not be negative`);

  const maxPollingIntervalMs =
    get('maxPollingInterval') === undefined
      ? development
        ? 2_000
        : 60_000
      : parseTimeSpan(get('maxPollingInterval'), `${prefix}maxPollingInterval`);
  if (maxPollingIntervalMs < MIN_POLLING_INTERVAL_MS)
    throw new HostConfigError(`${prefix}maxPollingInterval must not be less than 00:00:00.1`);

  const visibilityTimeoutMs =
    get('visibilityTimeout') === undefined ? 0 : parseTimeSpan(get('visibilityTimeout'), `${prefix}visibilityTimeout`);
  if (visibilityTimeoutMs < 0) throw new HostConfigError(`${prefix}visibilityTimeout must not be negative`);

  const maxDequeueCount =
    get('maxDequeueCount') === undefined ? 5 : toInteger(get('maxDequeueCount'), `${prefix}maxDequeueCount`);
  if (maxDequeueCount <= 0) throw new HostConfigError(`${prefix}maxDequeueCount must be greater than zero`);

  const encodingRaw = get('messageEncoding');
  let messageEncoding: QueueMessageEncoding = 'base64';
  if (encodingRaw !== undefined) {
    const lower = String(encodingRaw).trim().toLowerCase();
    if (lower !== 'base64' && lower !== 'none')
      throw new HostConfigError(
        `${prefix}messageEncoding must be "base64" or "none" (got ${JSON.stringify(encodingRaw)})`,
      );
    messageEncoding = lower;
  }

  return { batchSize, newBatchThreshold, maxPollingIntervalMs, visibilityTimeoutMs, maxDequeueCount, messageEncoding };
}

/** `extensions.http.routePrefix`, default "api"; an empty string means no prefix. */
export function resolveRoutePrefix(hostJson: HostJson): string {
  const raw = getPath(hostJson, 'extensions', 'http', 'routePrefix');
  if (raw === undefined || raw === null) return 'api';
  return String(raw).replace(/^\/+|\/+$/g, '');
}

/** host.json `functions`: the only functions to run, if present. */
export function resolveFunctionAllowList(hostJson: HostJson): string[] | undefined {
  const raw = getPath(hostJson, 'functions');
  return Array.isArray(raw) ? raw.map(String) : undefined;
}

/** `logging.logLevel.default` of host.json, if set. */
export function resolveHostLogLevel(hostJson: HostJson): string | undefined {
  const raw = getPath(hostJson, 'logging', 'logLevel', 'default');
  return typeof raw === 'string' ? raw : undefined;
}

// --- binding expressions and connections ----------------------------------------------------------

/**
 * Resolves `%SettingName%` in binding properties (queue names), like the host's INameResolver.
 * An unknown setting is an indexing error for that function.
 */
export function resolveAppSettingExpressions(value: string, settings: Settings): string {
  return value.replace(/%([^%]+)%/g, (_whole, name: string) => {
    const resolved = lookupSetting(settings, name);
    if (resolved === undefined) throw new HostConfigError(`'%${name}%' does not resolve to a value.`);
    return resolved;
  });
}

/** Exact setting lookup; app settings are case-insensitive on Windows but not on Linux, so exact first. */
export function lookupSetting(settings: Settings, name: string): string | undefined {
  if (Object.hasOwn(settings, name)) return settings[name];
  const lower = name.toLowerCase();
  const key = Object.keys(settings).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : settings[key];
}

export type StorageConnection =
  | { readonly kind: 'connectionString'; readonly settingName: string; readonly connectionString: string }
  | {
      readonly kind: 'identity';
      readonly settingName: string;
      readonly queueServiceUri: string;
      readonly credential?: string;
      readonly clientId?: string;
    };

/**
 * Resolves a binding's `connection` the way the storage extension does: an empty name means
 * AzureWebJobsStorage; a name is looked up as is, then with the `AzureWebJobs` prefix; an exact
 * connection-string setting wins over `<name>__queueServiceUri` / `__serviceUri` / `__accountName`.
 */
export function resolveStorageConnection(connection: string | undefined, settings: Settings): StorageConnection {
  const names = !connection ? ['AzureWebJobsStorage'] : [connection, `AzureWebJobs${connection}`];
  for (const name of names) {
    const value = lookupSetting(settings, name)?.trim();
    if (value) return { kind: 'connectionString', settingName: name, connectionString: value };
    const section = (key: string): string | undefined =>
      lookupSetting(settings, `${name}__${key}`)?.trim() || undefined;
    const accountName = section('accountName');
    const queueServiceUri =
      section('queueServiceUri') ??
      section('serviceUri') ??
      (accountName ? `https://${accountName}.queue.core.windows.net` : undefined);
    if (queueServiceUri) {
      return {
        kind: 'identity',
        settingName: name,
        queueServiceUri,
        credential: section('credential'),
        clientId: section('clientId'),
      };
    }
  }
  const shown = names[names.length - 1] ?? 'AzureWebJobsStorage';
  throw new HostConfigError(
    `Storage account connection string '${shown}' does not exist. Make sure that it is a defined App Setting.`,
  );
}

export function isDevelopmentStorage(connectionString: string | undefined): boolean {
  return /^\s*UseDevelopmentStorage\s*=\s*true\s*(;|$)/i.test(connectionString ?? '');
}

function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
