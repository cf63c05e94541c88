/**
 * The CLI's settings, read like the app reads them: environment variables first, then
 * `local.settings.json` `Values` in the current directory (the local host's precedence). Only the
 * storage settings and OUTBOUND_QUEUE are read; the CLI needs no bot credentials.
 *
 * The storage rules are src/config.ts's own (`loadStorage`, `loadQueueName`): a connection string
 * wins over the identity-based `AzureWebJobsStorage__*` settings, as in the Functions host.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { DEFAULT_OUTBOUND_QUEUE, loadQueueName, loadStorage, type StorageConfig } from '../config';
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

export const DEFAULT_QUEUE = DEFAULT_OUTBOUND_QUEUE;

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
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new CliFailure(`${file} must contain a JSON object`);
  const root = parsed as Record<string, unknown>;
  if (root.IsEncrypted === true)
    throw new CliFailure(`${file} is encrypted (IsEncrypted: true); set the settings as environment variables instead`);
  const values: Record<string, string> = {};
  if (root.Values !== undefined) {
    if (typeof root.Values !== 'object' || root.Values === null || Array.isArray(root.Values))
      throw new CliFailure(`${file}: "Values" must be an object`);
    for (const [key, value] of Object.entries(root.Values as Record<string, unknown>)) {
      if (value !== null && value !== undefined) values[key] = typeof value === 'string' ? value : String(value);
    }
  }
  return { values, path: file };
}

/** Storage and queue as src/config.ts reads them (one implementation for the app and the CLI). */
export const parseStorageSettings = loadStorage;
export const parseQueueName = loadQueueName;

/** Reads and checks the settings; a CliFailure names every bad one (never its value). */
export function loadCliSettings(env: Readonly<Record<string, string | undefined>>, cwd: string): CliSettings {
  const local = readLocalSettingsValues(cwd);
  const merged: Values = { ...local.values };
  for (const [key, value] of Object.entries(env)) if (value !== undefined) merged[key] = value;
  const problems: Problem[] = [];
  const storage = parseStorageSettings(merged, problems);
  const queueName = parseQueueName(merged, problems);
  if (problems.length > 0) {
    const where =
      local.path === undefined ? 'the environment (no local.settings.json here)' : `the environment and ${local.path}`;
    throw new CliFailure(
      `Invalid settings (read from ${where}):\n${problems.map((p) => `  ${p.path}: ${p.message}`).join('\n')}`,
    );
  }
  const secret =
    storage.kind === 'connectionString' && storage.connectionString !== '' ? storage.connectionString : undefined;
  return {
    storage,
    queueName,
    sources: local.path === undefined ? {} : { localSettingsPath: local.path },
    secrets: secret === undefined ? [] : [secret, ...(secret.match(/AccountKey=([^;]+)/i)?.slice(1) ?? [])],
  };
}

/** Where the CLI is talking to, for messages: an account or endpoint, never a key. */
export function describeStorage(storage: StorageConfig): string {
  if (storage.kind === 'identity')
    return `${new URL(storage.queueServiceUri).host} (Entra ID${storage.credential === 'managedidentity' ? ', managed identity' : ''})`;
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
