import { describe, expect, it } from 'vitest';
import type { StorageConfig } from '../../src/config';
import { accountOfServiceUri, storageAccountOf, tableAccountOf } from '../../src/store/storageAccount';
import { entityPath, sharedKeyLite } from '../../src/store/tableRest';

const KEY = Buffer.from('a test account key').toString('base64');

describe('tableAccountOf: the account the direct client signs for', () => {
  it('reads the forms of AzureWebJobsStorage', () => {
    expect(tableAccountOf({ kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' })).toMatchObject({
      name: 'devstoreaccount1',
      endpoint: 'http://127.0.0.1:10002/devstoreaccount1/',
    });
    expect(
      tableAccountOf({
        kind: 'connectionString',
        connectionString: `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${KEY};EndpointSuffix=core.usgovcloudapi.net`,
      }),
    ).toEqual({
      name: 'acct',
      endpoint: 'https://acct.table.core.usgovcloudapi.net/',
      key: Buffer.from(KEY, 'base64'),
    });
    expect(
      tableAccountOf({
        kind: 'connectionString',
        connectionString: `AccountName=devstoreaccount1;AccountKey=${KEY};TableEndpoint=http://127.0.0.1:4711/devstoreaccount1;`,
      }),
    ).toMatchObject({ name: 'devstoreaccount1', endpoint: 'http://127.0.0.1:4711/devstoreaccount1/' });
    expect(
      tableAccountOf({
        kind: 'identity',
        tableServiceUri: 'https://acct.table.core.windows.net',
        queueServiceUri: 'https://acct.queue.core.windows.net',
        credential: 'managedidentity',
      }),
    ).toEqual({ name: 'acct', endpoint: 'https://acct.table.core.windows.net/' });
  });

  it('leaves what it cannot sign for to the SDK: a SAS, or no key', () => {
    expect(
      tableAccountOf({
        kind: 'connectionString',
        connectionString: 'TableEndpoint=https://acct.table.core.windows.net;SharedAccessSignature=sv=2020&sig=x',
      }),
    ).toBeUndefined();
    expect(tableAccountOf({ kind: 'connectionString', connectionString: 'AccountName=acct' })).toBeUndefined();
  });
});

describe('storageAccountOf: the queue service of the same account', () => {
  const DEV_KEY = Buffer.from(
    'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
    'base64',
  );
  const identity: StorageConfig = {
    kind: 'identity',
    tableServiceUri: 'https://acct.table.core.windows.net',
    queueServiceUri: 'https://acct.queue.core.windows.net',
    credential: 'default',
  };

  it("development storage: Azurite's queue port 10001, with the well-known key; through a proxy, the SDK's", () => {
    expect(
      storageAccountOf({ kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' }, 'queue'),
    ).toEqual({ name: 'devstoreaccount1', endpoint: 'http://127.0.0.1:10001/devstoreaccount1/', key: DEV_KEY });
    expect(
      storageAccountOf(
        {
          kind: 'connectionString',
          connectionString: 'UseDevelopmentStorage=true;DevelopmentStorageProxyUri=http://devhost/',
        },
        'queue',
      ),
    ).toBeUndefined();
  });

  it('QueueEndpoint= when the connection string gives one, with a trailing slash', () => {
    const connectionString =
      `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=${KEY};` +
      'QueueEndpoint=http://127.0.0.1:4710/devstoreaccount1;TableEndpoint=http://127.0.0.1:4711/devstoreaccount1';
    expect(storageAccountOf({ kind: 'connectionString', connectionString }, 'queue')).toEqual({
      name: 'devstoreaccount1',
      endpoint: 'http://127.0.0.1:4710/devstoreaccount1/',
      key: Buffer.from(KEY, 'base64'),
    });
    // The same string for the table service: its own endpoint, not the queue's.
    expect(storageAccountOf({ kind: 'connectionString', connectionString }, 'table')).toMatchObject({
      endpoint: 'http://127.0.0.1:4711/devstoreaccount1/',
    });
    expect(
      storageAccountOf(
        {
          kind: 'connectionString',
          connectionString: `AccountName=acct;AccountKey=${KEY};QueueEndpoint=https://q.example/`,
        },
        'queue',
      ),
    ).toMatchObject({ name: 'acct', endpoint: 'https://q.example/' });
  });

  it('https://<name>.queue.<suffix>/ by default, with the protocol and suffix given', () => {
    expect(
      storageAccountOf({ kind: 'connectionString', connectionString: `AccountName=acct;AccountKey=${KEY}` }, 'queue'),
    ).toEqual({ name: 'acct', endpoint: 'https://acct.queue.core.windows.net/', key: Buffer.from(KEY, 'base64') });
    expect(
      storageAccountOf(
        {
          kind: 'connectionString',
          connectionString: `DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=${KEY};EndpointSuffix=core.chinacloudapi.cn`,
        },
        'queue',
      ),
    ).toMatchObject({ endpoint: 'https://acct.queue.core.chinacloudapi.cn/' });
  });

  it('identity-based storage: the queueServiceUri, and no key', () => {
    const account = storageAccountOf(identity, 'queue');
    expect(account).toEqual({ name: 'acct', endpoint: 'https://acct.queue.core.windows.net/' });
    expect(account?.key).toBeUndefined();
    expect(accountOfServiceUri('https://acct.queue.core.windows.net')).toEqual(account);
    expect(storageAccountOf(identity, 'table')).toEqual({
      name: 'acct',
      endpoint: 'https://acct.table.core.windows.net/',
    });
  });

  it('a SAS or no key: undefined for the queue service too', () => {
    expect(
      storageAccountOf(
        {
          kind: 'connectionString',
          connectionString: 'QueueEndpoint=https://acct.queue.core.windows.net;SharedAccessSignature=sv=2020&sig=x',
        },
        'queue',
      ),
    ).toBeUndefined();
    expect(
      storageAccountOf({ kind: 'connectionString', connectionString: 'AccountName=acct' }, 'queue'),
    ).toBeUndefined();
  });

  it('tableAccountOf is unchanged: the table service of storageAccountOf', () => {
    const configs: StorageConfig[] = [
      { kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' },
      { kind: 'connectionString', connectionString: `AccountName=acct;AccountKey=${KEY}` },
      {
        kind: 'connectionString',
        connectionString: `AccountName=acct;AccountKey=${KEY};QueueEndpoint=http://127.0.0.1:1/acct;TableEndpoint=http://127.0.0.1:2/acct`,
      },
      identity,
    ];
    for (const config of configs) expect(tableAccountOf(config)).toEqual(storageAccountOf(config, 'table'));
    expect(tableAccountOf({ kind: 'connectionString', connectionString: 'UseDevelopmentStorage=true' })).toMatchObject({
      endpoint: 'http://127.0.0.1:10002/devstoreaccount1/',
    });
    expect(tableAccountOf(configs[2]!)).toMatchObject({ endpoint: 'http://127.0.0.1:2/acct/' });
    expect(tableAccountOf(identity)).toMatchObject({ endpoint: 'https://acct.table.core.windows.net/' });
  });
});

describe('the request line and signature', () => {
  it('quotes and escapes keys as the service reads them', () => {
    expect(entityPath('deliveries', "it's", 'a b/c')).toBe("deliveries(PartitionKey='it''s',RowKey='a%20b%2Fc')");
  });
  it('signs the date and /<account><path> (Shared Key Lite, table service format)', () => {
    const header = sharedKeyLite('acct', Buffer.from('secret'), 'Mon, 07 Dec 2026 10:00:00 GMT', '/t()');
    // HMAC-SHA256("Mon, 07 Dec 2026 10:00:00 GMT\n/acct/t()", "secret"), base64: computed independently with openssl.
    expect(header).toBe('SharedKeyLite acct:LWezMHXTFfyNXGxbm/590Xy+/KrHzRd7QFc4bUNekh8=');
  });
});
