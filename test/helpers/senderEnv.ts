/**
 * The real delivery path in one process: Azurite (stores and queues) and the stub world
 * (host/emulator/world.ts): the local Entra authority (bot tokens via @azure/identity) and the Bot
 * Connector stub (HTTPS, keep-alive undici agent).
 * Only the Functions host is left out: `drain()` plays its part, receiving from the queue, calling
 * the sender and deleting what it finished.
 */
import { QueueClient } from '@azure/storage-queue';
import { afterAll, beforeAll } from 'vitest';
import {
  startStubWorld,
  type ConnectorServer,
  type ConnectorServerOptions,
  type EntraServer,
  type StubWorld,
} from '../../host/emulator';
import { createBotCredential, createBotTokenProvider, type BotTokenProvider } from '../../src/auth/botTokenProvider';
import { loadConfig, type OutboundConfig } from '../../src/config';
import { parseActivity, toCapturePlan, type CapturePlan } from '../../src/core/activity';
import { createConnectorClient, type ConnectorClient } from '../../src/connector/connectorClient';
import { createLogger } from '../../src/log';
import { processJobMessage, type JobResult, type SenderDeps } from '../../src/outbound/processJob';
import { createSendBudget, type SendBudget } from '../../src/outbound/sendBudget';
import { createBudgetRoster } from '../../src/store/budgetRoster';
import type { ConversationStore } from '../../src/store/conversationStore';
import type { DeliveryStore } from '../../src/store/deliveryStore';
import { listConversations } from '../../src/store/conversationList';
import { createJobQueue } from '../../src/store/jobQueue';
import { TABLES } from '../../src/store/tables';
import { storesFor, useAzurite, type TestStorage } from './storage';

export const APP_ID = '00000000-0000-4000-8000-0000000000b0';
export const BOT_TENANT = '00000000-0000-4000-8000-0000000b07e0';
export const USER_TENANT = '72f988bf-0000-4000-8000-00000000c0de';
export const APP_SECRET = 'sender-test-secret-value';

export interface SenderEnv {
  readonly storage: TestStorage;
  readonly entra: EntraServer;
  readonly connector: ConnectorServer;
  readonly config: OutboundConfig;
  readonly conversations: ConversationStore;
  readonly deliveries: DeliveryStore;
  readonly jobs: QueueClient;
  readonly poison: QueueClient;
  readonly tokens: BotTokenProvider;
  readonly client: ConnectorClient;
  /** This process's share of Teams' limits (alone in its roster unless a test adds instances). */
  readonly budget: SendBudget;
  readonly logs: string[];
  deps(overrides?: Partial<SenderDeps>): SenderDeps;
  /** Stores a reference as if Teams had sent this activity (serviceUrl pointed at the stub). */
  capture(activity: Record<string, unknown>): Promise<void>;
  /** Puts a job on the queue as plain JSON text (or base64). */
  enqueue(job: unknown, encoding?: 'plain' | 'base64'): Promise<void>;
  /** Plays the Functions host until the queue is empty (visible and invisible), bounded in time. */
  drain(options?: { timeoutMs?: number; deps?: Partial<SenderDeps> }): Promise<JobResult[]>;
  /** Parsed poison messages. */
  poisoned(): Promise<{ teamsCourier: { jobId: string; code: string; reason: string }; job: unknown }[]>;
}

export function useSenderEnv(
  options: { connector?: Omit<ConnectorServerOptions, 'auth'>; maxAttempts?: number } = {},
): () => SenderEnv {
  const storage = useAzurite();
  let world: StubWorld | undefined;
  let env: SenderEnv | undefined;

  beforeAll(async () => {
    const s = storage();
    world = await startStubWorld({
      bot: { appId: APP_ID, tenantId: BOT_TENANT, secret: APP_SECRET },
      ...(options.connector ? { connector: options.connector } : {}),
    });
    const { entra, connector } = world;
    const loaded = loadConfig(
      world.appSettings({
        AzureWebJobsStorage: s.azurite.connectionString,
        CONNECTOR_TIMEOUT_MS: '2000',
        DELIVERY_MAX_ATTEMPTS: String(options.maxAttempts ?? 5),
      }),
    );
    const config: OutboundConfig = { ...loaded.outbound, gccServiceUrl: connector.serviceUrl('gcc') };
    const { conversations, deliveries } = storesFor(s);
    const jobs = s.queue(config.queueName);
    const poison = s.queue(config.poisonQueueName);
    await jobs.createIfNotExists();
    await poison.createIfNotExists();
    const tokens = createBotTokenProvider({
      createCredential: () => createBotCredential(config),
      scope: config.oauthScope,
    });
    const client = createConnectorClient({
      trust: { trustedHosts: config.trustedHosts, trustedOrigins: config.trustedOrigins },
      getToken: () => tokens.getToken(),
      timeoutMs: config.connectorTimeoutMs,
    });
    const budget = createSendBudget({
      roster: createBudgetRoster(s.table(TABLES.budget)),
      ratePerSecond: config.tenantRatePerSecond,
    });
    const logs: string[] = [];
    const queue = createJobQueue({ jobs, poison });

    const deps = (overrides: Partial<SenderDeps> = {}): SenderDeps => ({
      conversations,
      listConversations: (filter, page) => listConversations(s.table(TABLES.conversations), filter, page),
      deliveries,
      queue,
      connector: client,
      tokens,
      budget,
      config,
      now: () => new Date(),
      random: () => 0,
      sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
      log: createLogger((_level, line) => logs.push(line)),
      backoffBaseMs: 500,
      ...overrides,
    });

    env = {
      storage: s,
      entra,
      connector,
      config,
      conversations,
      deliveries,
      jobs,
      poison,
      tokens,
      client,
      budget,
      logs,
      deps,
      async capture(activity) {
        const plan = toCapturePlan(parseActivity(activity));
        if (plan.kind !== 'capture') throw new Error(`not capturable: ${plan.reason}`);
        await conversations.capture(plan as Extract<CapturePlan, { kind: 'capture' }>, new Date());
      },
      async enqueue(job, encoding = 'plain') {
        const text = JSON.stringify(job);
        await jobs.sendMessage(encoding === 'plain' ? text : Buffer.from(text).toString('base64'));
      },
      async drain({ timeoutMs = 20_000, deps: overrides } = {}) {
        const results: JobResult[] = [];
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const { receivedMessageItems } = await jobs.receiveMessages({ numberOfMessages: 16, visibilityTimeout: 30 });
          if (receivedMessageItems.length === 0) {
            const { approximateMessagesCount } = await jobs.getProperties();
            if (!approximateMessagesCount) return results;
            if (Date.now() > deadline)
              throw new Error(`drain: ${approximateMessagesCount} messages still queued after ${timeoutMs} ms`);
            await new Promise((r) => setTimeout(r, 100));
            continue;
          }
          await Promise.all(
            receivedMessageItems.map(async (m) => {
              // Like the Functions host: JSON text is parsed before the function sees it.
              let input: unknown = m.messageText;
              try {
                input = JSON.parse(m.messageText);
              } catch {
                // leave as text (base64 or garbage)
              }
              results.push(
                await processJobMessage(
                  input,
                  { messageId: m.messageId, dequeueCount: m.dequeueCount },
                  deps(overrides),
                ),
              );
              await jobs.deleteMessage(m.messageId, m.popReceipt);
            }),
          );
        }
      },
      async poisoned() {
        const { peekedMessageItems } = await poison.peekMessages({ numberOfMessages: 32 });
        return peekedMessageItems.map((m) => JSON.parse(m.messageText));
      },
    };
  });

  afterAll(async () => {
    await env?.budget.close();
    await env?.client.close();
    await world?.close();
  });

  return () => {
    if (env === undefined) throw new Error('sender env not started');
    return env;
  };
}
