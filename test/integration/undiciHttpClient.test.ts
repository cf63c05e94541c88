/**
 * The table SDK over undici (src/store/undiciHttpClient.ts): requests and errors as the SDK's own
 * client gives them, so retries and the 503 mapping still work.
 */
import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { StorageUnavailableError } from '../../src/errors';
import { createTableClient, guardStorage } from '../../src/store/tableClients';
import { useAzurite } from '../helpers/storage';

const storage = useAzurite();

describe('table requests over undici', () => {
  it('round-trips entities, ETags and 404s against Azurite', async () => {
    const table = storage().table('undiciclient');
    await table.createTable();
    await table.createEntity({ partitionKey: 'p', rowKey: 'r', text: 'é ✓', n: 3 });
    const entity = await table.getEntity<{ text: string; n: number }>('p', 'r');
    expect(entity).toMatchObject({ text: 'é ✓', n: 3 });
    await table.updateEntity({ partitionKey: 'p', rowKey: 'r', n: 4 }, 'Merge', { etag: entity.etag });
    await expect(
      table.updateEntity({ partitionKey: 'p', rowKey: 'r', n: 5 }, 'Merge', { etag: entity.etag }),
    ).rejects.toMatchObject({ statusCode: 412 });
    await expect(table.getEntity('p', 'missing')).rejects.toMatchObject({ statusCode: 404 });
  });

  it("a storage endpoint that refuses connections is StorageUnavailableError after the SDK's retries", async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const cs = storage().azurite.connectionString.replace(
      /TableEndpoint=[^;]+/,
      `TableEndpoint=http://127.0.0.1:${port}/devstoreaccount1`,
    );
    const table = createTableClient({ kind: 'connectionString', connectionString: cs }, 'nothere');
    await expect(guardStorage('getEntity', () => table.getEntity('p', 'r'))).rejects.toBeInstanceOf(
      StorageUnavailableError,
    );
  });
});
