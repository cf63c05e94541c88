/**
 * A scale-out world: ONE Azurite, ONE stub world in its own process (bench/stubProcess.ts: Entra +
 * Bot Connector, Teams' limits enforced across every caller), and N app instances, each a separate
 * `node dist/host/main.js` on its own port, all sharing one storage account, as Azure runs the
 * queue-triggered sender when it scales out. The instances' `AzureWebJobsStorage` points at a
 * counting proxy (storageCounter.ts); the rig's own storage calls go to Azurite directly and are
 * never counted.
 *
 * Everything is on loopback. Every wait is bounded in time; `close()` stops every process and
 * server the world started, also after a failure.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { QueueClient } from '@azure/storage-queue';
import { startAzurite, type AzuriteInstance } from '../../host/azurite';
import { ensureLocalCertificate } from '../../host/emulator/certificate';
import { StopWaiting } from '../../host/emulator/waitFor';
import { SETTINGS } from '../../src/config';
import type { ConversationStore } from '../../src/store/conversationStore';
import { createDeliveryStore, type DeliveryStore } from '../../src/store/deliveryStore';
import { createTableClient } from '../../src/store/tableClients';
import { TABLES } from '../../src/store/tables';
import { AppInstance } from './appInstances';
import { HOST_MAIN_JS, STUB_PROCESS_JS } from './build';
import { REPO_ROOT, killOnExit, sleep, type ChildHandle } from './common';
import { conversationStore, seedPersonalChats } from './seeding';
import { StorageCounter } from './storageCounter';
import { startStubProcess, type StubReady, type StubSnapshot } from './stubWorld';

export const OUTBOUND_QUEUE = 'outbound-messages';
/** Teams' published limit per bot per tenant, which the stub enforces (host/emulator/rateLimiter.ts). */
export const TENANT_CAP_PER_SECOND = 50;

/** Customer tenant `k` of the rig (made up, GUID-shaped). */
export function scaleTenantId(k: number): string {
  return `72f988bf-0000-4000-8000-000005ca1e${String(k % 100).padStart(2, '0')}`;
}

/** Conversation-id prefix of tenant `k`'s personal chats. */
export function scalePrefix(k: number): string {
  return `sc${k}`;
}

export interface ScaleWorldOptions {
  /** App instances (separate processes). */
  readonly instances: number;
  /** Teams' limits in the Connector stub; default true. */
  readonly rateLimit?: boolean;
  /** Extra app settings for every instance (after the rig's own); `undefined` removes one. */
  readonly appEnv?: Readonly<Record<string, string | undefined>>;
  /** Per instance start-up limit; default 90 s. */
  readonly startTimeoutMs?: number;
}

export interface ScaleWorld {
  readonly azurite: AzuriteInstance;
  readonly storage: StorageCounter;
  readonly stub: ChildHandle;
  readonly stubInfo: StubReady;
  readonly instances: readonly AppInstance[];
  /** Azurite directly (not counted). */
  readonly directConnectionString: string;
  readonly conversations: ConversationStore;
  readonly deliveries: DeliveryStore;
  /** Stores `count` personal-chat references of tenant `tenantId` (serviceUrl = the stub), as Teams' first message would. Returns their ids. */
  seedPersonalChats(options: { tenantId: string; prefix: string; count: number; salt?: number }): Promise<string[]>;
  /** Puts a broadcast to every installed personal chat of the tenant on the job queue (plain JSON text). */
  enqueueBroadcast(options: { id: string; tenantId: string; text: string }): Promise<void>;
  /** Clears the stub's records and rate-limit history, the storage counts and the instances' tallies. */
  resetCounters(): Promise<void>;
  snapshotStub(): Promise<StubSnapshot>;
  /** Throws with the log tail if an instance has exited (a `StopWaiting`: it also ends a `waitFor`). */
  assertAlive(): void;
  close(): Promise<void>;
}

/**
 * App settings for an instance: hermetic (every setting of src/config.ts cleared unless set here),
 * the stub world's own settings, the counted storage account and the job queue, then `extra`.
 */
function instanceEnv(
  storageConnectionString: string,
  stub: StubReady,
  extra: Readonly<Record<string, string | undefined>>,
): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS;
  for (const key of Object.keys(env))
    if (key.startsWith('AzureFunctionsJobHost__') || key.startsWith('AzureWebJobsStorage__')) delete env[key];
  // An empty value counts as unset for the app (src/config.ts) and wins over local.settings.json.
  for (const setting of SETTINGS) env[setting.name] = '';
  Object.assign(env, {
    FUNCTIONS_WORKER_RUNTIME: 'node',
    PORT: '0',
    HOST_LOG_LEVEL: 'info',
    // The stubs' loopback-only certificate, and only that.
    NODE_EXTRA_CA_CERTS: ensureLocalCertificate().certPath,
    ...stub.appSettings,
    AzureWebJobsStorage: storageConnectionString,
    OUTBOUND_QUEUE,
  });
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export async function startScaleWorld(options: ScaleWorldOptions): Promise<ScaleWorld> {
  if (!Number.isInteger(options.instances) || options.instances < 1 || options.instances > 16)
    throw new Error('instances must be 1..16');
  if (!existsSync(HOST_MAIN_JS) || !existsSync(STUB_PROCESS_JS)) {
    throw new Error(
      `${path.relative(REPO_ROOT, HOST_MAIN_JS)} or ${path.relative(REPO_ROOT, STUB_PROCESS_JS)} is missing: run npm run build (or ensureBuilt())`,
    );
  }
  const closers: (() => Promise<unknown>)[] = [];
  const close = async (): Promise<void> => {
    for (const closer of closers.splice(0).reverse()) {
      try {
        await Promise.race([closer(), sleep(20_000)]);
      } catch {
        // Best effort: keep stopping the rest.
      }
    }
  };
  try {
    const azurite = await startAzurite();
    killOnExit(azurite.process);
    closers.push(() => azurite.stop());
    const storage = await StorageCounter.start(azurite);
    closers.push(() => storage.close());
    const { handle: stub, ready } = startStubProcess({ rateLimit: options.rateLimit ?? true }, 'stub world');
    closers.push(() => stub.stop());
    const stubInfo = await ready;

    const env = instanceEnv(storage.connectionString, stubInfo, options.appEnv ?? {});
    const instances: AppInstance[] = [];
    closers.push(() => Promise.all(instances.map((i) => i.stop())));
    const started = await Promise.allSettled(
      Array.from({ length: options.instances }, (_, i) => AppInstance.start(i, env, options.startTimeoutMs ?? 90_000)),
    );
    for (const s of started) if (s.status === 'fulfilled') instances.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;

    const conversations = conversationStore(azurite.connectionString);
    const deliveries = createDeliveryStore(
      createTableClient({ kind: 'connectionString', connectionString: azurite.connectionString }, TABLES.deliveries),
    );
    const jobs = new QueueClient(azurite.connectionString, OUTBOUND_QUEUE);

    return {
      azurite,
      storage,
      stub,
      stubInfo,
      instances,
      directConnectionString: azurite.connectionString,
      conversations,
      deliveries,
      seedPersonalChats: ({ tenantId, prefix, count, salt = 7 }) =>
        seedPersonalChats(conversations, count, {
          prefix,
          serviceUrl: stubInfo.serviceUrl,
          salt,
          tenantId,
          userLabel: 'Scale User',
        }),
      async enqueueBroadcast({ id, tenantId, text }) {
        await jobs.createIfNotExists();
        await jobs.sendMessage(
          JSON.stringify({ id, to: { allInstalled: true, tenantId, conversationType: 'personal' }, text }),
        );
      },
      async resetCounters() {
        await stub.request({ cmd: 'reset' });
        storage.reset();
        for (const instance of instances) instance.resetTally();
      },
      async snapshotStub() {
        return (await stub.request({ cmd: 'snapshot' }, 60_000)).snapshot as StubSnapshot;
      },
      assertAlive() {
        for (const instance of instances) {
          if (!instance.alive)
            throw new StopWaiting(
              `instance ${instance.index} exited (code ${instance.process.exitCode}, signal ${instance.process.signalCode}):\n${instance.tail()}`,
            );
        }
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}
