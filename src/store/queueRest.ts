/**
 * The queue calls a queue trigger makes for every message (receive a batch, delete, change the
 * visibility), made directly over undici with storageRest.ts: the same wire calls as
 * `@azure/storage-queue`'s QueueClient, without its pipeline. The local host's queue listener
 * uses them (host/queueClients.ts); creating queues and adding messages stay on the SDK.
 *
 * Wire format (learn.microsoft.com/rest/api/storageservices/queue-service-rest-api): `Get Messages`
 * answers XML, parsed with fast-xml-parser as the SDK's @azure/core-xml parses it (text kept as
 * sent, entities decoded); `Delete Message` and `Update Message` answer 204, the latter with the new
 * pop receipt in `x-ms-popreceipt`.
 */
import { XMLParser } from 'fast-xml-parser';
import type { StorageAccount } from './storageAccount';
import { createStorageRequester, type StorageAnswer, type StorageClientOptions } from './storageRest';

const VERSION = '2021-12-02';

/** A message as Get Messages returns it: the fields of the SDK's DequeuedMessageItem. */
export interface ReceivedQueueMessage {
  readonly messageId: string;
  readonly popReceipt: string;
  readonly messageText: string;
  readonly dequeueCount: number;
  readonly insertedOn: Date;
  readonly expiresOn: Date;
  readonly nextVisibleOn: Date;
}

/**
 * A failed queue call, shaped like the SDK's RestError: `statusCode` and the service's error code
 * when storage answered; no status and code `REQUEST_SEND_ERROR` when it never did.
 */
export class QueueRestError extends Error {
  readonly statusCode?: number;
  readonly code?: string;
  constructor(statusCode: number | undefined, code: string | undefined, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'QueueRestError';
    if (statusCode !== undefined) this.statusCode = statusCode;
    if (code !== undefined) this.code = code;
  }
}

export interface QueueRest {
  receive(count: number, visibilitySeconds: number, signal?: AbortSignal): Promise<ReceivedQueueMessage[]>;
  delete(messageId: string, popReceipt: string): Promise<void>;
  /** Hidden for `visibilitySeconds` more (0: visible now); the message's new pop receipt. */
  update(messageId: string, popReceipt: string, visibilitySeconds: number): Promise<{ popReceipt: string }>;
  observe(observer: ((method: string, status: string) => void) | undefined): void;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  parseTagValue: false,
  processEntities: true,
  trimValues: false,
});

type RawMessage = Record<string, unknown>;

function field(raw: RawMessage, name: string): string {
  const value = raw[name];
  if (typeof value === 'string') return value;
  if (value === undefined || value === '') return '';
  throw new QueueRestError(200, undefined, `Queue Storage answered a message without a readable ${name}`);
}

function toMessage(raw: RawMessage): ReceivedQueueMessage {
  return {
    messageId: field(raw, 'MessageId'),
    popReceipt: field(raw, 'PopReceipt'),
    messageText: field(raw, 'MessageText'),
    dequeueCount: Number(field(raw, 'DequeueCount')),
    insertedOn: new Date(field(raw, 'InsertionTime')),
    expiresOn: new Date(field(raw, 'ExpirationTime')),
    nextVisibleOn: new Date(field(raw, 'TimeNextVisible')),
  };
}

/** Get Messages' body: `<QueueMessagesList>` with zero, one or several `<QueueMessage>`. */
export function parseMessagesList(xml: string): ReceivedQueueMessage[] {
  const doc = parser.parse(xml) as { QueueMessagesList?: { QueueMessage?: RawMessage | RawMessage[] } | '' };
  const list = doc.QueueMessagesList;
  if (list === undefined) throw new QueueRestError(200, undefined, 'Queue Storage answered no QueueMessagesList');
  const raw = list === '' ? undefined : list.QueueMessage;
  if (raw === undefined) return [];
  return (Array.isArray(raw) ? raw : [raw]).map(toMessage);
}

export function createQueueRest(
  account: StorageAccount,
  queueName: string,
  options: StorageClientOptions = {},
): QueueRest {
  const requester = createStorageRequester(account, 'queue', {
    ...options,
    version: VERSION,
    audience: 'Queue Storage',
  });
  const messages = `${encodeURIComponent(queueName)}/messages`;

  const call = async (
    method: 'GET' | 'PUT' | 'DELETE',
    relative: string,
    expected: number,
    signal?: AbortSignal,
  ): Promise<StorageAnswer> => {
    let answer: StorageAnswer;
    try {
      answer = await requester.send(method, relative, {}, signal === undefined ? {} : { signal });
    } catch (err) {
      if (signal?.aborted === true) throw err;
      const detail = err instanceof Error ? err.message : String(err);
      throw new QueueRestError(undefined, 'REQUEST_SEND_ERROR', `Queue Storage did not answer: ${detail}`, {
        cause: err,
      });
    }
    if (answer.status !== expected) {
      const code = answer.errorCode;
      throw new QueueRestError(
        answer.status,
        code,
        `Queue Storage answered ${answer.status}${code === undefined ? '' : ` ${code}`}`,
      );
    }
    return answer;
  };
  const messagePath = (messageId: string, popReceipt: string): string =>
    `${messages}/${encodeURIComponent(messageId)}?popreceipt=${encodeURIComponent(popReceipt)}`;

  return {
    observe: (next) => requester.observe(next),
    async receive(count, visibilitySeconds, signal) {
      const answer = await call(
        'GET',
        `${messages}?numofmessages=${count}&visibilitytimeout=${visibilitySeconds}`,
        200,
        signal,
      );
      return parseMessagesList(answer.text);
    },
    async delete(messageId, popReceipt) {
      await call('DELETE', messagePath(messageId, popReceipt), 204);
    },
    async update(messageId, popReceipt, visibilitySeconds) {
      const answer = await call(
        'PUT',
        `${messagePath(messageId, popReceipt)}&visibilitytimeout=${visibilitySeconds}`,
        204,
      );
      const next = answer.headers['x-ms-popreceipt'];
      if (typeof next !== 'string')
        throw new QueueRestError(204, undefined, 'Queue Storage answered an update without x-ms-popreceipt');
      return { popReceipt: next };
    },
  };
}
