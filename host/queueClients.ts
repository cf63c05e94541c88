/**
 * Storage queue clients for the queue triggers (their queue and its `-poison` queue), one
 * QueueServiceClient per connection. The calls made for every message (receive, delete, change
 * the visibility) go straight over HTTP (src/store/queueRest.ts), as the app's own hot table calls
 * do; creating a queue and adding a message stay on the SDK.
 */
import {
  QueueServiceClient,
  type DequeuedMessageItem,
  type QueueClient,
  type StoragePipelineOptions,
} from '@azure/storage-queue';
import type { TokenCredential } from '@azure/identity';
import { createQueueRest, type QueueRest } from '../src/store/queueRest';
import { accountOfServiceUri, storageAccountOf } from '../src/store/storageAccount';
import type { QueueTarget } from './indexing';
import type { StorageConnection } from './settings';

/**
 * Short retries: the listener has its own backoff, and a stuck request must not hold up shutdown
 * for the SDK's default 2-minute retry window.
 */
const PIPELINE_OPTIONS: StoragePipelineOptions = {
  retryOptions: { maxTries: 3, retryDelayInMs: 300, maxRetryDelayInMs: 3_000, tryTimeoutInMs: 30_000 },
};

/** The part of a QueueClient the listener uses: what QueueClients.get gives, and what tests may pass. */
export interface HostQueue {
  readonly name: string;
  createIfNotExists(options?: { abortSignal?: AbortSignal }): Promise<unknown>;
  receiveMessages(options: {
    numberOfMessages: number;
    visibilityTimeout: number;
    abortSignal?: AbortSignal;
  }): Promise<{ receivedMessageItems: HostMessage[] }>;
  deleteMessage(messageId: string, popReceipt: string): Promise<unknown>;
  updateMessage(
    messageId: string,
    popReceipt: string,
    message: undefined,
    visibilityTimeout: number,
  ): Promise<{ popReceipt?: string }>;
  sendMessage(messageText: string): Promise<unknown>;
}

export type HostMessage = Pick<
  DequeuedMessageItem,
  'messageId' | 'popReceipt' | 'messageText' | 'dequeueCount' | 'insertedOn' | 'expiresOn' | 'nextVisibleOn'
>;

/** The SDK's client, with the per-message calls made directly. */
function withDirectCalls(sdk: QueueClient, rest: QueueRest): HostQueue {
  return {
    name: sdk.name,
    createIfNotExists: (options) => sdk.createIfNotExists(options),
    sendMessage: (text) => sdk.sendMessage(text),
    receiveMessages: async ({ numberOfMessages, visibilityTimeout, abortSignal }) => ({
      receivedMessageItems: await rest.receive(numberOfMessages, visibilityTimeout, abortSignal),
    }),
    deleteMessage: (messageId, popReceipt) => rest.delete(messageId, popReceipt),
    updateMessage: (messageId, popReceipt, _message, visibilityTimeout) =>
      rest.update(messageId, popReceipt, visibilityTimeout),
  };
}

export class QueueClients {
  readonly #services = new Map<string, QueueServiceClient>();
  #credential: Promise<TokenCredential> | undefined;

  async get(target: QueueTarget): Promise<HostQueue> {
    const connection = target.connection;
    const sdk = (await this.#service(connection)).getQueueClient(target.queueName);
    if (connection.kind === 'connectionString') {
      const account = storageAccountOf(
        { kind: 'connectionString', connectionString: connection.connectionString },
        'queue',
      );
      // A SAS or a form the direct client cannot sign for: the SDK does every call.
      return account?.key === undefined ? sdk : withDirectCalls(sdk, createQueueRest(account, target.queueName));
    }
    const account = accountOfServiceUri(connection.queueServiceUri);
    if (account === undefined) return sdk;
    const credential = await this.#identity(connection);
    return withDirectCalls(sdk, createQueueRest(account, target.queueName, { credential: () => credential }));
  }

  /** A stable key for "the same queue": connection identity plus queue name. */
  static key(target: QueueTarget): string {
    const c = target.connection;
    return `${c.kind === 'connectionString' ? c.connectionString : c.queueServiceUri}|${target.queueName}`;
  }

  async #service(connection: StorageConnection): Promise<QueueServiceClient> {
    const key =
      connection.kind === 'connectionString'
        ? `cs:${connection.connectionString}`
        : `id:${connection.queueServiceUri}|${connection.credential ?? ''}|${connection.clientId ?? ''}`;
    let service = this.#services.get(key);
    if (!service) {
      if (connection.kind === 'connectionString') {
        service = QueueServiceClient.fromConnectionString(connection.connectionString, PIPELINE_OPTIONS);
      } else {
        service = new QueueServiceClient(
          connection.queueServiceUri,
          await this.#identity(connection),
          PIPELINE_OPTIONS,
        );
      }
      this.#services.set(key, service);
    }
    return service;
  }

  /** Identity-based connections (`<name>__queueServiceUri`); locally that is the developer's identity. */
  #identity(connection: Extract<StorageConnection, { kind: 'identity' }>): Promise<TokenCredential> {
    this.#credential ??= import('@azure/identity').then((identity) => {
      if (connection.credential?.toLowerCase() === 'managedidentity') {
        return new identity.ManagedIdentityCredential(connection.clientId ? { clientId: connection.clientId } : {});
      }
      return new identity.DefaultAzureCredential(
        connection.clientId ? { managedIdentityClientId: connection.clientId } : {},
      );
    });
    return this.#credential;
  }
}
