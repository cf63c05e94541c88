/**
 * The storage settings (`AzureWebJobsStorage` or its identity-based `__` settings) and the job
 * queue's name, read as the Functions host reads them. The app (loadConfig) and the CLI
 * (src/cli/settings.ts) both use these, so they always agree.
 */
import type { Problem } from '../errors';
import { parseHttpsUrl, read, type Env } from './parsers';

export type StorageConfig =
  | { readonly kind: 'connectionString'; readonly connectionString: string }
  | {
      readonly kind: 'identity';
      readonly tableServiceUri: string;
      readonly queueServiceUri: string;
      readonly credential: 'managedidentity' | 'default';
      readonly clientId?: string;
    };

export const DEFAULT_OUTBOUND_QUEUE = 'outbound-messages';

/** OUTBOUND_QUEUE. Queue names: 3-63 lower-case letters, digits and single hyphens; `-poison` must still fit. */
export function loadQueueName(env: Env, problems: Problem[]): string {
  const queueName = read(env, 'OUTBOUND_QUEUE') ?? DEFAULT_OUTBOUND_QUEUE;
  if (!/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,55}$/.test(queueName)) {
    problems.push({
      path: 'OUTBOUND_QUEUE',
      message: `must be 3-56 lower-case letters, digits and single hyphens (got "${queueName}")`,
    });
  }
  return queueName;
}

/** The storage setting, read as the Functions host reads it. Exported for the CLI. */
export function loadStorage(env: Env, problems: Problem[]): StorageConfig {
  const connectionString = read(env, 'AzureWebJobsStorage');
  // As in the Functions host, an exact-match connection string wins over the `__` settings.
  if (connectionString !== undefined) return { kind: 'connectionString', connectionString };

  const accountName = read(env, 'AzureWebJobsStorage__accountName');
  const tableUri = read(env, 'AzureWebJobsStorage__tableServiceUri');
  const queueUri = read(env, 'AzureWebJobsStorage__queueServiceUri');
  if (accountName === undefined && (tableUri === undefined || queueUri === undefined)) {
    problems.push({
      path: 'AzureWebJobsStorage',
      message:
        'is not set: give a connection string, or AzureWebJobsStorage__accountName, or both AzureWebJobsStorage__tableServiceUri and AzureWebJobsStorage__queueServiceUri',
    });
    return { kind: 'connectionString', connectionString: '' };
  }
  if (accountName !== undefined && !/^[a-z0-9]{3,24}$/.test(accountName)) {
    problems.push({ path: 'AzureWebJobsStorage__accountName', message: 'must be 3-24 lower-case letters and digits' });
  }
  const tableServiceUri =
    (tableUri && parseHttpsUrl(tableUri, 'AzureWebJobsStorage__tableServiceUri', problems)) ??
    `https://${accountName ?? 'invalid'}.table.core.windows.net`;
  const queueServiceUri =
    (queueUri && parseHttpsUrl(queueUri, 'AzureWebJobsStorage__queueServiceUri', problems)) ??
    `https://${accountName ?? 'invalid'}.queue.core.windows.net`;
  const credentialRaw = read(env, 'AzureWebJobsStorage__credential');
  if (credentialRaw !== undefined && credentialRaw.toLowerCase() !== 'managedidentity') {
    problems.push({
      path: 'AzureWebJobsStorage__credential',
      message: `must be "managedidentity" when set (got "${credentialRaw}")`,
    });
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
