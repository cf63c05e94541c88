/**
 * A scale-out rig: ONE Azurite, ONE stub world (Entra + Bot Connector, Teams' limits enforced across
 * every caller, in its own process), and N app instances, each a separate `node dist/host/main.js`
 * on its own port, all sharing one storage account, as Azure runs the queue-triggered sender when
 * it scales out. Used by `bench/scaleOut.ts` and `test/scale/` (through `test/helpers/instances.ts`).
 *
 * What it measures, and how:
 * - Deliveries, 429s and rates come from the Connector stub's own records (`snapshot`).
 * - Storage transactions: the instances do not talk to Azurite directly. Their `AzureWebJobsStorage`
 *   points at a counting HTTP proxy on loopback (one port per service), which forwards every request
 *   unchanged and counts it by service and operation (`StorageCounter`). The rig's own storage calls
 *   (seeding references, enqueueing the broadcast, polling for the end, reading records back) go to
 *   Azurite directly and are never counted.
 *
 * This file is also the stub world's child process: `node dist/bench/lib/instances.js --stub-world`
 * (JSON lines on stdout, commands on stdin: the bench/lib/common.ts protocol).
 *
 * Everything is on loopback. Every wait is bounded in time and every loop in count; `close()` stops
 * every process and server the world started, also after a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { QueueClient } from '@azure/storage-queue';
import { developmentConnectionString, startAzurite, type AzuriteInstance } from '../../host/azurite';
import { ensureLocalCertificate } from '../../host/emulator/certificate';
import { personalMessage } from '../../host/emulator/activities';
import { startConnectorServer } from '../../host/emulator/connectorServer';
import { startEntraServer } from '../../host/emulator/entraServer';
import { SETTINGS } from '../../src/config';
import { parseActivity, toCapturePlan, type CapturePlan } from '../../src/core/activity';
import { createConversationStore, type ConversationStore } from '../../src/store/conversationStore';
import { createDeliveryStore, type DeliveryStore } from '../../src/store/deliveryStore';
import { createTableClient } from '../../src/store/tableClients';
import { TABLES } from '../../src/store/tables';
import { childConfig, emit, installLoopbackGuard, killOnExit, onCommands, processCpuMs, runPool, sleep, startChild, type ChildHandle } from './common';
import { BENCH_APP_ID, BENCH_APP_SECRET, BENCH_BOT_NAME, BENCH_BOT_TENANT, BOT_FRAMEWORK_RESOURCE, benchAadObjectId, benchConversationId, benchUserId } from './identities';

// ---- Where things are -------------------------------------------------------------------------

/** The repository root: the nearest folder above this module with a package.json (works from bench/lib and dist/bench/lib). */
export function findRepoRoot(from: string = __dirname): string {
  for (let dir = from, i = 0; i < 32; dir = path.dirname(dir), i += 1) {
    if (existsSync(path.join(dir, 'package.json'))) return dir;
    if (path.dirname(dir) === dir) break;
  }
  throw new Error(`no package.json above ${from}`);
}

export const ROOT = findRepoRoot();
export const HOST_MAIN_JS = path.join(ROOT, 'dist', 'host', 'main.js');
/** This module, compiled: the stub world's child process. */
export const INSTANCES_JS = path.join(ROOT, 'dist', 'bench', 'lib', 'instances.js');
export const OUTBOUND_QUEUE = 'outbound-messages';
/** Teams' published limit per bot per tenant, which the stub enforces (host/emulator/rateLimiter.ts). */
export const TENANT_CAP_PER_SECOND = 50;

function newestMtime(dir: string, budget = { files: 20_000 }): number {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (budget.files <= 0) break;
    if (entry.name === 'node_modules' || entry.name === 'baseline') continue;
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(file, budget));
    else if (entry.name.endsWith('.ts')) {
      budget.files -= 1;
      newest = Math.max(newest, statSync(file).mtimeMs);
    }
  }
  return newest;
}

/**
 * The rig runs the compiled app and stub (`dist/`). CI builds before the tests; when dist is missing
 * or older than src/, host/ or bench/, it is built here once (tsc emits even with type errors: the
 * CI type-check step reports those).
 */
export function ensureBuilt(): void {
  const sources = Math.max(...['src', 'host', 'bench'].map((d) => newestMtime(path.join(ROOT, d))));
  const built = existsSync(HOST_MAIN_JS) && existsSync(INSTANCES_JS) ? Math.min(statSync(HOST_MAIN_JS).mtimeMs, statSync(INSTANCES_JS).mtimeMs) : 0;
  if (built >= sources) return;
  const result = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, encoding: 'utf8', timeout: 240_000 });
  if (!existsSync(HOST_MAIN_JS) || !existsSync(INSTANCES_JS)) throw new Error(`the build did not produce dist/:\n${result.stdout}\n${result.stderr}`);
}

// ---- Identities ---------------------------------------------------------------------------------

/** Customer tenant `k` of the rig (made up, GUID-shaped). */
export function scaleTenantId(k: number): string {
  return `72f988bf-0000-4000-8000-000005ca1e${String(k % 100).padStart(2, '0')}`;
}

/** Conversation-id prefix of tenant `k`'s personal chats. */
export function scalePrefix(k: number): string {
  return `sc${k}`;
}

// ---- Counting storage proxy ---------------------------------------------------------------------

export type StorageService = 'table' | 'queue' | 'blob';

export interface OperationCount {
  /** HTTP requests. */
  requests: number;
  /** Responses by HTTP status ("error" = no response: the connection failed). */
  statuses: Record<string, number>;
  /** Table `$batch` only: operations inside the batches. */
  batchedOperations?: number;
}

export interface StorageCounts {
  /** Every HTTP request the instances sent to storage since the last reset. */
  readonly total: number;
  readonly byService: Record<StorageService, number>;
  /** Key: `<service> <table or queue> <operation>`, e.g. `table deliveries update (Replace, If-Match)`, `queue outbound-messages receive (empty)`. */
  readonly byOperation: Record<string, OperationCount>;
}

const QUEUE_MESSAGE_TAG = '<QueueMessage>';
const MAX_BATCH_BODY_BYTES = 8 * 1024 * 1024;

/** Names one storage request. `account`-relative path, e.g. `/devstoreaccount1/deliveries(PartitionKey='a',RowKey='job')`. */
export function classifyStorageRequest(service: StorageService, method: string, url: string, headers: http.IncomingHttpHeaders): string {
  const [rawPath = '/', query = ''] = url.split('?', 2);
  const parts = rawPath.split('/').filter((p) => p !== '');
  const params = new URLSearchParams(query);
  const m = method.toUpperCase();
  if (service === 'blob') return `blob ${parts[1] ?? '(account)'} ${m}`;
  if (service === 'queue') {
    const queue = decodeURIComponent(parts[1] ?? '(account)');
    if (parts.length <= 1) return `queue (account) ${params.get('comp') ?? m}`;
    if (parts.length === 2) {
      const comp = params.get('comp');
      if (comp === 'metadata') return `queue ${queue} ${m === 'GET' || m === 'HEAD' ? 'get properties' : 'set metadata'}`;
      if (m === 'PUT') return `queue ${queue} create`;
      if (m === 'DELETE') return `queue ${queue} delete queue`;
      return `queue ${queue} ${m}${comp ? ` comp=${comp}` : ''}`;
    }
    if (parts[2] === 'messages' && parts.length === 3) {
      if (m === 'GET') return `queue ${queue} ${params.get('peekonly') === 'true' ? 'peek' : 'receive'}`;
      if (m === 'POST') return `queue ${queue} send`;
      if (m === 'DELETE') return `queue ${queue} clear`;
    }
    if (parts[2] === 'messages' && parts.length === 4) {
      if (m === 'DELETE') return `queue ${queue} delete message`;
      if (m === 'PUT') return `queue ${queue} update message (visibility)`;
    }
    return `queue ${queue} ${m} ${parts.slice(2).join('/')}`;
  }
  // Table service.
  const resource = decodeURIComponent(parts[1] ?? '');
  if (resource === '$batch') return 'table (batch)';
  if (resource === 'Tables' || resource.startsWith('Tables(')) return `table Tables ${m === 'POST' ? 'create table' : m === 'DELETE' ? 'delete table' : 'list tables'}`;
  const paren = resource.indexOf('(');
  const table = paren < 0 ? resource : resource.slice(0, paren);
  const keys = paren < 0 ? '' : resource.slice(paren + 1, resource.lastIndexOf(')'));
  const hasKeys = keys.includes('PartitionKey');
  const ifMatch = headers['if-match'] !== undefined;
  switch (m) {
    case 'GET':
      return `table ${table} ${hasKeys ? 'get' : 'query'}`;
    case 'POST':
      return `table ${table} insert`;
    case 'PUT':
      return `table ${table} ${ifMatch ? 'update (Replace, If-Match)' : 'upsert (Replace)'}`;
    case 'PATCH':
    case 'MERGE':
      return `table ${table} ${ifMatch ? 'update (Merge, If-Match)' : 'upsert (Merge)'}`;
    case 'DELETE':
      return `table ${table} delete`;
    default:
      return `table ${table} ${m}`;
  }
}

/** The operations inside a table `$batch` body (one request line each) and the table of the first. */
export function parseBatchBody(body: string): { operations: number; table: string } {
  let operations = 0;
  let table = '?';
  for (const match of body.matchAll(/^(GET|POST|PUT|PATCH|MERGE|DELETE) (\S+) HTTP\/1\.1\r?$/gm)) {
    operations += 1;
    if (operations === 1) {
      const pathPart = match[2]!.replace(/^https?:\/\/[^/]+/, '');
      const resource = decodeURIComponent(pathPart.split('/').filter((p) => p !== '')[1] ?? '?');
      table = resource.split('(')[0]!;
    }
  }
  return { operations, table };
}

/**
 * An HTTP proxy per storage service in front of Azurite. Requests and responses are forwarded byte
 * for byte (Shared Key signatures do not cover the Host header, so they stay valid); each request is
 * counted once its response has ended, by `classifyStorageRequest`. A queue receive whose answer
 * holds no message counts as `receive (empty)`.
 */
export class StorageCounter {
  #counts: { total: number; byService: Record<StorageService, number>; byOperation: Record<string, OperationCount> } = StorageCounter.#empty();
  readonly #servers: http.Server[] = [];
  readonly #agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  readonly ports: Record<StorageService, number> = { table: 0, queue: 0, blob: 0 };

  static #empty(): { total: number; byService: Record<StorageService, number>; byOperation: Record<string, OperationCount> } {
    return { total: 0, byService: { table: 0, queue: 0, blob: 0 }, byOperation: {} };
  }

  static async start(target: { tablePort: number; queuePort: number; blobPort: number }): Promise<StorageCounter> {
    const counter = new StorageCounter();
    const targets: Record<StorageService, number> = { table: target.tablePort, queue: target.queuePort, blob: target.blobPort };
    for (const service of ['table', 'queue', 'blob'] as const) {
      const server = http.createServer((req, res) => counter.#forward(service, targets[service], req, res));
      server.keepAliveTimeout = 30_000;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      counter.#servers.push(server);
      counter.ports[service] = (server.address() as { port: number }).port;
    }
    return counter;
  }

  /** A connection string for Azurite's development account with every endpoint on this proxy. */
  get connectionString(): string {
    return developmentConnectionString({ blobPort: this.ports.blob, queuePort: this.ports.queue, tablePort: this.ports.table });
  }

  snapshot(): StorageCounts {
    return JSON.parse(JSON.stringify(this.#counts)) as StorageCounts;
  }

  reset(): void {
    this.#counts = StorageCounter.#empty();
  }

  #count(service: StorageService, operation: string, status: string, batchedOperations?: number): void {
    const counts = this.#counts;
    counts.total += 1;
    counts.byService[service] += 1;
    const entry = (counts.byOperation[operation] ??= { requests: 0, statuses: {} });
    entry.requests += 1;
    entry.statuses[status] = (entry.statuses[status] ?? 0) + 1;
    if (batchedOperations !== undefined) entry.batchedOperations = (entry.batchedOperations ?? 0) + batchedOperations;
  }

  #forward(service: StorageService, targetPort: number, req: http.IncomingMessage, res: http.ServerResponse): void {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    let operation = classifyStorageRequest(service, method, url, req.headers);
    const isBatch = operation === 'table (batch)';
    const isReceive = operation.endsWith(' receive');
    let batched: number | undefined;
    let counted = false;
    const count = (status: string): void => {
      if (counted) return;
      counted = true;
      this.#count(service, operation, status, batched);
    };
    const upstream = http.request({ host: '127.0.0.1', port: targetPort, method, path: url, headers: req.headers, agent: this.#agent }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.rawHeaders);
      let sawMessage = false;
      let carry = '';
      answer.on('data', (chunk: Buffer) => {
        if (isReceive && !sawMessage) {
          const text = carry + chunk.toString('latin1');
          sawMessage = text.includes(QUEUE_MESSAGE_TAG);
          carry = text.slice(-QUEUE_MESSAGE_TAG.length);
        }
        res.write(chunk);
      });
      answer.on('end', () => {
        if (isReceive && !sawMessage) operation += ' (empty)';
        count(String(answer.statusCode ?? 'none'));
        res.end();
      });
      answer.on('error', () => {
        count('error');
        res.destroy();
      });
    });
    upstream.on('error', () => {
      count('error');
      res.destroy();
    });
    if (!isBatch) {
      req.pipe(upstream);
      return;
    }
    // A batch is counted as one request; its operations (and their table) are read from the body.
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BATCH_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const parsed = parseBatchBody(body.toString('utf8'));
      batched = parsed.operations;
      operation = `table ${parsed.table} batch`;
      upstream.end(body);
    });
  }

  async close(): Promise<void> {
    await Promise.all(
      this.#servers.map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      ),
    );
    this.#agent.destroy();
  }
}

// ---- Stub world (child process) -----------------------------------------------------------------

export interface StubWorldConfig {
  /** true: Teams' published limits (50/s per bot per tenant, 7/1 s, 8/2 s, 60/30 s per conversation ...); false: none. */
  readonly rateLimit: boolean;
}

export interface TenantTraffic {
  /** Write requests (send, reply, create conversation ...) to this tenant's conversations. */
  requests: number;
  throttled: number;
  delivered: number;
  /** Arrival times (epoch ms, the stub's clock) of the delivered messages, ascending. */
  deliveryTimes: number[];
}

export interface StubSnapshot {
  readonly requests: number;
  readonly delivered: number;
  readonly throttled: number;
  readonly byStatus: Record<string, number>;
  readonly byOperation: Record<string, number>;
  /** 429s by the limit that refused them: thread (per bot per conversation), threadAllBots, tenant. */
  readonly throttledBy: Record<string, number>;
  /** Delivered messages per conversation id. */
  readonly perConversation: Record<string, number>;
  readonly perTenant: Record<string, TenantTraffic>;
  readonly tokenRequests: number;
  readonly cpuMs: number;
}

export interface StubWorldReady {
  readonly authorityHost: string;
  readonly connectorOrigin: string;
  /** Where the seeded references point (`<origin>/amer/`). */
  readonly serviceUrl: string;
  /** BOT_GLOBAL_SERVICE_URL (`<origin>/teams/`). */
  readonly globalServiceUrl: string;
  readonly pid: number;
}

async function stubWorldMain(): Promise<void> {
  installLoopbackGuard();
  const config = childConfig<StubWorldConfig>();
  const entra = await startEntraServer({ apps: [{ clientId: BENCH_APP_ID, tenantId: BENCH_BOT_TENANT, clientSecret: BENCH_APP_SECRET }] });
  const connector = await startConnectorServer({
    auth: { jwks: () => entra.jwks(), audiences: [BOT_FRAMEWORK_RESOURCE], appIds: [BENCH_APP_ID] },
    // {} = the defaults, which are Teams' published limits; one limiter for every caller.
    rateLimit: config.rateLimit ? {} : false,
  });
  let closing: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closing ??= Promise.allSettled([connector.close(), entra.close()]).then(() => undefined);
    return closing;
  };

  const snapshot = (): StubSnapshot => {
    const byStatus: Record<string, number> = {};
    const byOperation: Record<string, number> = {};
    const throttledBy: Record<string, number> = {};
    const perTenant: Record<string, TenantTraffic> = {};
    const tenant = (id: string | undefined): TenantTraffic => (perTenant[id ?? 'unknown'] ??= { requests: 0, throttled: 0, delivered: 0, deliveryTimes: [] });
    for (const r of connector.requests) {
      const status = r.status === null ? 'none' : String(r.status);
      byStatus[status] = (byStatus[status] ?? 0) + 1;
      byOperation[r.operation] = (byOperation[r.operation] ?? 0) + 1;
      if (r.throttled !== undefined) throttledBy[r.throttled] = (throttledBy[r.throttled] ?? 0) + 1;
      if (r.operation === 'getMember' || r.operation === 'unknown') continue;
      const t = tenant(r.tenantId);
      t.requests += 1;
      if (r.throttled !== undefined || r.status === 429) t.throttled += 1;
    }
    const perConversation: Record<string, number> = {};
    for (const d of connector.delivered) {
      if (d.operation === 'deleteActivity' || d.operation === 'updateActivity') continue;
      perConversation[d.conversationId] = (perConversation[d.conversationId] ?? 0) + 1;
      const t = tenant(d.tenantId);
      t.delivered += 1;
      t.deliveryTimes.push(d.time);
    }
    for (const t of Object.values(perTenant)) t.deliveryTimes.sort((a, b) => a - b);
    const cpu = process.cpuUsage();
    return {
      requests: connector.stats.requests,
      delivered: connector.stats.delivered,
      throttled: connector.stats.throttled,
      byStatus,
      byOperation,
      throttledBy,
      perConversation,
      perTenant,
      tokenRequests: entra.tokenRequests(),
      cpuMs: (cpu.user + cpu.system) / 1000,
    };
  };

  onCommands(
    async (command) => {
      switch (command.cmd) {
        case 'snapshot':
          return { snapshot: snapshot() };
        case 'progress':
          return { delivered: connector.stats.delivered, requests: connector.stats.requests };
        case 'reset':
          connector.reset();
          entra.resetCounters();
          return { ok: true };
        case 'close':
          await close();
          setImmediate(() => process.exit(0));
          return { ok: true };
        default:
          throw new Error(`unknown command ${String(command.cmd)}`);
      }
    },
    () => {
      void close().then(() => process.exit(0));
    },
  );
  const ready: StubWorldReady = {
    authorityHost: entra.authorityHost,
    connectorOrigin: connector.origin,
    serviceUrl: connector.serviceUrl('amer'),
    globalServiceUrl: connector.serviceUrl('teams'),
    pid: process.pid,
  };
  emit({ ready: true, ...ready });
}

// ---- App instances ------------------------------------------------------------------------------

/** One `node dist/host/main.js` process. Its log lines are tallied by event, not kept (but a tail). */
export class AppInstance {
  readonly index: number;
  readonly process: ChildProcess;
  url = '';
  /** Sender outcomes from the app's log: `job.sent`, `job.deferred:rate limit`, `job.retrying:Throttled`, ... */
  tally: Record<string, number> = {};
  /** Unexpected warning and error lines (first few). */
  readonly problems: string[] = [];
  #tail: string[] = [];
  #exited: Promise<void>;

  private constructor(index: number, child: ChildProcess) {
    this.index = index;
    this.process = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  get alive(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  tail(lines = 30): string {
    return this.#tail.slice(-lines).join('\n');
  }

  static async start(index: number, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<AppInstance> {
    const child = spawn(process.execPath, [HOST_MAIN_JS], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    killOnExit(child);
    const instance = new AppInstance(index, child);
    const started = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`instance ${index} did not start within ${timeoutMs} ms:\n${instance.tail()}`)), timeoutMs);
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`instance ${index} exited during start-up (code ${code}, signal ${signal}):\n${instance.tail()}`));
      });
      instance.onLine = (line) => {
        const match = /host\.started url="?(http:\/\/[^\s"]+)/.exec(line);
        if (match) {
          clearTimeout(timer);
          resolve(match[1]!);
        }
      };
    });
    for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', (line) => instance.#line(line));
    try {
      instance.url = await started;
    } catch (err) {
      await instance.stop(1_000);
      throw err;
    }
    instance.onLine = undefined;
    return instance;
  }

  onLine: ((line: string) => void) | undefined;

  #line(line: string): void {
    this.#tail.push(line);
    if (this.#tail.length > 60) this.#tail.shift();
    this.onLine?.(line);
    const event = /"event":"(job\.[A-Za-z]+)"/.exec(line)?.[1];
    if (event !== undefined) {
      let key = event;
      if (event === 'job.retrying' || event === 'job.failed') key += `:${/"code":"([^"]*)"/.exec(line)?.[1] ?? '?'}`;
      else if (event === 'job.deferred') key += `:${/"why":"([^"]*)"/.exec(line)?.[1] ?? '?'}`;
      this.tally[key] = (this.tally[key] ?? 0) + 1;
    }
    // Sender outcomes (retried, deferred, failed) are tallied above; the local host's note on function keys is noise.
    const problem = / error /.test(line) || (/ warning /.test(line) && !/"event":"job\.(retrying|deferred|failed)"|http\.keysNotEnforced/.test(line));
    if (problem && this.problems.length < 10) this.problems.push(line.slice(0, 300));
  }

  resetTally(): void {
    this.tally = {};
  }

  /** SIGTERM (the host drains), then SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.alive) return;
    this.process.kill('SIGTERM');
    const exited = await Promise.race([this.#exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!exited) {
      this.process.kill('SIGKILL');
      await Promise.race([this.#exited, sleep(5_000)]);
    }
  }
}

// ---- The world ----------------------------------------------------------------------------------

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
  readonly stubInfo: StubWorldReady;
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
  /** Throws with the log tail if an instance has exited. */
  assertAlive(): void;
  close(): Promise<void>;
}

/** App settings for an instance: hermetic (every setting of src/config.ts cleared unless set here). */
function instanceEnv(storageConnectionString: string, stub: StubWorldReady, extra: Readonly<Record<string, string | undefined>>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS;
  for (const key of Object.keys(env)) if (key.startsWith('AzureFunctionsJobHost__') || key.startsWith('AzureWebJobsStorage__')) delete env[key];
  // An empty value counts as unset for the app (src/config.ts) and wins over local.settings.json.
  for (const setting of SETTINGS) env[setting.name] = '';
  Object.assign(env, {
    FUNCTIONS_WORKER_RUNTIME: 'node',
    PORT: '0',
    HOST_LOG_LEVEL: 'info',
    // The stubs' loopback-only certificate, and only that.
    NODE_EXTRA_CA_CERTS: ensureLocalCertificate().certPath,
    AzureWebJobsStorage: storageConnectionString,
    MicrosoftAppId: BENCH_APP_ID,
    MicrosoftAppType: 'SingleTenant',
    MicrosoftAppTenantId: BENCH_BOT_TENANT,
    MicrosoftAppPassword: BENCH_APP_SECRET,
    BOT_AUTHORITY_HOST: stub.authorityHost,
    BOT_TRUSTED_SERVICE_URLS: stub.connectorOrigin,
    BOT_GLOBAL_SERVICE_URL: stub.globalServiceUrl,
    // No inbound traffic here; pointed at loopback so nothing could ever leave the machine.
    BOT_OPENID_METADATA_URL: `${stub.connectorOrigin}/unused/openid-configuration`,
    OUTBOUND_QUEUE,
  });
  for (const [key, value] of Object.entries(extra)) {
    if (value === undefined) delete env[key];
    else env[key] = value;
  }
  return env;
}

export async function startScaleWorld(options: ScaleWorldOptions): Promise<ScaleWorld> {
  if (!Number.isInteger(options.instances) || options.instances < 1 || options.instances > 16) throw new Error('instances must be 1..16');
  if (!existsSync(HOST_MAIN_JS) || !existsSync(INSTANCES_JS)) throw new Error(`${path.relative(ROOT, HOST_MAIN_JS)} or ${path.relative(ROOT, INSTANCES_JS)} is missing: run npm run build (or ensureBuilt())`);
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
    const stub = startChild({
      label: 'stub world',
      args: [INSTANCES_JS, '--stub-world'],
      cwd: ROOT,
      env: { NODE_EXTRA_CA_CERTS: undefined, NODE_OPTIONS: undefined },
      config: { rateLimit: options.rateLimit ?? true } satisfies StubWorldConfig,
      firstTimeoutMs: 30_000,
    });
    closers.push(() => stub.stop());
    const stubInfo = (await stub.first) as unknown as StubWorldReady;

    const env = instanceEnv(storage.connectionString, stubInfo, options.appEnv ?? {});
    const instances: AppInstance[] = [];
    closers.push(() => Promise.all(instances.map((i) => i.stop())));
    const started = await Promise.allSettled(Array.from({ length: options.instances }, (_, i) => AppInstance.start(i, env, options.startTimeoutMs ?? 90_000)));
    for (const s of started) if (s.status === 'fulfilled') instances.push(s.value);
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;

    const direct = { kind: 'connectionString' as const, connectionString: azurite.connectionString };
    const conversations = createConversationStore({ conversations: createTableClient(direct, TABLES.conversations), userChats: createTableClient(direct, TABLES.userChats) });
    const deliveries = createDeliveryStore(createTableClient(direct, TABLES.deliveries));
    const jobs = new QueueClient(azurite.connectionString, OUTBOUND_QUEUE);

    const world: ScaleWorld = {
      azurite,
      storage,
      stub,
      stubInfo,
      instances,
      directConnectionString: azurite.connectionString,
      conversations,
      deliveries,
      async seedPersonalChats({ tenantId, prefix, count, salt = 7 }) {
        const ids = Array.from({ length: count }, (_, i) => benchConversationId(prefix, i));
        let failures = 0;
        const { timedOut } = await runPool(count, 16, Date.now() + 120_000, async (i) => {
          const activity = personalMessage({
            appId: BENCH_APP_ID,
            tenantId,
            serviceUrl: stubInfo.serviceUrl,
            botName: BENCH_BOT_NAME,
            conversationId: ids[i]!,
            user: { id: benchUserId(prefix, i), name: `Scale User ${i}`, aadObjectId: benchAadObjectId(i, salt) },
            text: 'hello',
          }) as unknown as Record<string, unknown>;
          const plan = toCapturePlan(parseActivity(activity));
          if (plan.kind !== 'capture') throw new Error(`not capturable: ${plan.reason}`);
          try {
            await conversations.capture(plan as Extract<CapturePlan, { kind: 'capture' }>, new Date());
          } catch {
            failures += 1;
          }
        });
        if (timedOut || failures > 0) throw new Error(`seeding ${prefix}: ${failures} failures${timedOut ? ', timed out' : ''}`);
        return ids;
      },
      async enqueueBroadcast({ id, tenantId, text }) {
        await jobs.createIfNotExists();
        await jobs.sendMessage(JSON.stringify({ id, to: { allInstalled: true, tenantId, conversationType: 'personal' }, text }));
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
          if (!instance.alive) throw new Error(`instance ${instance.index} exited (code ${instance.process.exitCode}, signal ${instance.process.signalCode}):\n${instance.tail()}`);
        }
      },
      close,
    };
    return world;
  } catch (err) {
    await close();
    throw err;
  }
}

// ---- One broadcast run --------------------------------------------------------------------------

export interface BroadcastPlan {
  /** One broadcast per tenant, all enqueued at once. */
  readonly tenants: readonly { readonly tenantId: string; readonly recipients: number }[];
  /** Limit for every broadcast to finish (all children recorded sent or failed); default 120 s. */
  readonly deadlineMs?: number;
  /** Job id prefix; default `scale-<time>`. */
  readonly runId?: string;
}

export interface ParentProgress {
  readonly id: string;
  readonly tenantId: string;
  readonly recipients: number;
  readonly status?: string;
  readonly fanOutComplete: boolean;
  readonly total?: number;
  readonly sent: number;
  readonly failed: number;
  readonly pending: number;
}

export interface ChildRecords {
  /** Child jobs' own delivery records (RowKey `job`, job id `<broadcast id>~<n>`), by status. */
  readonly byStatus: Record<string, number>;
  /** Children with more than one attempt (429s retried, ...). */
  readonly retried: number;
  readonly attempts: number;
  readonly ambiguousResends: number;
}

export interface TenantFigures {
  readonly tenantId: string;
  readonly recipients: number;
  readonly delivered: number;
  readonly requests: number;
  readonly throttled: number;
  /** First to last delivery at the stub, ms. */
  readonly spanMs: number;
  /** (delivered - 1) / span / cap. */
  readonly shareOfCap: number;
  /** Middle 80 % of the deliveries (10th to 90th by arrival): their count / their span / cap. */
  readonly steadyShareOfCap: number;
  readonly steadyRate: number;
  /** Deliveries in each second after the broadcast was enqueued (at most 300 seconds). */
  readonly perSecond: readonly number[];
}

export interface BroadcastRun {
  readonly instances: number;
  readonly recipients: number;
  /** Enqueue of the broadcast job(s) to the last delivery at the stub, ms. */
  readonly durationMs: number;
  /** Enqueue to the moment the rig saw every child recorded (polling: up to ~0.5 s late), ms. */
  readonly recordedMs: number;
  readonly timedOut: boolean;
  readonly parents: readonly ParentProgress[];
  readonly children: ChildRecords;
  readonly tenants: readonly TenantFigures[];
  /** Connector write requests (sends, creates ...) and 429s, whole run. */
  readonly connectorRequests: number;
  readonly throttled: number;
  readonly throttledShare: number;
  readonly throttledBy: Record<string, number>;
  readonly tokenRequests: number;
  /** Conversations with more than one delivery / seeded conversations with none / deliveries to conversations not seeded. */
  readonly duplicates: number;
  readonly missing: number;
  readonly unexpected: number;
  readonly deliveredExactlyOnce: boolean;
  readonly storage: StorageCounts;
  readonly storagePerMessage: number;
  /** Sender outcomes from the instances' logs, summed, and per instance. */
  readonly outcomes: Record<string, number>;
  readonly outcomesPerInstance: readonly Record<string, number>[];
  /** CPU ms over the run: instances (sum), Azurite, stub world. */
  readonly cpuMs: { readonly instances: number; readonly azurite: number; readonly stub: number };
  readonly problems: readonly string[];
}

/** (n - 1) deliveries per span, over the cap; middle 80 % likewise. Times ascending. */
export function shareOfCap(times: readonly number[], capPerSecond: number): { spanMs: number; share: number; steadyShare: number; steadyRate: number } {
  const n = times.length;
  if (n < 2) return { spanMs: 0, share: NaN, steadyShare: NaN, steadyRate: NaN };
  const spanMs = times[n - 1]! - times[0]!;
  const share = spanMs > 0 ? (n - 1) / (spanMs / 1000) / capPerSecond : NaN;
  const lo = Math.floor(n * 0.1);
  const hi = Math.max(lo + 1, Math.ceil(n * 0.9) - 1);
  const steadyMs = times[hi]! - times[lo]!;
  const steadyRate = steadyMs > 0 ? (hi - lo) / (steadyMs / 1000) : NaN;
  return { spanMs, share, steadyShare: steadyRate / capPerSecond, steadyRate };
}

/** Counts of `times` in each 1-second bucket from `from` (at most `maxSeconds` buckets). */
export function perSecond(times: readonly number[], from: number, maxSeconds = 300): number[] {
  const buckets: number[] = [];
  for (const t of times) {
    const k = Math.floor((t - from) / 1000);
    if (k < 0 || k >= maxSeconds) continue;
    while (buckets.length <= k) buckets.push(0);
    buckets[k]! += 1;
  }
  return buckets;
}

async function parentProgress(deliveries: DeliveryStore, id: string, tenantId: string, recipients: number): Promise<ParentProgress> {
  const record = await deliveries.get(id);
  const counts = record === undefined ? { sent: 0, failed: 0, pending: 0 } : await deliveries.countChildren(id);
  return {
    id,
    tenantId,
    recipients,
    ...(record?.status === undefined ? {} : { status: record.status }),
    fanOutComplete: record?.fanOutComplete === true,
    ...(record?.total === undefined ? {} : { total: record.total }),
    sent: counts.sent,
    failed: counts.failed,
    pending: counts.pending,
  };
}

const isDone = (p: ParentProgress): boolean => p.fanOutComplete && p.total !== undefined && p.sent + p.failed >= p.total;

/** Reads every child job's own record back (one scan of `deliveries`, straight from Azurite). */
async function readChildRecords(world: ScaleWorld, parentIds: readonly string[]): Promise<ChildRecords> {
  const parents = new Set(parentIds);
  const table = createTableClient({ kind: 'connectionString', connectionString: world.directConnectionString }, TABLES.deliveries);
  const byStatus: Record<string, number> = {};
  let retried = 0;
  let attempts = 0;
  let ambiguousResends = 0;
  let rows = 0;
  for await (const row of table.listEntities<Record<string, unknown>>({ queryOptions: { select: ['RowKey', 'jobId', 'status', 'attempts', 'ambiguousResends'] } })) {
    rows += 1;
    if (rows > 200_000) break;
    // A child's own record does not name its parent; its id does (`<broadcast id>~<n>`, fanOut.ts).
    const parent = typeof row.jobId === 'string' ? /^(.*)~\d+$/.exec(row.jobId)?.[1] : undefined;
    if (row.rowKey !== 'job' || parent === undefined || !parents.has(parent)) continue;
    const status = String(row.status);
    byStatus[status] = (byStatus[status] ?? 0) + 1;
    const a = Number(row.attempts ?? 0);
    attempts += a;
    if (a > 1) retried += 1;
    ambiguousResends += Number(row.ambiguousResends ?? 0);
  }
  return { byStatus, retried, attempts, ambiguousResends };
}

const usedTenants = new WeakMap<ScaleWorld, Set<string>>();

/**
 * Seeds the recipients, clears every counter, enqueues one broadcast per tenant at once, waits
 * (bounded) until each broadcast has every child recorded sent or failed, then collects the figures.
 */
export async function runBroadcast(world: ScaleWorld, plan: BroadcastPlan): Promise<BroadcastRun> {
  const runId = plan.runId ?? `scale-${Date.now().toString(36)}`;
  const deadlineMs = plan.deadlineMs ?? 120_000;
  for (const t of plan.tenants) {
    // A tenant's earlier recipients would be in its allInstalled broadcast too.
    if (usedTenants.has(world) && usedTenants.get(world)!.has(t.tenantId)) throw new Error(`tenant ${t.tenantId} was already used in this world: use another tenant id or a new world`);
    (usedTenants.get(world) ?? usedTenants.set(world, new Set()).get(world)!).add(t.tenantId);
  }
  const seeded = new Set<string>();
  for (const [k, t] of plan.tenants.entries()) {
    for (const id of await world.seedPersonalChats({ tenantId: t.tenantId, prefix: `${runId.slice(-4)}${scalePrefix(k)}`, count: t.recipients, salt: 100 + k })) seeded.add(id);
  }
  // Let the instances settle into their idle polling, then count from zero.
  await sleep(500);
  await world.resetCounters();
  const cpu = (): { instances: number; azurite: number; stub: number } => ({
    instances: world.instances.reduce((sum, i) => sum + (processCpuMs(i.pid) ?? NaN), 0),
    azurite: processCpuMs(world.azurite.process.pid) ?? NaN,
    stub: processCpuMs(world.stub.pid) ?? NaN,
  });
  const cpuBefore = cpu();

  const broadcasts = plan.tenants.map((t, k) => ({ id: `${runId}-t${k}`, tenantId: t.tenantId, recipients: t.recipients }));
  const recipients = broadcasts.reduce((sum, b) => sum + b.recipients, 0);
  const t0 = Date.now();
  await Promise.all(broadcasts.map((b) => world.enqueueBroadcast({ id: b.id, tenantId: b.tenantId, text: `Scale-out broadcast ${b.id}: maintenance tonight at 22:00.` })));

  // Cheap progress from the stub (delivered count) every 200 ms; the exact check (the parents'
  // child counts, one partition query each) once everything may have arrived, and every 3 s in case
  // some children fail instead.
  let progress: ParentProgress[] = [];
  let timedOut = true;
  let lastExactCheck = 0;
  const deadline = t0 + deadlineMs;
  for (let i = 0; i < 100_000 && Date.now() < deadline; i += 1) {
    world.assertAlive();
    const delivered = Number((await world.stub.request({ cmd: 'progress' })).delivered);
    if (delivered >= recipients || Date.now() - lastExactCheck >= 3_000) {
      lastExactCheck = Date.now();
      try {
        progress = await Promise.all(broadcasts.map((b) => parentProgress(world.deliveries, b.id, b.tenantId, b.recipients)));
      } catch {
        // Azurite busy: look again.
      }
      if (progress.length === broadcasts.length && progress.every(isDone)) {
        timedOut = false;
        break;
      }
    }
    await sleep(200);
  }
  const recordedMs = Date.now() - t0;
  const storage = world.storage.snapshot();
  const cpuAfter = cpu();
  const stub = await world.snapshotStub();
  const children = await readChildRecords(world, broadcasts.map((b) => b.id));

  let duplicates = 0;
  let missing = 0;
  let unexpected = 0;
  for (const id of seeded) {
    const n = stub.perConversation[id] ?? 0;
    if (n === 0) missing += 1;
    else if (n > 1) duplicates += 1;
  }
  for (const id of Object.keys(stub.perConversation)) if (!seeded.has(id)) unexpected += 1;

  const tenants = broadcasts.map((b): TenantFigures => {
    const traffic = stub.perTenant[b.tenantId] ?? { requests: 0, throttled: 0, delivered: 0, deliveryTimes: [] };
    const s = shareOfCap(traffic.deliveryTimes, TENANT_CAP_PER_SECOND);
    return {
      tenantId: b.tenantId,
      recipients: b.recipients,
      delivered: traffic.delivered,
      requests: traffic.requests,
      throttled: traffic.throttled,
      spanMs: s.spanMs,
      shareOfCap: s.share,
      steadyShareOfCap: s.steadyShare,
      steadyRate: s.steadyRate,
      perSecond: perSecond(traffic.deliveryTimes, t0),
    };
  });
  const connectorRequests = Object.values(stub.perTenant).reduce((sum, t) => sum + t.requests, 0);
  const throttled = Object.values(stub.perTenant).reduce((sum, t) => sum + t.throttled, 0);
  const outcomesPerInstance = world.instances.map((i) => ({ ...i.tally }));
  const outcomes: Record<string, number> = {};
  for (const tally of outcomesPerInstance) for (const [k, v] of Object.entries(tally)) outcomes[k] = (outcomes[k] ?? 0) + v;
  const delivered = Object.values(stub.perConversation).reduce((sum, n) => sum + n, 0);
  const lastDelivery = Math.max(...Object.values(stub.perTenant).map((t) => t.deliveryTimes.at(-1) ?? -Infinity));

  return {
    instances: world.instances.length,
    recipients,
    durationMs: Number.isFinite(lastDelivery) ? lastDelivery - t0 : NaN,
    recordedMs,
    timedOut,
    parents: progress,
    children,
    tenants,
    connectorRequests,
    throttled,
    throttledShare: connectorRequests > 0 ? throttled / connectorRequests : NaN,
    throttledBy: stub.throttledBy,
    tokenRequests: stub.tokenRequests,
    duplicates,
    missing,
    unexpected,
    deliveredExactlyOnce: duplicates === 0 && missing === 0 && unexpected === 0 && seeded.size === recipients,
    storage,
    storagePerMessage: delivered > 0 ? storage.total / delivered : NaN,
    outcomes,
    outcomesPerInstance,
    cpuMs: { instances: cpuAfter.instances - cpuBefore.instances, azurite: cpuAfter.azurite - cpuBefore.azurite, stub: cpuAfter.stub - cpuBefore.stub },
    problems: world.instances.flatMap((i) => i.problems.map((p) => `instance ${i.index}: ${p}`)).slice(0, 10),
  };
}

/** The storage operations of a run, most frequent first, per delivered message. */
export function storageBreakdown(counts: StorageCounts, messages: number, top = 12): string {
  return Object.entries(counts.byOperation)
    .sort(([, a], [, b]) => b.requests - a.requests)
    .slice(0, top)
    .map(([op, c]) => {
      const odd = Object.entries(c.statuses).filter(([s]) => !/^2\d\d$/.test(s));
      const extra = [c.batchedOperations === undefined ? '' : ` (${c.batchedOperations} ops inside)`, odd.length > 0 ? ` [${odd.map(([s, n]) => `${s}: ${n}`).join(', ')}]` : ''].join('');
      return `${op} ${(c.requests / messages).toFixed(2)}${extra}`;
    })
    .join('; ');
}

if (require.main === module && process.argv.includes('--stub-world')) {
  stubWorldMain().catch((err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exit(1);
  });
}
