/**
 * A real Azurite per test file (in memory, free ports) and clients for it.
 * Never mock storage: the ETag, key-escaping and query behaviour under test is the service's.
 */
import { TableClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { afterAll, beforeAll } from 'vitest';
import { startAzurite, type AzuriteInstance } from '../../host/azurite';
import type { StorageConfig } from '../../src/config';
import { createConversationStore } from '../../src/store/conversationStore';
import { createDeliveryStore } from '../../src/store/deliveryStore';
import { createTableClient } from '../../src/store/tableClients';
import { TABLES } from '../../src/store/tables';

export interface TestStorage {
  readonly azurite: AzuriteInstance;
  readonly storage: StorageConfig;
  table(name: string): TableClient;
  queue(name: string): QueueClient;
}

/** Starts Azurite before the file's tests and stops it after. Use the getter inside tests. */
export function useAzurite(): () => TestStorage {
  let current: TestStorage | undefined;
  beforeAll(async () => {
    const azurite = await startAzurite();
    const storage: StorageConfig = { kind: 'connectionString', connectionString: azurite.connectionString };
    current = {
      azurite,
      storage,
      table: (name) => createTableClient(storage, name),
      queue: (name) => new QueueClient(azurite.connectionString, name),
    };
  });
  afterAll(async () => {
    await current?.azurite.stop();
  });
  return () => {
    if (current === undefined) throw new Error('Azurite is not started (call useAzurite() at file level)');
    return current;
  };
}

export function storesFor(s: TestStorage) {
  return {
    conversations: createConversationStore({
      conversations: s.table(TABLES.conversations),
      userChats: s.table(TABLES.userChats),
    }),
    deliveries: createDeliveryStore(s.table(TABLES.deliveries)),
  };
}
