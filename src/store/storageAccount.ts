/**
 * Where a service of the storage account (tables, queues) is and how to sign for it, from the same
 * storage setting the SDK clients use (`AzureWebJobsStorage`): an account key from a connection string, or none for identity-based
 * storage (a bearer token then). A connection string with a SAS, or one this does not understand,
 * gives undefined: those stay on the SDK, which knows every form.
 */
import type { StorageConfig } from '../config';

export interface StorageAccount {
  readonly name: string;
  /** `https://<account>.table.core.windows.net/` or Azurite's `http://127.0.0.1:10002/<account>/`. */
  readonly endpoint: string;
  /** The account key; undefined for identity-based storage. */
  readonly key?: Buffer;
}

/** Azurite's well-known development account (learn.microsoft.com/azure/storage/common/storage-use-azurite). */
const DEV_ACCOUNT = 'devstoreaccount1';
const DEV_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

function parseConnectionString(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of text.split(';')) {
    const at = part.indexOf('=');
    if (at > 0) fields.set(part.slice(0, at).trim().toLowerCase(), part.slice(at + 1).trim());
  }
  return fields;
}

const DEV_PORTS = { table: 10002, queue: 10001 } as const;

export function tableAccountOf(storage: StorageConfig): StorageAccount | undefined {
  return storageAccountOf(storage, 'table');
}

/** Identity-based storage: the service's URI; requests carry a bearer token, no key. */
export function accountOfServiceUri(serviceUri: string): StorageAccount | undefined {
  const url = new URL(serviceUri);
  const name = url.hostname.split('.')[0] ?? '';
  return name === '' ? undefined : { name, endpoint: url.toString() };
}

/** The same for any service of the account: the queue service's endpoint for `queue`. */
export function storageAccountOf(storage: StorageConfig, service: 'table' | 'queue'): StorageAccount | undefined {
  if (storage.kind === 'identity')
    return accountOfServiceUri(service === 'table' ? storage.tableServiceUri : storage.queueServiceUri);
  const fields = parseConnectionString(storage.connectionString);
  if (fields.has('sharedaccesssignature')) return undefined;
  if (fields.get('usedevelopmentstorage')?.toLowerCase() === 'true') {
    // The SDKs send through DevelopmentStorageProxyUri as an HTTP proxy; the direct client has none,
    // so such a connection stays on the SDK.
    if (fields.has('developmentstorageproxyuri')) return undefined;
    return {
      name: DEV_ACCOUNT,
      endpoint: `http://127.0.0.1:${DEV_PORTS[service]}/${DEV_ACCOUNT}/`,
      key: Buffer.from(DEV_KEY, 'base64'),
    };
  }
  const name = fields.get('accountname');
  const key = fields.get('accountkey');
  if (name === undefined || key === undefined) return undefined;
  const explicit = fields.get(`${service}endpoint`);
  const endpoint =
    explicit ??
    `${fields.get('defaultendpointsprotocol') ?? 'https'}://${name}.${service}.${fields.get('endpointsuffix') ?? 'core.windows.net'}`;
  return { name, endpoint: endpoint.endsWith('/') ? endpoint : `${endpoint}/`, key: Buffer.from(key, 'base64') };
}
