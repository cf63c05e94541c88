import { describe, expect, it } from 'vitest';
import { tableAccountOf } from '../../src/store/tableAccount';
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
