/**
 * Storage queue clients for triggers and output bindings, one QueueServiceClient per connection, and
 * the queue output binding (what the host does with `context.extraOutputs.set(queueOutput, value)`
 * or a returned value bound to `output.storageQueue`).
 */
import { QueueServiceClient, type QueueClient, type StoragePipelineOptions } from '@azure/storage-queue';
import type { TokenCredential } from '@azure/identity';
import type { QueueTarget } from './indexing';
import type { RpcInvocationResponse, RpcTypedData } from './rpcTypes';
import type { QueueMessageEncoding, StorageConnection } from './settings';

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
    const key = connection.kind === 'connectionString' ? `cs:${connection.connectionString}` : `id:${connection.queueServiceUri}|${connection.credential ?? ''}|${connection.clientId ?? ''}`;
    let service = this.#services.get(key);
    if (!service) {
      if (connection.kind === 'connectionString') {
        service = QueueServiceClient.fromConnectionString(connection.connectionString, PIPELINE_OPTIONS);
      } else {
        service = new QueueServiceClient(connection.queueServiceUri, await this.#identity(connection), PIPELINE_OPTIONS);
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
      return new identity.DefaultAzureCredential(connection.clientId ? { managedIdentityClientId: connection.clientId } : {});
    });
    return this.#credential;
  }
}

/** Message texts for one output value: an array becomes one message per element, as in the host. */
export function toQueueMessages(data: RpcTypedData, encoding: QueueMessageEncoding): string[] {
  const encode = (text: string): string => (encoding === 'base64' ? Buffer.from(text, 'utf8').toString('base64') : text);
  if (data.bytes) {
    const bytes = Buffer.from(data.bytes.buffer, data.bytes.byteOffset, data.bytes.byteLength);
    return [encoding === 'base64' ? bytes.toString('base64') : bytes.toString('utf8')];
  }
  if (typeof data.string === 'string') return [encode(data.string)];
  if (typeof data.int === 'number') return [encode(String(data.int))];
  if (typeof data.double === 'number') return [encode(String(data.double))];
  if (data.collectionString?.string) return data.collectionString.string.map(encode);
  if (typeof data.json === 'string') {
    const parsed: unknown = JSON.parse(data.json);
    if (Array.isArray(parsed)) return parsed.map((item) => encode(typeof item === 'string' ? item : JSON.stringify(item)));
    return [encode(data.json)];
  }
  return [];
}

/**
 * Sends an invocation's queue outputs. Throws on a storage failure, which fails the invocation
 * (the host flushes output bindings before it completes the function).
 */
export async function flushQueueOutputs(
  response: RpcInvocationResponse,
  targets: Map<string, QueueTarget> | undefined,
  clients: QueueClients,
  encoding: QueueMessageEncoding,
  onMessageAdded: (target: QueueTarget) => void,
): Promise<void> {
  if (!targets || targets.size === 0) return;
  const values: [QueueTarget, RpcTypedData][] = [];
  const returnTarget = targets.get('$return');
  if (returnTarget && response.returnValue) values.push([returnTarget, response.returnValue]);
  for (const output of response.outputData ?? []) {
    const target = output.name ? targets.get(output.name) : undefined;
    if (target && output.data) values.push([target, output.data]);
  }
  for (const [target, data] of values) {
    const messages = toQueueMessages(data, encoding);
    if (messages.length === 0) continue;
    const queue = await clients.get(target);
    for (const text of messages) {
      try {
        await queue.sendMessage(text);
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode !== 404) throw error;
        // AddMessageAndCreateIfNotExistsAsync: create the queue on first use.
        await queue.createIfNotExists();
        await queue.sendMessage(text);
      }
    }
    onMessageAdded(target);
  }
}
