/**
 * The CLI's storage clients, built on first use from the same settings as the app (the store
 * modules do the construction). Identity-based storage uses DefaultAzureCredential (an `az login`
 * works), or a managed identity when AzureWebJobsStorage__credential=managedidentity, as
 * src/runtime.ts does.
 *
 * Permissions: `send` needs Storage Queue Data Message Sender on the queue; `status` and
 * `conversations list` need Storage Table Data Reader. The CLI never creates tables, and creates the
 * queue only when it does not exist (local Azurite).
 */
import type { TokenCredential } from '@azure/identity';
import type { QueueClient } from '@azure/storage-queue';
import { createDeliveryStore, type DeliveryStore } from '../store/deliveryStore';
import { createQueueClient } from '../store/jobQueue';
import { createStorageCredential } from '../store/storageCredential';
import { createTableClient, statusOf, type TableClient } from '../store/tableClients';
import { TABLES } from '../store/tables';
import type { CliSettings } from './settings';

export interface CliStorage {
  readonly settings: CliSettings;
  deliveries(): DeliveryStore;
  conversationsTable(): TableClient;
  /** Puts one message on the job queue, invisible for `visibilitySeconds`. */
  enqueue(text: string, visibilitySeconds: number): Promise<void>;
}

export function createCliStorage(settings: CliSettings): CliStorage {
  let credential: TokenCredential | undefined;
  const getCredential = (): TokenCredential => (credential ??= createStorageCredential(settings.storage));

  let deliveries: DeliveryStore | undefined;
  let conversations: TableClient | undefined;
  let queue: QueueClient | undefined;
  let queueChecked = false;

  return {
    settings,
    deliveries() {
      deliveries ??= createDeliveryStore(createTableClient(settings.storage, TABLES.deliveries, getCredential));
      return deliveries;
    },
    conversationsTable() {
      conversations ??= createTableClient(settings.storage, TABLES.conversations, getCredential);
      return conversations;
    },
    async enqueue(text, visibilitySeconds) {
      queue ??= createQueueClient(settings.storage, settings.queueName, getCredential);
      const client = queue;
      const send = (): Promise<unknown> =>
        client.sendMessage(text, { visibilityTimeout: Math.max(0, Math.ceil(visibilitySeconds)) });
      try {
        await send();
      } catch (error) {
        // The deployment creates the queue; a fresh local emulator has none yet.
        if (queueChecked || statusOf(error) !== 404) throw error;
        queueChecked = true;
        await client.createIfNotExists();
        await send();
      }
      queueChecked = true;
    },
  };
}

/** A storage error as one line that says what to do; never a secret (the caller redacts too). */
export function describeStorageError(error: unknown, action: 'queue' | 'table'): string {
  const status = statusOf(error);
  const code =
    typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string'
      ? error.code
      : undefined;
  if (status === 403 || status === 401) {
    const role =
      action === 'queue'
        ? 'Storage Queue Data Message Sender on the queue'
        : 'Storage Table Data Reader on the storage account';
    return `storage refused the request (HTTP ${status}${code ? ` ${code}` : ''}): the signed-in identity needs ${role} (docs/deploy.md); new role assignments take a few minutes`;
  }
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
  if ([error, cause].some((e) => e instanceof Error && /AuthenticationError|CredentialUnavailableError/.test(e.name))) {
    return 'could not get an Entra ID token for storage: sign in with `az login` (or run where a managed identity is available), or set AzureWebJobsStorage to a connection string';
  }
  const message = firstLine(error instanceof Error ? error.message : String(error));
  const detail = cause === undefined ? '' : `: ${firstLine(cause.message)}`;
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|ETIMEDOUT/.test(`${code ?? ''} ${message}${detail}`)) {
    return `storage is not reachable (${message}${detail}); is the emulator running, and is AzureWebJobsStorage right?`;
  }
  if (status !== undefined)
    return `storage answered HTTP ${status}${code ? ` ${code}` : ''}${message.startsWith('HTTP') ? '' : `: ${message}`}`;
  return `${message}${detail}`;
}

/** The first line of an error message; storage errors carry the service's JSON or XML body. */
function firstLine(message: string): string {
  const trimmed = message.trim();
  if (trimmed.startsWith('{')) {
    try {
      const parsed = JSON.parse(trimmed) as { 'odata.error'?: { message?: { value?: string } } };
      const value = parsed['odata.error']?.message?.value;
      if (typeof value === 'string') return value.split('\n')[0]!;
    } catch {
      // not JSON after all
    }
  }
  return trimmed.split('\n')[0]!;
}
