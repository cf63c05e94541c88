/**
 * One signed request to Azure Storage over undici, with the few quick retries the SDK clients are
 * configured for, and nothing else: the transport under tableRest.ts and queueRest.ts, the calls on
 * the hot path that issue 12 measured at two to three times their HTTP cost through the SDK's
 * generic pipeline.
 *
 * Auth is Shared Key Lite with the account key (learn.microsoft.com/rest/api/storageservices/
 * authorize-with-shared-key: the table service signs the date and the resource, the queue service
 * also the verb, the content type and the `x-ms-` headers), or an Entra bearer token for
 * identity-based storage, fetched through the bot token provider's cache.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import type { TokenCredential } from '@azure/identity';
import { Agent, type Dispatcher } from 'undici';
import { createBotTokenProvider } from '../auth/botTokenProvider';
import { exchange } from '../httpExchange';
import type { StorageAccount } from './storageAccount';

export type StorageService = 'table' | 'queue';

const STORAGE_SCOPE = 'https://storage.azure.com/.default';
/** As the SDK's clients are configured (tableClients.ts RETRY_OPTIONS): a few quick retries, then fail over. */
const RETRIES = 2;
const RETRY_DELAY_MS = 200;
const RETRYABLE = new Set([408, 429, 500, 502, 503, 504]);

export interface StorageAnswer {
  readonly status: number;
  readonly etag: string | undefined;
  /** `x-ms-error-code`, when the service sent one. */
  readonly errorCode: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly text: string;
}

export interface StorageRequester {
  /** `relative` (encoded, no leading slash) follows the account's service endpoint; a query string may follow. */
  send(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    relative: string,
    headers: Record<string, string>,
    options?: { body?: string; signal?: AbortSignal },
  ): Promise<StorageAnswer>;
  /** Sees every request's method and answer (`error` for none): the benchmark counts requests with it. */
  observe(observer: ((method: string, status: string) => void) | undefined): void;
}

let sharedDispatcher: Dispatcher | undefined;
function dispatcher(): Dispatcher {
  sharedDispatcher ??= new Agent({ keepAliveTimeout: 30_000, connect: { timeout: 10_000 } });
  return sharedDispatcher;
}

/** The account key as a KeyObject, made once per key (an HMAC per request otherwise imports it). */
const keyObjects = new WeakMap<Buffer, KeyObject>();
function keyObject(key: Buffer): KeyObject {
  let made = keyObjects.get(key);
  if (made === undefined) {
    made = createSecretKey(key);
    keyObjects.set(key, made);
  }
  return made;
}

/** Shared Key Lite for the table service: HMAC-SHA256 over the date and `/<account><path>`. */
export function sharedKeyLite(account: string, key: Buffer, date: string, path: string): string {
  const signature = createHmac('sha256', keyObject(key)).update(`${date}\n/${account}${path}`, 'utf8').digest('base64');
  return `SharedKeyLite ${account}:${signature}`;
}

/**
 * Shared Key Lite for the blob and queue services: the verb, Content-MD5 (never sent here), the
 * content type, an empty Date (x-ms-date is signed instead), the sorted `x-ms-` headers and
 * `/<account><path>` (no query parameter is signed but `comp`, which these calls do not use).
 */
export function sharedKeyLiteQueue(
  account: string,
  key: Buffer,
  method: string,
  headers: Readonly<Record<string, string>>,
  path: string,
): string {
  const canonical = Object.keys(headers)
    .filter((name) => name.startsWith('x-ms-'))
    .sort()
    .map((name) => `${name}:${headers[name]}\n`)
    .join('');
  const toSign = `${method}\n\n${headers['content-type'] ?? ''}\n\n${canonical}/${account}${path}`;
  const signature = createHmac('sha256', keyObject(key)).update(toSign, 'utf8').digest('base64');
  return `SharedKeyLite ${account}:${signature}`;
}

/** What a table or queue client built on the requester may be given: a bearer credential, and a sleep for tests. */
export interface StorageClientOptions {
  readonly credential?: () => TokenCredential;
  readonly sleep?: (ms: number) => Promise<void>;
}

export function createStorageRequester(
  account: StorageAccount,
  service: StorageService,
  options: StorageClientOptions & {
    version: string;
    /** Named in the bearer token's error messages: `Table Storage`, `Queue Storage`. */
    audience: string;
  },
): StorageRequester {
  const base = new URL(account.endpoint.endsWith('/') ? account.endpoint : `${account.endpoint}/`);
  const { origin, pathname: basePath } = base;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  let bearer: { getToken(): Promise<string> } | undefined;
  let observer: ((method: string, status: string) => void) | undefined;

  const authorize = async (method: string, path: string, headers: Record<string, string>): Promise<void> => {
    if (account.key !== undefined) {
      headers.authorization =
        service === 'table'
          ? sharedKeyLite(account.name, account.key, headers['x-ms-date']!, path)
          : sharedKeyLiteQueue(account.name, account.key, method, headers, path);
      return;
    }
    if (options.credential === undefined) throw new Error('identity-based storage needs a credential');
    // The same cache as the bot's token: until 5 minutes before expiry, one request for concurrent callers.
    bearer ??= createBotTokenProvider({
      createCredential: options.credential,
      scope: STORAGE_SCOPE,
      audience: options.audience,
    });
    headers.authorization = `Bearer ${await bearer.getToken()}`;
  };

  return {
    observe(next) {
      observer = next;
    },
    async send(method, relative, extra, { body, signal } = {}) {
      // `relative` is already encoded (entityPath, queueRest): joined, not parsed again.
      const target = `${basePath}${relative}`;
      const query = target.indexOf('?');
      const path = query === -1 ? target : target.slice(0, query);
      for (let attempt = 0; ; attempt += 1) {
        const headers: Record<string, string> = {
          'x-ms-version': options.version,
          'x-ms-date': new Date().toUTCString(),
          ...extra,
        };
        await authorize(method, path, headers);
        try {
          const response = await exchange(dispatcher(), origin, target, {
            method,
            headers,
            headersTimeout: 30_000,
            bodyTimeout: 30_000,
            ...(body === undefined ? {} : { body }),
            ...(signal === undefined ? {} : { signal }),
          });
          const text = response.text;
          observer?.(method, String(response.status));
          if (RETRYABLE.has(response.status) && attempt < RETRIES) {
            await sleep(RETRY_DELAY_MS * 2 ** attempt);
            continue;
          }
          const { etag, 'x-ms-error-code': errorCode } = response.headers;
          return {
            status: response.status,
            etag: typeof etag === 'string' ? etag : undefined,
            errorCode: typeof errorCode === 'string' ? errorCode : undefined,
            headers: response.headers,
            text,
          };
        } catch (err) {
          observer?.(method, 'error');
          // No answer (reset, timeout, refused): the SDK retries these too, and so do we. An abort is final.
          if (attempt < RETRIES && signal?.aborted !== true) {
            await sleep(RETRY_DELAY_MS * 2 ** attempt);
            continue;
          }
          throw err;
        }
      }
    },
  };
}
