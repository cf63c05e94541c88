/**
 * Storage queue clients for the queue triggers (their queue and its `-poison` queue), one
 * QueueServiceClient per connection.
 */
import { QueueServiceClient, type QueueClient, type StoragePipelineOptions } from '@azure/storage-queue';
import type { TokenCredential } from '@azure/identity';
import type { QueueTarget } from './indexing';
import type { StorageConnection } from './settings';

/**
 * Short retries: the listener has its own backoff, and a stuck request must not hold up shutdown
 * for the SDK's default 2-minute retry window.
 */
const PIPELINE_OPTIONS: StoragePipelineOptions = {
  retryOptions: { maxTries: 3, retryDelayInMs: 300, maxRetryDelayInMs: 3_000, tryTimeoutInMs: 30_000 },
};

export class QueueClients {
  readonly #services = new Map<string, QueueServiceClient>();
  #credential: Promise<TokenCredential> | undefined;

  async get(target: QueueTarget): Promise<QueueClient> {
    return (await this.#service(target.connection)).getQueueClient(target.queueName);
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
