/**
 * The CLI's settings, read like the app reads them: environment variables first, then
 * `local.settings.json` `Values` in the current directory (the local host's precedence). Only the
 * storage settings and OUTBOUND_QUEUE are read; the CLI needs no bot credentials.
 *
 * The storage rules are the app's own (src/config/storage.ts: `loadStorage`, `loadQueueName`): a
 * connection string wins over the identity-based `AzureWebJobsStorage__*` settings, as in the
 * Functions host. local.settings.json is read by ./localSettings.ts, which the local host uses too.
 */
import { loadQueueName, loadStorage, type StorageConfig } from '../config';
import type { Problem } from '../errors';
import { CliFailure } from './io';
import { LocalSettingsError, readLocalSettingsFile, type LocalSettings } from './localSettings';

export interface CliSettings {
  readonly storage: StorageConfig;
  readonly queueName: string;
  /** Where the settings came from, for messages (never the values). */
  readonly sources: { readonly localSettingsPath?: string };
  /** Setting values that must never be printed. */
  readonly secrets: readonly string[];
}

type Values = Record<string, string | undefined>;

/** `local.settings.json` in `cwd` (./localSettings.ts); its problems are CliFailures. */
function readLocal(cwd: string): LocalSettings {
  try {
    return readLocalSettingsFile(cwd);
  } catch (error) {
    if (!(error instanceof LocalSettingsError)) throw error;
    throw new CliFailure(
      error.code === 'encrypted'
        ? `${error.message}; set the settings as environment variables instead`
        : error.message,
    );
  }
}

/** Reads and checks the settings; a CliFailure names every bad one (never its value). */
export function loadCliSettings(env: Readonly<Record<string, string | undefined>>, cwd: string): CliSettings {
  const local = readLocal(cwd);
  const merged: Values = { ...local.values };
  for (const [key, value] of Object.entries(env)) if (value !== undefined) merged[key] = value;
  const problems: Problem[] = [];
  const storage = loadStorage(merged, problems);
  const queueName = loadQueueName(merged, problems);
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
