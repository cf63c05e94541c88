/**
 * The whole chaos rig: storage (storage.ts), the stub world (host/emulator/world.ts) plus an
 * untrusted "foreign" Connector, and the app (appProcess.ts), with views of what the app stored and
 * the secrets it must never log.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { ensureBuilt } from '../../../bench/lib/build';
import { DEV_ACCOUNT_KEY } from '../../../host/azurite';
import {
  startConnectorServer,
  startStubWorld,
  type Activity,
  type ChannelTokenIssuer,
  type ConnectorServer,
  type EntraServer,
  type MintChannelTokenOptions,
  type OpenIdServer,
  type StubWorld,
} from '../../../host/emulator';
import { toTableKey } from '../../../src/core/tableKeys';
import { AppProcess } from './appProcess';
import { freePort, mapLimit, sleep, waitFor } from './helpers';
import { LogCapture } from './logCapture';
import {
  APP_ID,
  BOT_TENANT,
  CONNECTOR_TIMEOUT_MS,
  MAX_ATTEMPTS,
  OUTBOUND_QUEUE,
  POISON_QUEUE,
  QUEUE_LEASE_SECONDS,
  SEED,
} from './plan';
import { ChaosStorage } from './storage';

export interface PostAnswer {
  readonly status: number;
  readonly body: string;
  readonly ms: number;
}

export interface PoisonEntry {
  readonly teamsCourier?: { jobId: string; code: string; reason: string; attempts: number; failedAt: string };
  readonly job?: unknown;
  /** The raw text, when the message is not the sender's envelope (the host moved it). */
  readonly raw: string;
}

export class ChaosRig {
  readonly runDir: string;
  readonly log: LogCapture;
  readonly storage: ChaosStorage;
  readonly appPassword = `chaos-secret-${randomBytes(18).toString('base64url')}`;
  world!: StubWorld;
  issuer!: ChannelTokenIssuer;
  openId!: OpenIdServer;
  entra!: EntraServer;
  connector!: ConnectorServer;
  /** An HTTPS host the app must never call: it is not a trusted Bot Connector origin. */
  foreign!: ConnectorServer;
  app!: AppProcess;
  readonly agent = new Agent({ connections: 256, keepAliveTimeout: 10_000, pipelining: 0 });
  /** Every channel token this suite minted (for the leak search). */
  readonly mintedTokens = new Set<string>();
  /** Poison messages read so far (reading deletes them from the queue). */
  readonly poison: PoisonEntry[] = [];
  readonly #tokenCache = new Map<string, Promise<string>>();
  readonly #closers: (() => Promise<unknown> | unknown)[] = [];

  constructor() {
    this.runDir = mkdtempSync(path.join(os.tmpdir(), `teams-courier-chaos-${SEED}-`));
    this.log = new LogCapture(path.join(this.runDir, 'all.log'));
    this.storage = new ChaosStorage(path.join(this.runDir, 'azurite'));
  }

  async start(): Promise<void> {
    ensureBuilt();
    const stubLog = (line: string): void => this.log.line(`[stub] ${line}`);
    await this.storage.start();
    this.#closers.push(() => this.storage.close());
    this.world = await startStubWorld({
      bot: { appId: APP_ID, tenantId: BOT_TENANT, secret: this.appPassword },
      connector: { log: stubLog },
    });
    this.#closers.push(() => this.world.close());
    ({ issuer: this.issuer, openId: this.openId, entra: this.entra, connector: this.connector } = this.world);
    this.foreign = await startConnectorServer({ auth: false, log: stubLog });
    this.#closers.push(() => this.foreign.close());
    this.app = new AppProcess({
      port: await freePort(),
      env: this.appEnv(this.storage.connectionString),
      log: this.log,
    });
    this.#closers.push(() => this.app.stop(10_000));
    await this.app.start();
  }

  appEnv(storageConnectionString: string): Record<string, string> {
    return this.world.appSettings({
      AzureWebJobsStorage: storageConnectionString,
      OUTBOUND_QUEUE,
      CONNECTOR_TIMEOUT_MS: String(CONNECTOR_TIMEOUT_MS),
      DELIVERY_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      HOST_QUEUE_MESSAGE_LEASE_SECONDS: String(QUEUE_LEASE_SECONDS),
      HOST_LOG_LEVEL: 'info',
      // After a failed invocation (storage down), look at the message again soon.
      AzureFunctionsJobHost__extensions__queues__visibilityTimeout: '00:00:01',
      AzureFunctionsJobHost__extensions__queues__maxPollingInterval: '00:00:01',
    });
  }

  /** Restarts the app with its storage pointed somewhere else (a proxy) or back at Azurite. */
  async restartApp(storageConnectionString: string): Promise<void> {
    await this.app.stop();
    this.app.setEnv({ AzureWebJobsStorage: storageConnectionString });
    await this.app.start();
  }

  async close(): Promise<void> {
    for (const close of this.#closers.splice(0).reverse()) {
      try {
        await Promise.race([close(), sleep(30_000)]);
      } catch {
        // Best effort: keep stopping the rest.
      }
    }
    await this.agent.close().catch(() => undefined);
    this.log.close();
  }

  /** Removes the run folder (logs, Azurite data) unless CHAOS_KEEP is set. */
  cleanUp(): void {
    if (process.env.CHAOS_KEEP) return;
    rmSync(this.runDir, { recursive: true, force: true });
  }

  // ---- Inbound -------------------------------------------------------------------------------

  /** A channel token (cached per serviceUrl: Teams reuses its tokens too). */
  token(serviceUrl: string): Promise<string> {
    let token = this.#tokenCache.get(serviceUrl);
    if (token === undefined) {
      token = this.mint({ appId: APP_ID, serviceUrl });
      this.#tokenCache.set(serviceUrl, token);
    }
    return token;
  }

  async mint(options: MintChannelTokenOptions): Promise<string> {
    const token = await this.issuer.mintChannelToken(options);
    this.mintedTokens.add(token);
    return token;
  }

  /** POSTs raw bytes to /api/messages. Never throws for an HTTP status; a network error gives status 0. */
  async post(
    body: string | Buffer,
    headers: Record<string, string>,
    options: { method?: string; timeoutMs?: number } = {},
  ): Promise<PostAnswer> {
    const started = performance.now();
    try {
      const response = await request(`${this.app.url}/api/messages`, {
        method: (options.method ?? 'POST') as 'POST',
        headers,
        body,
        dispatcher: this.agent,
        headersTimeout: options.timeoutMs ?? 30_000,
        bodyTimeout: options.timeoutMs ?? 30_000,
      });
      const text = await response.body.text();
      return { status: response.statusCode, body: text, ms: performance.now() - started };
    } catch (err) {
      return {
        status: 0,
        body: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
        ms: performance.now() - started,
      };
    }
  }

  /** POSTs an activity signed for its own serviceUrl. */
  async postSigned(activity: Activity): Promise<PostAnswer> {
    const token = await this.token(activity.serviceUrl ?? '');
    return this.post(JSON.stringify(activity), {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json; charset=utf-8',
    });
  }

  // ---- Storage views -------------------------------------------------------------------------

  async deliveryRecord(jobId: string): Promise<Record<string, unknown> | undefined> {
    try {
      return await this.storage.table('deliveries').getEntity<Record<string, unknown>>(toTableKey(jobId), 'job');
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  async conversation(conversationId: string): Promise<Record<string, unknown> | undefined> {
    try {
      return await this.storage
        .table('conversations')
        .getEntity<Record<string, unknown>>(toTableKey(conversationId), 'ref');
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  /** Every entity of a table (bounded). */
  async scan(tableName: string, select?: string[]): Promise<Record<string, unknown>[]> {
    const rows: Record<string, unknown>[] = [];
    const client = this.storage.table(tableName);
    const iterator = client.listEntities<Record<string, unknown>>(
      select === undefined ? {} : { queryOptions: { select } },
    );
    try {
      for await (const row of iterator) {
        rows.push(row);
        if (rows.length > 200_000) break;
      }
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return rows;
      throw err;
    }
    return rows;
  }

  /** Messages on a queue, visible or not (Azurite counts both). */
  async queueLength(name: string): Promise<number> {
    const queue = this.storage.queue(name);
    if (!(await queue.exists())) return 0;
    return (await queue.getProperties()).approximateMessagesCount ?? 0;
  }

  /** Reads (and deletes) everything on the poison queue into `this.poison`; returns what was new. */
  async readPoison(): Promise<PoisonEntry[]> {
    const queue = this.storage.queue(POISON_QUEUE);
    if (!(await queue.exists())) return [];
    const fresh: PoisonEntry[] = [];
    for (let i = 0; i < 2_000; i += 1) {
      const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
      if (receivedMessageItems.length === 0) break;
      for (const item of receivedMessageItems) {
        let entry: PoisonEntry = { raw: item.messageText };
        try {
          const parsed = JSON.parse(item.messageText) as { teamsCourier?: PoisonEntry['teamsCourier']; job?: unknown };
          if (typeof parsed === 'object' && parsed !== null && typeof parsed.teamsCourier?.reason === 'string') {
            entry = { raw: item.messageText, teamsCourier: parsed.teamsCourier, job: parsed.job };
          }
        } catch {
          // Not the sender's envelope: the host moved the message as it was.
        }
        fresh.push(entry);
      }
      await Promise.all(
        receivedMessageItems.map((item) => queue.deleteMessage(item.messageId, item.popReceipt).catch(() => undefined)),
      );
    }
    this.poison.push(...fresh);
    return fresh;
  }

  /**
   * Puts messages on the job queue (plain text as given), `concurrency` at a time. Retries through a
   * short outage; a message the queue refuses (4xx) is not retried: its status is returned instead.
   */
  async enqueue(texts: readonly string[], concurrency = 16): Promise<(number | undefined)[]> {
    const queue = this.storage.queue(OUTBOUND_QUEUE);
    await waitFor('the job queue', 30_000, async () => {
      await queue.createIfNotExists();
      return true;
    });
    return mapLimit(texts, concurrency, async (text) =>
      waitFor(
        'enqueueing a job',
        60_000,
        async () => {
          try {
            await queue.sendMessage(text);
            return { refused: undefined };
          } catch (err) {
            const status = (err as { statusCode?: number }).statusCode;
            if (status !== undefined && status >= 400 && status < 500) return { refused: status };
            throw err;
          }
        },
        250,
      ).then((r) => r.refused),
    );
  }

  /** Every secret the app holds or was handed, by name, for the log search. */
  secrets(): { secrets: Map<string, string>; botTokens: number; channelTokens: number } {
    const secrets = new Map<string, string>([
      ['the app password (MicrosoftAppPassword)', this.appPassword],
      ['the storage account key', DEV_ACCOUNT_KEY],
      ['the storage account key (URL-encoded)', encodeURIComponent(DEV_ACCOUNT_KEY)],
    ]);
    const botTokens = new Set<string>();
    for (const record of [...this.connector.requests, ...this.foreign.requests]) {
      const token = /^Bearer (\S+)$/.exec(record.authorization ?? '')?.[1];
      if (token !== undefined) botTokens.add(token);
    }
    for (const token of botTokens) {
      secrets.set(`a bot token (…${token.slice(-10)})`, token);
      // The signature alone identifies the token: finding it means the token leaked, even if cut.
      const signature = token.split('.')[2] ?? '';
      if (signature.length >= 16) secrets.set(`a bot token's signature (…${signature.slice(-10)})`, signature);
    }
    let channelTokens = 0;
    for (const token of this.mintedTokens) {
      const signature = token.split('.')[2] ?? '';
      if (signature.length < 16) continue;
      secrets.set(`a channel token's signature (…${signature.slice(-10)})`, signature);
      channelTokens += 1;
    }
    return { secrets, botTokens: botTokens.size, channelTokens };
  }
}

/** The job id a delivered message belongs to: the suite puts `[job:<id>]` at the start of every text it sends. */
export function jobIdOfText(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  return /^\[job:([^\]]+)\]/.exec(text)?.[1];
}
