/**
 * The three Table Storage calls on the sender's path (a point read, an insert, a conditional
 * replace), made directly over undici: no SDK pipeline. Issue 12 measured each SDK table request
 * at about 0.45 ms of CPU, most of it in the generic pipeline (operation specs, mappers, policies)
 * rather than in HTTP; these three calls are plain JSON exchanges that need none of it.
 *
 * Everything else (queries, batch transactions, table creation) stays on @azure/data-tables.
 * Wire format (learn.microsoft.com/rest/api/storageservices): `x-ms-version: 2019-02-02`, JSON with
 * `odata=nometadata`, the entity's ETag in the `ETag` header. Auth is Shared Key Lite for an account
 * key (the table service's format: the date and the canonical resource, HMAC-SHA256 with node:crypto)
 * or an Entra bearer token for identity-based storage. Entities hold strings, booleans and numbers
 * that fit Edm.Int32 or Edm.Double only: what the stores that use this client write.
 */
import { createHmac } from 'node:crypto';
import type { TokenCredential } from '@azure/identity';
import { createBotTokenProvider } from '../auth/botTokenProvider';
import { Agent, request, type Dispatcher } from 'undici';
import type { Entity, NewEntity } from './tableClients';
import type { TableAccount } from './tableAccount';

const VERSION = '2019-02-02';
const STORAGE_SCOPE = 'https://storage.azure.com/.default';
/** As the SDK's client is configured (tableClients.ts RETRY_OPTIONS): a few quick retries, then fail over. */
const RETRIES = 2;
const RETRY_DELAY_MS = 200;
const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

/** An HTTP failure, shaped like the SDK's RestError for `statusOf` and `guardStorage`. */
export class TableRestError extends Error {
  readonly statusCode: number;
  readonly code?: string;
  constructor(statusCode: number, code: string | undefined, message: string) {
    super(message);
    this.name = 'TableRestError';
    this.statusCode = statusCode;
    if (code !== undefined) this.code = code;
  }
}

export interface TableRest {
  /** undefined when the row does not exist. */
  get(partitionKey: string, rowKey: string): Promise<Entity | undefined>;
  /** The new ETag; throws TableRestError 409 when the row exists. */
  create(entity: NewEntity): Promise<string>;
  /** The new ETag; throws TableRestError 412 when the row changed since `etag`. */
  replace(entity: NewEntity, etag: string): Promise<string>;
  /** Sees every request's method and answer (`error` for none): the benchmark counts requests with it. */
  observe(observer: ((method: string, status: string) => void) | undefined): void;
}

let sharedDispatcher: Dispatcher | undefined;
function dispatcher(): Dispatcher {
  sharedDispatcher ??= new Agent({ keepAliveTimeout: 30_000, connect: { timeout: 10_000 } });
  return sharedDispatcher;
}

/** The quoted, escaped key segment of an entity URL: `(PartitionKey='…',RowKey='…')`. */
export function entityPath(table: string, partitionKey: string, rowKey: string): string {
  const quote = (key: string): string => encodeURIComponent(key.replace(/'/g, "''"));
  return `${table}(PartitionKey='${quote(partitionKey)}',RowKey='${quote(rowKey)}')`;
}

/** Shared Key Lite for the table service: HMAC-SHA256 over the date and `/<account><path>`. */
export function sharedKeyLite(account: string, key: Buffer, date: string, path: string): string {
  const signature = createHmac('sha256', key).update(`${date}\n/${account}${path}`, 'utf8').digest('base64');
  return `SharedKeyLite ${account}:${signature}`;
}

export function createTableRest(
  account: TableAccount,
  table: string,
  options: { credential?: () => TokenCredential; sleep?: (ms: number) => Promise<void> } = {},
): TableRest {
  const base = new URL(account.endpoint.endsWith('/') ? account.endpoint : `${account.endpoint}/`);
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let bearer: { getToken(): Promise<string> } | undefined;
  let observer: ((method: string, status: string) => void) | undefined;
  const authorize = async (path: string, headers: Record<string, string>): Promise<void> => {
    if (account.key !== undefined) {
      headers.authorization = sharedKeyLite(account.name, account.key, headers['x-ms-date']!, path);
      return;
    }
    if (options.credential === undefined) throw new Error('identity-based storage needs a credential');
    const credential = options.credential;
    // The same cache as the bot's token: until 5 minutes before expiry, one request for concurrent callers.
    bearer ??= createBotTokenProvider({
      createCredential: credential,
      scope: STORAGE_SCOPE,
      audience: 'Table Storage',
    });
    headers.authorization = `Bearer ${await bearer.getToken()}`;
  };

  async function send(
    method: 'GET' | 'POST' | 'PUT',
    relative: string,
    extra: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; etag: string | undefined; text: string }> {
    const url = new URL(relative, base);
    for (let attempt = 0; ; attempt += 1) {
      const headers: Record<string, string> = {
        'x-ms-version': VERSION,
        'x-ms-date': new Date().toUTCString(),
        accept: 'application/json;odata=nometadata',
        dataserviceversion: '3.0',
        ...extra,
      };
      await authorize(url.pathname, headers);
      try {
        const response = await request(url, {
          method,
          headers,
          dispatcher: dispatcher(),
          headersTimeout: 30_000,
          bodyTimeout: 30_000,
          ...(body === undefined ? {} : { body }),
        });
        const text = await response.body.text();
        observer?.(method, String(response.statusCode));
        if (RETRYABLE.has(response.statusCode) && attempt < RETRIES) {
          await sleep(RETRY_DELAY_MS * 2 ** attempt);
          continue;
        }
        const etag = response.headers.etag;
        return { status: response.statusCode, etag: typeof etag === 'string' ? etag : undefined, text };
      } catch (err) {
        observer?.(method, 'error');
        // No answer (reset, timeout, refused): the SDK retries these too, and so do we.
        if (attempt < RETRIES) {
          await sleep(RETRY_DELAY_MS * 2 ** attempt);
          continue;
        }
        throw err;
      }
    }
  }

  const fail = (status: number, text: string): never => {
    let code: string | undefined;
    try {
      code = (JSON.parse(text) as { 'odata.error'?: { code?: string } })['odata.error']?.code;
    } catch {
      code = undefined;
    }
    throw new TableRestError(status, code, `Table Storage answered ${status}${code === undefined ? '' : ` ${code}`}`);
  };

  const bodyOf = (entity: NewEntity): string => {
    const { partitionKey, rowKey, ...rest } = entity;
    return JSON.stringify({ PartitionKey: partitionKey, RowKey: rowKey, ...rest });
  };

  return {
    observe(next) {
      observer = next;
    },
    async get(partitionKey, rowKey) {
      const answer = await send('GET', entityPath(table, partitionKey, rowKey), {});
      if (answer.status === 404) return undefined;
      if (answer.status !== 200) return fail(answer.status, answer.text);
      const { PartitionKey, RowKey, Timestamp, ...fields } = JSON.parse(answer.text) as Record<string, unknown>;
      return {
        ...fields,
        partitionKey: PartitionKey as string,
        rowKey: RowKey as string,
        ...(Timestamp === undefined ? {} : { timestamp: Timestamp as string }),
        etag: answer.etag ?? '',
      } as Entity;
    },
    async create(entity) {
      const answer = await send(
        'POST',
        table,
        { 'content-type': 'application/json', prefer: 'return-no-content' },
        bodyOf(entity),
      );
      if (answer.status !== 204 && answer.status !== 201) return fail(answer.status, answer.text);
      return answer.etag ?? '*';
    },
    async replace(entity, etag) {
      const answer = await send(
        'PUT',
        entityPath(table, entity.partitionKey, entity.rowKey),
        { 'content-type': 'application/json', 'if-match': etag },
        bodyOf(entity),
      );
      if (answer.status !== 204) return fail(answer.status, answer.text);
      return answer.etag ?? '*';
    },
  };
}
