/**
 * The credential for identity-based storage (`AzureWebJobsStorage__*`), chosen as the Functions
 * host chooses it: the configured managed identity, or else DefaultAzureCredential (the developer's
 * own sign-in locally). One place for the app and the CLI. @azure/identity loads on first use.
 */
import type { TokenCredential } from '@azure/identity';
import type { StorageConfig } from '../config';

export function createStorageCredential(storage: StorageConfig): TokenCredential {
  const identity = require('@azure/identity') as typeof import('@azure/identity');
  return storage.kind === 'identity' && storage.credential === 'managedidentity'
    ? new identity.ManagedIdentityCredential(storage.clientId === undefined ? {} : { clientId: storage.clientId })
    : new identity.DefaultAzureCredential();
}
