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
import { createStorageRequester, type StorageClientOptions } from './storageRest';
import type { Entity, NewEntity } from './tableClients';
import type { StorageAccount } from './storageAccount';

export { sharedKeyLite } from './storageRest';

const VERSION = '2019-02-02';
const JSON_HEADERS = { accept: 'application/json;odata=nometadata', dataserviceversion: '3.0' } as const;

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

/** The quoted, escaped key segment of an entity URL: `(PartitionKey='…',RowKey='…')`. */
export function entityPath(table: string, partitionKey: string, rowKey: string): string {
  const quote = (key: string): string => encodeURIComponent(key.replace(/'/g, "''"));
  return `${table}(PartitionKey='${quote(partitionKey)}',RowKey='${quote(rowKey)}')`;
}

export function createTableRest(account: StorageAccount, table: string, options: StorageClientOptions = {}): TableRest {
  const requester = createStorageRequester(account, 'table', {
    ...options,
    version: VERSION,
    audience: 'Table Storage',
  });
  const send = (method: 'GET' | 'POST' | 'PUT', relative: string, extra: Record<string, string>, body?: string) =>
    requester.send(method, relative, { ...JSON_HEADERS, ...extra }, body === undefined ? {} : { body });

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
    observe: (next) => requester.observe(next),
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
