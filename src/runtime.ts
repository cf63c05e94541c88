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
import type { Logger } from './log';
import type { SenderDeps } from './outbound/processJob';
import type { TableClient } from './store/tableClients';
import { TABLES } from './store/tables';

let config: Config | undefined;

export function getConfig(): Config {
  if (config === undefined) {
    const { loadConfig } = require('./config') as typeof import('./config');
    config = loadConfig(process.env);
  }
  return config;
}

let storageCredential: TokenCredential | undefined;
function getStorageCredential(): TokenCredential {
  if (storageCredential === undefined) {
    const { createStorageCredential } =
      require('./store/storageCredential') as typeof import('./store/storageCredential');
    storageCredential = createStorageCredential(getConfig().storage);
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
    const { createConversationStore } =
      require('./store/conversationStore') as typeof import('./store/conversationStore');
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
    const { createOpenIdKeyCache, fetchJsonDocument } =
      require('./auth/openIdKeys') as typeof import('./auth/openIdKeys');
    const { createChannelTokenVerifier } =
      require('./auth/verifyChannelToken') as typeof import('./auth/verifyChannelToken');
    verifier = createChannelTokenVerifier({
      appId: inbound.appId,
      issuer: inbound.tokenIssuer,
      keys: createOpenIdKeyCache({ metadataUrl: inbound.openIdMetadataUrl, fetchJson: fetchJsonDocument }),
    });
  }
  return verifier;
}

// ---- Outbound -------------------------------------------------------------------------------

type SenderParts = import('./factories').SenderParts;

let senderParts: SenderParts | undefined;
let jobQueue: SenderDeps['queue'] | undefined;
let deliveryStore: SenderDeps['deliveries'] | undefined;
function getDeliveryStore(): SenderDeps['deliveries'] {
  if (deliveryStore === undefined) {
    const { createDeliveryStore } = require('./store/deliveryStore') as typeof import('./store/deliveryStore');
    deliveryStore = createDeliveryStore(getTableClient(TABLES.deliveries));
  }
  return deliveryStore;
}

/** The job queue and its poison queue (the sender's retries, the HTTP API, the welcome). */
function getJobQueue(): SenderDeps['queue'] {
  if (jobQueue === undefined) {
    const { outbound, storage } = getConfig();
    const { createJobQueue, createQueueClient } = require('./store/jobQueue') as typeof import('./store/jobQueue');
    jobQueue = createJobQueue({
      jobs: createQueueClient(storage, outbound.queueName, getStorageCredential),
      poison: createQueueClient(storage, outbound.poisonQueueName, getStorageCredential),
    });
  }
  return jobQueue;
}

function getSenderParts(): SenderParts {
  if (senderParts === undefined) {
    const { buildSenderParts } = require('./factories') as typeof import('./factories');
    const { cloud, outbound } = getConfig();
    senderParts = buildSenderParts(cloud, outbound, getTableClient(TABLES.budget));
  }
  return senderParts;
}

/** The inbound welcome hook, when a welcome is configured; loads the queue client only then. */
export function getWelcome(): import('./inbound/handleMessages').MessagesDeps['welcome'] {
  const { welcome } = getConfig();
  if (welcome === undefined) return undefined;
  const queue = getJobQueue();
  const { toEnvelope } = require('./core/job') as typeof import('./core/job');
  // In teams-courier's envelope: `welcome-…` ids are reserved, and only our own jobs may carry them.
  return {
    content: welcome,
    enqueue: (job) => queue.requeue(toEnvelope(job, { jobId: String(job.id), deferrals: 0 }), 0),
  };
}

/** How the host guards /api/notify; read when the function registers, so it must not throw. */
export function getFlowAuthLevel(): 'function' | 'anonymous' {
  const { flowAuthLevel } = require('./config') as typeof import('./config');
  return flowAuthLevel(process.env);
}

type Authenticate = import('./flows/notifyApi').NotifyDeps['authenticate'];
let authenticate: Authenticate | undefined;
/** Function keys: everyone the host let in has full trust. Entra: the caller's token says who it is. */
function getAuthenticate(): Authenticate {
  if (authenticate === undefined) {
    const { flowAuth } = getConfig();
    const { buildAuthenticate } = require('./factories') as typeof import('./factories');
    authenticate = buildAuthenticate(flowAuth);
  }
  return authenticate;
}

/** What the HTTP API needs: the delivery records, the job queue and the caller check; nothing that sends. */
export function getNotifyDeps(log: Logger): import('./flows/notifyApi').NotifyDeps {
  return {
    deliveries: getDeliveryStore(),
    queue: getJobQueue(),
    now: () => new Date(),
    log,
    authenticate: getAuthenticate(),
  };
}

let poisonQueue: import('./store/poisonQueue').PoisonQueue | undefined;
/** POST /api/notify/{id}/retry: the HTTP API's deps and the poison queue it replays from. */
export function getRetryDeps(log: Logger): import('./flows/retryApi').RetryDeps {
  if (poisonQueue === undefined) {
    const { outbound, storage } = getConfig();
    const { createQueueClient } = require('./store/jobQueue') as typeof import('./store/jobQueue');
    const { createPoisonQueue } = require('./store/poisonQueue') as typeof import('./store/poisonQueue');
    poisonQueue = createPoisonQueue(createQueueClient(storage, outbound.poisonQueueName, getStorageCredential));
  }
  return { ...getNotifyDeps(log), poison: poisonQueue };
}

let healthCheck: import('./flows/health').HealthCheck | undefined;
/** GET /api/health: one check per process, cached (flows/health.ts); it must not throw on a bad configuration. */
export function getHealthCheck(): import('./flows/health').HealthCheck {
  if (healthCheck === undefined) {
    const { createHealthCheck } = require('./flows/health') as typeof import('./flows/health');
    healthCheck = createHealthCheck({
      checkConfig: () => void getConfig(),
      probeStorage: async () => {
        const { probeTable } = require('./store/storageProbe') as typeof import('./store/storageProbe');
        await probeTable(getTableClient(TABLES.deliveries));
      },
      now: Date.now,
    });
  }
  return healthCheck;
}

let statsRollup: import('./store/statsRollup').StatsRollup | undefined;
/** The outcome counts of this process, flushed to the `stats` table in the background (docs/storage.md). */
function getStatsRollup(): import('./store/statsRollup').StatsRollup {
  if (statsRollup === undefined) {
    const { createStatsRollup } = require('./store/statsRollup') as typeof import('./store/statsRollup');
    const { createLogger } = require('./log') as typeof import('./log');
    // Flushes run outside any invocation, so they log to the process's console (the host collects it).
    const log = createLogger(
      (level, line) => (level === 'error' || level === 'warn' ? console.error(line) : console.log(line)),
      { component: 'stats' },
    );
    statsRollup = createStatsRollup({ table: getTableClient(TABLES.stats), log });
  }
  return statsRollup;
}

/** Writes the outcome counts not flushed yet (the host is stopping the worker); nothing if none were counted. */
export async function flushStats(): Promise<void> {
  await statsRollup?.close();
}

/** `message`: what the queue trigger knows about the message being handled (its insertion time). */
export function getSenderDeps(log: Logger, message: { readonly queuedAt?: Date } = {}): SenderDeps {
  const { outbound } = getConfig();
  const rollup = getStatsRollup();
  const { listConversations } = require('./store/conversationList') as typeof import('./store/conversationList');
  const conversationsTable = getTableClient(TABLES.conversations);
  return {
    ...getSenderParts(),
    deliveries: getDeliveryStore(),
    queue: getJobQueue(),
    conversations: getConversationStore(),
    listConversations: (filter, page) => listConversations(conversationsTable, filter, page),
    config: outbound,
    now: () => new Date(),
    random: Math.random,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    log,
    stats: {
      ...(message.queuedAt === undefined ? {} : { queuedAt: message.queuedAt }),
      record: (outcome) => rollup.record(outcome),
    },
  };
}

/** For tests and benchmarks: forget everything built so far (and close the Connector client). */
export function resetRuntime(): void {
  const connector = senderParts?.connector;
  const budget = senderParts?.budget;
  const rollup = statsRollup;
  config = undefined;
  storageCredential = undefined;
  tables.clear();
  conversationStore = undefined;
  verifier = undefined;
  authenticate = undefined;
  senderParts = undefined;
  jobQueue = undefined;
  deliveryStore = undefined;
  poisonQueue = undefined;
  healthCheck = undefined;
  statsRollup = undefined;
  void connector?.close();
  void budget?.close();
  void rollup?.close();
}
