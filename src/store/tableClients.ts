/**
 * Table clients built from the same storage setting the Functions host uses (`AzureWebJobsStorage`,
 * or its identity-based `__` form). The only place that constructs `@azure/data-tables` clients.
 */
import { TableClient, RestError, type TableEntityResult } from '@azure/data-tables';
import type { TokenCredential } from '@azure/identity';
import type { StorageConfig } from '../config';
import { StorageUnavailableError } from '../errors';
import { tableAccountOf } from './storageAccount';
import { createTableRest, type TableRest } from './tableRest';
import { createUndiciHttpClient } from './undiciHttpClient';

export type { TableClient };

// Inbound activities must be answered well inside Teams' 10-15 s: fail over to a 503 (which makes
// the Connector retry) after a few quick retries instead of the SDK's default long backoff.
const RETRY_OPTIONS = { maxRetries: 2, retryDelayInMs: 200, maxRetryDelayInMs: 1_000 };

let httpClient: ReturnType<typeof createUndiciHttpClient> | undefined;
/** One keep-alive pool for every table client of the process. */
function sharedHttpClient(): ReturnType<typeof createUndiciHttpClient> {
  httpClient ??= createUndiciHttpClient();
  return httpClient;
}

/**
 * The direct REST twin of a table client (tableRest.ts), for the point reads and conditional writes
 * on the sender's path. Clients built for storage it cannot sign for (a SAS) have none.
 */
const twins = new WeakMap<TableClient, TableRest>();

export function createTableClient(
  storage: StorageConfig,
  tableName: string,
  credential?: () => TokenCredential,
): TableClient {
  const client = createSdkTableClient(storage, tableName, credential);
  const account = tableAccountOf(storage);
  if (account !== undefined && (account.key !== undefined || credential !== undefined))
    twins.set(client, createTableRest(account, tableName, credential === undefined ? {} : { credential }));
  return client;
}

function createSdkTableClient(
  storage: StorageConfig,
  tableName: string,
  credential?: () => TokenCredential,
): TableClient {
  if (storage.kind === 'connectionString') {
    // `UseDevelopmentStorage=true` is mapped to Azurite by the SDK; explicit http endpoints (Azurite
    // on other ports) need allowInsecureConnection, which the SDK only sets for the shorthand.
    const insecure = /(^|;)\s*(DefaultEndpointsProtocol=http|TableEndpoint=http:)/i.test(storage.connectionString);
    return TableClient.fromConnectionString(storage.connectionString, tableName, {
      retryOptions: RETRY_OPTIONS,
      httpClient: sharedHttpClient(),
      ...(insecure ? { allowInsecureConnection: true } : {}),
    });
  }
  if (credential === undefined) throw new Error('identity-based storage needs a credential');
  return new TableClient(storage.tableServiceUri, tableName, credential(), {
    retryOptions: RETRY_OPTIONS,
    httpClient: sharedHttpClient(),
  });
}

/** HTTP status of a storage error, if it has one. */
export function statusOf(err: unknown): number | undefined {
  if (err instanceof RestError) return err.statusCode;
  if (typeof err === 'object' && err !== null && 'statusCode' in err && typeof err.statusCode === 'number')
    return err.statusCode;
  return undefined;
}

/**
 * Wraps an operation so network failures, timeouts and 5xx become StorageUnavailableError (callers
 * answer 503 / retry later); 4xx are programming or data errors and pass through.
 */
export async function guardStorage<T>(operation: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    const status = statusOf(err);
    if (status === undefined || status >= 500 || status === 408) {
      throw new StorageUnavailableError(
        `Table Storage unavailable during ${operation}${status === undefined ? '' : ` (HTTP ${status})`}`,
        { cause: err },
      );
    }
    throw err;
  }
}

const ensured = new WeakSet<TableClient>();

/** Creates the table on first use (idempotent; the deployment creates it too). */
export async function ensureTable(client: TableClient): Promise<void> {
  if (ensured.has(client)) return;
  try {
    await guardStorage('createTable', () => client.createTable());
  } catch (err) {
    // An identity with data-plane rights only may not create tables; the deployment already did.
    if (statusOf(err) !== 403) throw err;
  }
  ensured.add(client);
}

export type Entity = TableEntityResult<Record<string, unknown>>;
export type NewEntity = Record<string, unknown> & { partitionKey: string; rowKey: string };

/** Sees the requests a client's REST twin makes (its SDK requests go through `client.pipeline`). */
export function observeDirectRequests(client: TableClient, observer: (method: string, status: string) => void): void {
  twins.get(client)?.observe(observer);
}

/** A point read; undefined when the row does not exist. */
export async function readEntity(
  client: TableClient,
  partitionKey: string,
  rowKey: string,
): Promise<Entity | undefined> {
  const twin = twins.get(client);
  try {
    return await guardStorage('getEntity', () =>
      twin === undefined
        ? client.getEntity<Record<string, unknown>>(partitionKey, rowKey)
        : twin.get(partitionKey, rowKey),
    );
  } catch (err) {
    if (statusOf(err) === 404) return undefined;
    throw err;
  }
}

/**
 * Create (no etag: fails if the row exists) or replace conditional on the etag read. Returns the new
 * etag, or undefined when a concurrent writer won (409 or 412): the caller reads again.
 */
export async function writeConditional(
  client: TableClient,
  entity: NewEntity,
  etag: string | undefined,
): Promise<string | undefined> {
  const twin = twins.get(client);
  try {
    if (twin !== undefined)
      return etag === undefined
        ? await guardStorage('createEntity', () => twin.create(entity))
        : await guardStorage('updateEntity', () => twin.replace(entity, etag));
    const response =
      etag === undefined
        ? await guardStorage('createEntity', () => client.createEntity(entity))
        : await guardStorage('updateEntity', () => client.updateEntity(entity, 'Replace', { etag }));
    return response.etag ?? '*';
  } catch (err) {
    const status = statusOf(err);
    if (status === 409 || status === 412) return undefined;
    throw err;
  }
}
