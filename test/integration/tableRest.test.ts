import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { AccessToken, TokenCredential } from '@azure/identity';
import { describe, expect, it } from 'vitest';
import { toTableKey } from '../../src/core/tableKeys';
import { StorageUnavailableError } from '../../src/errors';
import { tableAccountOf } from '../../src/store/storageAccount';
import {
  createTableClient,
  ensureTable,
  observeDirectRequests,
  readEntity,
  writeConditional,
} from '../../src/store/tableClients';
import { createTableRest, TableRestError } from '../../src/store/tableRest';
import { useAzurite } from '../helpers/storage';

const storage = useAzurite();
let tableCount = 0;

/** A fresh table: the SDK client (with its REST twin) and a bare REST client on it. */
async function freshTable() {
  const name = `rest${++tableCount}${Date.now() % 100000}`;
  const { storage: config } = storage();
  const client = createTableClient(config, name);
  await ensureTable(client);
  const rest = createTableRest(tableAccountOf(config)!, name);
  return { name, client, rest, config };
}

describe('the direct table client against Azurite', () => {
  it('round-trips what the SDK reads, and reads what the SDK wrote, with keys that need quoting and escaping', async () => {
    const { client, rest } = await freshTable();
    const partitionKey = toTableKey("it's a/b?c#d%e é 🙂");
    const etag = await rest.create({ partitionKey, rowKey: 'job', status: 'sending', attempts: 2, ok: true });
    expect(etag).toMatch(/^W\/"/);
    const viaSdk = await client.getEntity<Record<string, unknown>>(partitionKey, 'job');
    expect(viaSdk).toMatchObject({ partitionKey, rowKey: 'job', status: 'sending', attempts: 2, ok: true, etag });

    await client.createEntity({ partitionKey: 'sdk', rowKey: "o'k", text: 'ü', n: 7, half: 0.5, flag: false });
    expect(await rest.get('sdk', "o'k")).toMatchObject({
      partitionKey: 'sdk',
      rowKey: "o'k",
      text: 'ü',
      n: 7,
      half: 0.5,
      flag: false,
    });
  });

  it('answers as the SDK does: 404 is undefined, 409 on a second create, 412 on a stale ETag', async () => {
    const { rest } = await freshTable();
    expect(await rest.get('none', 'job')).toBeUndefined();
    const first = await rest.create({ partitionKey: 'p', rowKey: 'job', v: 1 });
    await expect(rest.create({ partitionKey: 'p', rowKey: 'job', v: 2 })).rejects.toMatchObject({
      statusCode: 409,
      code: 'EntityAlreadyExists',
    });
    const second = await rest.replace({ partitionKey: 'p', rowKey: 'job', v: 2 }, first);
    expect(second).not.toBe(first);
    await expect(rest.replace({ partitionKey: 'p', rowKey: 'job', v: 3 }, first)).rejects.toMatchObject({
      statusCode: 412,
    });
    expect(await rest.get('p', 'job')).toMatchObject({ v: 2, etag: second });
  });

  it('the stores go through it: readEntity and writeConditional on a client built by createTableClient', async () => {
    const { client } = await freshTable();
    const methods: string[] = [];
    observeDirectRequests(client, (method, status) => methods.push(`${method} ${status}`));
    const etag = await writeConditional(client, { partitionKey: 'k', rowKey: 'job', s: 'a' }, undefined);
    expect(etag).toBeDefined();
    expect(await writeConditional(client, { partitionKey: 'k', rowKey: 'job', s: 'b' }, undefined)).toBeUndefined();
    expect(await writeConditional(client, { partitionKey: 'k', rowKey: 'job', s: 'c' }, etag)).toBeDefined();
    expect(await writeConditional(client, { partitionKey: 'k', rowKey: 'job', s: 'd' }, etag)).toBeUndefined();
    expect(await readEntity(client, 'k', 'job')).toMatchObject({ s: 'c' });
    expect(await readEntity(client, 'missing', 'job')).toBeUndefined();
    expect(methods).toEqual(['POST 204', 'POST 409', 'PUT 204', 'PUT 412', 'GET 200', 'GET 404']);
  });

  it('a wrong account key is refused by the service (the signature is checked)', async () => {
    const { name, config } = await freshTable();
    const account = tableAccountOf(config)!;
    const wrong = createTableRest({ ...account, key: Buffer.alloc(64, 1) }, name);
    const error = await wrong.get('p', 'job').catch((err: unknown) => err);
    expect(error).toBeInstanceOf(TableRestError);
    expect((error as TableRestError).statusCode).toBe(403);
  });

  it('storage that does not answer is StorageUnavailable after the retries, as with the SDK', async () => {
    const { config } = await freshTable();
    const account = tableAccountOf(config)!;
    const port = new URL(account.endpoint).port;
    // A port nothing listens on (Azurite's own, shifted).
    const dead = {
      ...config,
      connectionString: config.kind === 'connectionString' ? config.connectionString.replace(`:${port}/`, ':9/') : '',
    };
    const client = createTableClient(dead, 'deadtable');
    await expect(readEntity(client, 'p', 'job')).rejects.toBeInstanceOf(StorageUnavailableError);
    // The error names the operation that could not be done.
    await expect(readEntity(client, 'p', 'job')).rejects.toThrow(/during getEntity/);
    await expect(writeConditional(client, { partitionKey: 'p', rowKey: 'job' }, undefined)).rejects.toThrow(
      /Table Storage unavailable during createEntity/,
    );
    await expect(writeConditional(client, { partitionKey: 'p', rowKey: 'job' }, 'W/"1"')).rejects.toThrow(
      /Table Storage unavailable during updateEntity/,
    );
  });

  it('identity-based storage: a bearer token for storage.azure.com, fetched once and reused, no shared key', async () => {
    const seen: { authorization?: string; version?: string; url?: string }[] = [];
    const server = createServer((req, res) => {
      seen.push({
        authorization: req.headers.authorization,
        version: req.headers['x-ms-version'] as string,
        url: req.url,
      });
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end('{"odata.error":{"code":"ResourceNotFound"}}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const scopes: string[] = [];
      const credential: TokenCredential = {
        getToken: async (scope): Promise<AccessToken> => {
          scopes.push(String(scope));
          return { token: 'storage-token', expiresOnTimestamp: Date.now() + 3_600_000 };
        },
      };
      const port = (server.address() as AddressInfo).port;
      const rest = createTableRest({ name: 'acct', endpoint: `http://127.0.0.1:${port}/` }, 'deliveries', {
        credential: () => credential,
      });
      expect(await rest.get('job-1', 'job')).toBeUndefined();
      expect(await rest.get('job-2', 'job')).toBeUndefined();
      expect(scopes).toEqual(['https://storage.azure.com/.default']);
      expect(seen).toEqual([
        {
          authorization: 'Bearer storage-token',
          version: '2019-02-02',
          url: "/deliveries(PartitionKey='job-1',RowKey='job')",
        },
        {
          authorization: 'Bearer storage-token',
          version: '2019-02-02',
          url: "/deliveries(PartitionKey='job-2',RowKey='job')",
        },
      ]);
    } finally {
      server.close();
    }
  });

  it('retries what may pass (5xx, 429, no answer) twice, 200 then 400 ms apart, and then says what Table Storage answered', async () => {
    const answers: [number, string][] = [];
    const seen: { method?: string; headers: Record<string, unknown> }[] = [];
    const server = createServer((req, res) => {
      seen.push({ method: req.method, headers: req.headers });
      const [status, body] = answers.shift() ?? [500, ''];
      res.writeHead(status, { 'content-type': 'application/json', etag: 'W/"e1"' });
      res.end(body);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const slept: number[] = [];
      const rest = createTableRest(
        { name: 'acct', endpoint: `http://127.0.0.1:${port}`, key: Buffer.from('key') },
        'deliveries',
        { sleep: async (ms) => void slept.push(ms) },
      );
      answers.push([503, ''], [429, ''], [200, '{"PartitionKey":"p","RowKey":"job","v":1}']);
      expect(await rest.get('p', 'job')).toMatchObject({ partitionKey: 'p', rowKey: 'job', v: 1, etag: 'W/"e1"' });
      expect(seen).toHaveLength(3);
      expect(slept).toEqual([200, 400]);
      expect(seen[0]!.headers).toMatchObject({
        'x-ms-version': '2019-02-02',
        dataserviceversion: '3.0',
        accept: 'application/json;odata=nometadata',
      });
      expect(String(seen[0]!.headers.authorization)).toMatch(/^SharedKeyLite acct:/);

      seen.length = 0;
      slept.length = 0;
      answers.push([503, ''], [503, ''], [503, '{"odata.error":{"code":"ServerBusy"}}']);
      const busy = await rest.get('p', 'job').catch((err: unknown) => err);
      expect(busy).toBeInstanceOf(TableRestError);
      expect(busy).toMatchObject({
        name: 'TableRestError',
        statusCode: 503,
        code: 'ServerBusy',
        message: 'Table Storage answered 503 ServerBusy',
      });
      expect(seen).toHaveLength(3);
      expect(slept).toEqual([200, 400]);

      // Not retried: a refusal. No code in the body: none in the error.
      seen.length = 0;
      answers.push([400, 'not json']);
      const refused = await rest.create({ partitionKey: 'p', rowKey: 'job' }).catch((err: unknown) => err);
      expect(refused).toMatchObject({ statusCode: 400, message: 'Table Storage answered 400' });
      expect((refused as TableRestError).code).toBeUndefined();
      expect(seen.map((r) => r.method)).toEqual(['POST']);
      // A create that does not say "created" is not taken for one.
      answers.push([200, '{}']);
      await expect(rest.create({ partitionKey: 'p', rowKey: 'job' })).rejects.toMatchObject({ statusCode: 200 });
    } finally {
      server.close();
    }
  });

  it('no answer at all: tried three times in all, then the network error', async () => {
    const slept: number[] = [];
    const rest = createTableRest(
      { name: 'acct', endpoint: 'http://127.0.0.1:9/', key: Buffer.from('key') },
      'deliveries',
      {
        sleep: async (ms) => void slept.push(ms),
      },
    );
    const observed: string[] = [];
    rest.observe((method, status) => observed.push(`${method} ${status}`));
    await expect(rest.get('p', 'job')).rejects.toThrow();
    expect(slept).toEqual([200, 400]);
    expect(observed).toEqual(['GET error', 'GET error', 'GET error']);
  });
});
