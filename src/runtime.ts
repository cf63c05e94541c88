/**
 * The composition root: the one place that reads `process.env` (through loadConfig) and builds
 * clients. Everything is built on first use and reused across invocations; nothing throws at
 * import time. Heavy modules are required lazily so each path loads only what it needs: the
 * inbound path never loads @azure/identity or undici, which keeps cold starts short.
 */
import type { TokenCredential } from '@azure/identity';
import type { Config } from './config';
import type { ChannelTokenVerifier } from './auth/verifyChannelToken';
import type { ConversationStore } from './store/conversationStore';
import type { TableClient } from './store/tableClients';

let config: Config | undefined;

export function getConfig(): Config {
  if (config === undefined) {
    const { loadConfig } = require('./config') as typeof import('./config');
    config = loadConfig(process.env);
  }
  return config;
}

/** For tests and the local host: forget everything built so far. */
export function resetRuntime(): void {
  config = undefined;
  storageCredential = undefined;
  tables.clear();
  conversationStore = undefined;
  verifier = undefined;
  for (const reset of resetHooks) reset();
}

const resetHooks: (() => void)[] = [];
/** Lets lazily-loaded parts of the root register their own reset. */
export function onReset(reset: () => void): void {
  resetHooks.push(reset);
}

let storageCredential: TokenCredential | undefined;
function getStorageCredential(): TokenCredential {
  if (storageCredential === undefined) {
    const storage = getConfig().storage;
    const identity = require('@azure/identity') as typeof import('@azure/identity');
    storageCredential =
      storage.kind === 'identity' && storage.credential === 'managedidentity'
        ? new identity.ManagedIdentityCredential(storage.clientId === undefined ? {} : { clientId: storage.clientId })
        : new identity.DefaultAzureCredential();
  }
  return storageCredential;
}

const tables = new Map<string, TableClient>();
export function getTableClient(name: string): TableClient {
  let client = tables.get(name);
  if (client === undefined) {
    const { createTableClient } = require('./store/tableClients') as typeof import('./store/tableClients');
    client = createTableClient(getConfig().storage, name, getStorageCredential);
    tables.set(name, client);
  }
  return client;
}

let conversationStore: ConversationStore | undefined;
export function getConversationStore(): ConversationStore {
  if (conversationStore === undefined) {
    const { createConversationStore } = require('./store/conversationStore') as typeof import('./store/conversationStore');
    const { TABLES } = require('./store/tables') as typeof import('./store/tables');
    conversationStore = createConversationStore({
      conversations: getTableClient(TABLES.conversations),
      userChats: getTableClient(TABLES.userChats),
    });
  }
  return conversationStore;
}

let verifier: ChannelTokenVerifier | undefined;
export function getChannelTokenVerifier(): ChannelTokenVerifier {
  if (verifier === undefined) {
    const { inbound } = getConfig();
    const { createOpenIdKeyCache, fetchJsonDocument } = require('./auth/openIdKeys') as typeof import('./auth/openIdKeys');
    const { createChannelTokenVerifier } = require('./auth/verifyChannelToken') as typeof import('./auth/verifyChannelToken');
    verifier = createChannelTokenVerifier({
      appId: inbound.appId,
      issuer: inbound.tokenIssuer,
      keys: createOpenIdKeyCache({ metadataUrl: inbound.openIdMetadataUrl, fetchJson: fetchJsonDocument }),
    });
  }
  return verifier;
}

// ---- Outbound -------------------------------------------------------------------------------

import type { SenderDeps } from './outbound/processJob';
import type { Logger } from './log';

interface SenderParts {
  readonly deliveries: SenderDeps['deliveries'];
  readonly queue: SenderDeps['queue'];
  readonly connector: SenderDeps['connector'];
  readonly tokens: SenderDeps['tokens'];
  readonly limiter: SenderDeps['limiter'];
}

let senderParts: SenderParts | undefined;
onReset(() => {
  const parts = senderParts;
  senderParts = undefined;
  void parts?.connector.close();
});

function getSenderParts(): SenderParts {
  if (senderParts === undefined) {
    const { outbound, storage } = getConfig();
    const { createBotCredential, createBotTokenProvider } = require('./auth/botTokenProvider') as typeof import('./auth/botTokenProvider');
    const { createConnectorClient } = require('./connector/connectorClient') as typeof import('./connector/connectorClient');
    const { createDeliveryStore } = require('./store/deliveryStore') as typeof import('./store/deliveryStore');
    const { createJobQueue, createQueueClient } = require('./store/jobQueue') as typeof import('./store/jobQueue');
    const { createRateLimiter, tenantWindows } = require('./core/rateLimiter') as typeof import('./core/rateLimiter');
    const { TABLES } = require('./store/tables') as typeof import('./store/tables');

    const tokens = createBotTokenProvider({ createCredential: () => createBotCredential(outbound), scope: outbound.oauthScope });
    senderParts = {
      tokens,
      deliveries: createDeliveryStore(getTableClient(TABLES.deliveries)),
      queue: createJobQueue({
        jobs: createQueueClient(storage, outbound.queueName, getStorageCredential),
        poison: createQueueClient(storage, outbound.poisonQueueName, getStorageCredential),
      }),
      connector: createConnectorClient({
        trust: { trustedHosts: outbound.trustedHosts, trustedOrigins: outbound.trustedOrigins },
        getToken: () => tokens.getToken(),
        timeoutMs: outbound.connectorTimeoutMs,
      }),
      // One limiter per process, shared by every invocation on this instance.
      limiter: createRateLimiter({ tenantWindows: tenantWindows(outbound.tenantRatePerSecond) }),
    };
  }
  return senderParts;
}

export function getSenderDeps(log: Logger): SenderDeps {
  const { outbound } = getConfig();
  return {
    ...getSenderParts(),
    conversations: getConversationStore(),
    config: outbound,
    now: () => new Date(),
    random: Math.random,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    log,
  };
}
