/**
 * The CLI's settings, read like the app reads them: environment variables first, then
 * `local.settings.json` `Values` in the current directory (the local host's precedence). Only the
 * storage settings and OUTBOUND_QUEUE are read; the CLI needs no bot credentials.
 *
 * The storage rules follow `loadStorage` in src/config.ts (not exported), and a test checks that
 * both agree: a connection string wins over the identity-based `AzureWebJobsStorage__*` settings.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { StorageConfig } from '../config';
import type { Problem } from '../errors';
import { CliFailure } from './io';

export interface CliSettings {
  readonly storage: StorageConfig;
  readonly queueName: string;
  /** Where the settings came from, for messages (never the values). */
  readonly sources: { readonly localSettingsPath?: string };
  /** Setting values that must never be printed. */
  readonly secrets: readonly string[];
}

export const DEFAULT_QUEUE = 'outbound-messages';

type Values = Record<string, string | undefined>;

/** `local.settings.json` `Values`, or nothing when there is no file. */
export function readLocalSettingsValues(cwd: string): { values: Record<string, string>; path?: string } {
  const file = path.join(cwd, 'local.settings.json');
  if (!existsSync(file)) return { values: {} };
  let parsed: unknown;
  try {
    const text = readFileSync(file, 'utf8');
    parsed = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (error) {
    throw new CliFailure(`${file} is not valid JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new CliFailure(`${file} must contain a JSON object`);
  const root = parsed as Record<string, unknown>;
  if (root.IsEncrypted === true) throw new CliFailure(`${file} is encrypted (IsEncrypted: true); set the settings as environment variables instead`);
  const values: Record<string, string> = {};
  if (root.Values !== undefined) {
    if (typeof root.Values !== 'object' || root.Values === null || Array.isArray(root.Values)) throw new CliFailure(`${file}: "Values" must be an object`);
    for (const [key, value] of Object.entries(root.Values as Record<string, unknown>)) {
      if (value !== null && value !== undefined) values[key] = typeof value === 'string' ? value : String(value);
    }
  }
  return { values, path: file };
}

function read(env: Values, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function httpsUrl(value: string, name: string, problems: Problem[]): string | undefined {
  try {
    const url = new URL(value);
    if (url.protocol === 'https:') return url.toString();
    problems.push({ path: name, message: `must be an https URL (got ${url.protocol})` });
  } catch {
    problems.push({ path: name, message: 'is not a valid URL' });
  }
  return undefined;
}

/** Storage as src/config.ts reads it (same names, same precedence, same checks). */
export function parseStorageSettings(env: Values, problems: Problem[]): StorageConfig {
  const connectionString = read(env, 'AzureWebJobsStorage');
  if (connectionString !== undefined) return { kind: 'connectionString', connectionString };

  const accountName = read(env, 'AzureWebJobsStorage__accountName');
  const tableUri = read(env, 'AzureWebJobsStorage__tableServiceUri');
  const queueUri = read(env, 'AzureWebJobsStorage__queueServiceUri');
  if (accountName === undefined && (tableUri === undefined || queueUri === undefined)) {
    problems.push({
      path: 'AzureWebJobsStorage',
      message: 'is not set: give a connection string, or AzureWebJobsStorage__accountName, or both AzureWebJobsStorage__tableServiceUri and AzureWebJobsStorage__queueServiceUri',
    });
    return { kind: 'connectionString', connectionString: '' };
  }
  if (accountName !== undefined && !/^[a-z0-9]{3,24}$/.test(accountName)) {
    problems.push({ path: 'AzureWebJobsStorage__accountName', message: 'must be 3-24 lower-case letters and digits' });
  }
  const tableServiceUri = (tableUri && httpsUrl(tableUri, 'AzureWebJobsStorage__tableServiceUri', problems)) ?? `https://${accountName ?? 'invalid'}.table.core.windows.net`;
  const queueServiceUri = (queueUri && httpsUrl(queueUri, 'AzureWebJobsStorage__queueServiceUri', problems)) ?? `https://${accountName ?? 'invalid'}.queue.core.windows.net`;
  const credentialRaw = read(env, 'AzureWebJobsStorage__credential');
  if (credentialRaw !== undefined && credentialRaw.toLowerCase() !== 'managedidentity') {
    problems.push({ path: 'AzureWebJobsStorage__credential', message: `must be "managedidentity" when set (got "${credentialRaw}")` });
  }
  const clientId = read(env, 'AzureWebJobsStorage__clientId');
  return {
    kind: 'identity',
    tableServiceUri,
    queueServiceUri,
    credential: credentialRaw === undefined ? 'default' : 'managedidentity',
    ...(clientId === undefined ? {} : { clientId }),
  };
}

export function parseQueueName(env: Values, problems: Problem[]): string {
  const queueName = read(env, 'OUTBOUND_QUEUE') ?? DEFAULT_QUEUE;
  if (!/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,55}$/.test(queueName)) {
    problems.push({ path: 'OUTBOUND_QUEUE', message: `must be 3-56 lower-case letters, digits and single hyphens (got "${queueName}")` });
  }
  return queueName;
}

/** Reads and checks the settings; a CliFailure names every bad one (never its value). */
export function loadCliSettings(env: Readonly<Record<string, string | undefined>>, cwd: string): CliSettings {
  const local = readLocalSettingsValues(cwd);
  const merged: Values = { ...local.values };
  for (const [key, value] of Object.entries(env)) if (value !== undefined) merged[key] = value;
  const problems: Problem[] = [];
  const storage = parseStorageSettings(merged, problems);
  const queueName = parseQueueName(merged, problems);
  if (problems.length > 0) {
    const where = local.path === undefined ? 'the environment (no local.settings.json here)' : `the environment and ${local.path}`;
    throw new CliFailure(`Invalid settings (read from ${where}):\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`);
  }
  const secret = read(merged, 'AzureWebJobsStorage');
  return {
    storage,
    queueName,
    sources: local.path === undefined ? {} : { localSettingsPath: local.path },
    secrets: secret === undefined ? [] : [secret, ...(secret.match(/AccountKey=([^;]+)/i)?.slice(1) ?? [])],
  };
}

/** Where the CLI is talking to, for messages: an account or endpoint, never a key. */
export function describeStorage(storage: StorageConfig): string {
  if (storage.kind === 'identity') return `${new URL(storage.queueServiceUri).host} (Entra ID${storage.credential === 'managedidentity' ? ', managed identity' : ''})`;
  const cs = storage.connectionString;
  if (/^\s*UseDevelopmentStorage=true/i.test(cs)) return 'the local storage emulator (UseDevelopmentStorage=true)';
  const endpoint = /QueueEndpoint=([^;]+)/i.exec(cs)?.[1];
  if (endpoint !== undefined) {
    try {
      const url = new URL(endpoint);
      return `${url.host}${url.pathname.replace(/\/$/, '')}`;
    } catch {
      // fall through to the account name
    }
  }
  const account = /AccountName=([^;]+)/i.exec(cs)?.[1];
  return account === undefined ? 'the storage account in AzureWebJobsStorage' : `storage account ${account}`;
}
