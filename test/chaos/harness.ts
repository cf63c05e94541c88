/**
 * The chaos suite's rig: a real Azurite with its data on disk (so it can be stopped and started
 * again on the same ports), the local HTTPS stubs (Bot Framework issuer, Entra, Bot Connector, and
 * an untrusted "foreign" host), and the app itself as `node dist/host/main.js` in its own process
 * group, so it can be SIGKILLed and started again. Every line the app and the stubs log goes to one
 * file, searched for secrets at the end of the suite.
 *
 * Everything is on loopback. Every wait is bounded in time, every loop in count; `close()` stops
 * everything that was started, also after a failure.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, createReadStream, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeSync } from 'node:fs';
import http from 'node:http';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { TableClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { Agent, request } from 'undici';
import { DEV_ACCOUNT_KEY, developmentConnectionString, startAzurite, type AzuriteInstance } from '../../host/azurite';
import {
  ChannelTokenIssuer,
  ensureLocalCertificate,
  mulberry32,
  startConnectorServer,
  startEntraServer,
  startOpenIdServer,
  type Activity,
  type ConnectorServer,
  type EntraServer,
  type MintChannelTokenOptions,
  type OpenIdServer,
} from '../../host/emulator';
import { toTableKey } from '../../src/core/tableKeys';

export const ROOT = path.resolve(__dirname, '../..');
export const MAIN_JS = path.join(ROOT, 'dist/host/main.js');
export const APP_ID = '00000000-0000-4000-8000-0000000c4a05';
export const BOT_TENANT = '00000000-0000-4000-8000-0000000b07e0';
export const OUTBOUND_QUEUE = 'outbound-messages';
export const POISON_QUEUE = `${OUTBOUND_QUEUE}-poison`;
/** Connect, header and body timeout of one Bot Connector call in the app: small, so "slower than the timeout" is quick. */
export const CONNECTOR_TIMEOUT_MS = 1_000;
export const MAX_ATTEMPTS = 5;
/** Lease of a dequeued message in the local host: after a SIGKILL, held messages come back after this. */
export const QUEUE_LEASE_SECONDS = 10;

// ---- Size and seed ---------------------------------------------------------------------------

export type ChaosSize = 'small' | 'full';

function readSize(): ChaosSize {
  const raw = (process.env.CHAOS_SIZE ?? 'small').trim().toLowerCase();
  if (raw === 'small' || raw === '') return 'small';
  if (raw === 'full') return 'full';
  throw new Error(`CHAOS_SIZE must be "small" or "full" (got "${process.env.CHAOS_SIZE}")`);
}

function readSeed(): number {
  const raw = process.env.CHAOS_SEED?.trim();
  if (raw === undefined || raw === '') return 20_261_125;
  const seed = Number(raw);
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffff_ffff) throw new Error(`CHAOS_SEED must be an integer 0..4294967295 (got "${raw}")`);
  return seed;
}

export const SIZE: ChaosSize = readSize();
export const SEED: number = readSeed();

export interface ChaosPlan {
  /** Part 1: jobs, conversations, tenants, storage outage length, drain limit. */
  readonly jobs: number;
  readonly conversations: number;
  readonly tenants: number;
  readonly outageMs: number;
  readonly drainLimitMs: number;
  /** Part 2: conversations and install/uninstall steps per conversation. */
  readonly inboundConversations: number;
  readonly inboundSteps: number;
  /** Part 3. */
  readonly fuzzRequests: number;
  readonly fuzzMessages: number;
  /** Part 5. */
  readonly loadRps: number;
  readonly loadSeconds: number;
  /** Per-part vitest timeout. */
  readonly partTimeoutMs: number;
}

export const PLANS: Readonly<Record<ChaosSize, ChaosPlan>> = {
  small: {
    jobs: 150,
    conversations: 30,
    tenants: 3,
    outageMs: 3_000,
    drainLimitMs: 150_000,
    inboundConversations: 20,
    inboundSteps: 4,
    fuzzRequests: 1_500,
    fuzzMessages: 1_000,
    loadRps: 50,
    loadSeconds: 10,
    partTimeoutMs: 240_000,
  },
  full: {
    jobs: 1_000,
    conversations: 100,
    tenants: 5,
    outageMs: 5_000,
    drainLimitMs: 480_000,
    inboundConversations: 100,
    inboundSteps: 6,
    fuzzRequests: 10_000,
    fuzzMessages: 10_000,
    loadRps: 200,
    loadSeconds: 60,
    partTimeoutMs: 900_000,
  },
};
export const PLAN: ChaosPlan = PLANS[SIZE];

/** A seeded PRNG per part, so one part's draws do not shift another's. */
export function rngFor(part: string): Rng {
  let h = SEED ^ 0x9e37_79b9;
  for (let i = 0; i < part.length; i += 1) h = Math.imul(h ^ part.charCodeAt(i), 0x0100_0193) >>> 0;
  return new Rng(h >>> 0);
}

export class Rng {
  readonly #next: () => number;
  constructor(seed: number) {
    this.#next = mulberry32(seed);
  }
  float(): number {
    return this.#next();
  }
  int(maxExclusive: number): number {
    return Math.floor(this.#next() * maxExclusive);
  }
  chance(p: number): boolean {
    return this.#next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('pick from an empty list');
    return items[this.int(items.length)]!;
  }
  /** Picks by weight: `[[weight, value], ...]`. */
  weighted<T>(entries: readonly (readonly [number, T])[]): T {
    const total = entries.reduce((a, [w]) => a + w, 0);
    let r = this.#next() * total;
    for (const [w, value] of entries) {
      r -= w;
      if (r < 0) return value;
    }
    return entries[entries.length - 1]![1];
  }
}

// ---- Small helpers ---------------------------------------------------------------------------

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` returns a value; throws after `timeoutMs`. Errors inside `check` count as "not yet". */
export async function waitFor<T>(what: string, timeoutMs: number, check: () => Promise<T | undefined> | T | undefined, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (let i = 0; i < 100_000; i += 1) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) break;
    await sleep(intervalMs);
  }
  const detail = lastError instanceof Error ? ` (last error: ${lastError.message.split('\n')[0]})` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}

/** Runs `fn` over `items` with at most `concurrency` at once. */
export async function mapLimit<T, R>(items: readonly T[], concurrency: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    for (;;) {
      const index = next;
      next += 1;
      if (index >= items.length) return;
      results[index] = await fn(items[index]!, index);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return results;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index]!;
}

/** A Markdown table, printed as is and copied into docs/reliability.md. */
export function markdownTable(title: string, rows: readonly (readonly [string, string | number])[]): string {
  const width = Math.max(6, ...rows.map(([k]) => k.length));
  const lines = [`#### ${title}`, '', `| ${'What'.padEnd(width)} | Value |`, `|${'-'.repeat(width + 2)}|-------|`];
  for (const [k, v] of rows) lines.push(`| ${k.padEnd(width)} | ${v} |`);
  return lines.join('\n');
}

export function printTable(title: string, rows: readonly (readonly [string, string | number])[]): void {
  const table = markdownTable(`${title} (CHAOS_SIZE=${SIZE}, CHAOS_SEED=${SEED})`, rows);
  console.log(`\n${table}\n`);
  REPORT.push(table);
}

/** Every table printed so far, in order (written to the run's folder at the end). */
export const REPORT: string[] = [];

// ---- Build -----------------------------------------------------------------------------------

function newestMtime(dir: string, extension: string, budget = { files: 20_000 }): number {
  let newest = 0;
  if (!existsSync(dir)) return newest;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (budget.files <= 0) break;
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(file, extension, budget));
    else if (entry.name.endsWith(extension)) {
      budget.files -= 1;
      newest = Math.max(newest, statSync(file).mtimeMs);
    }
  }
  return newest;
}

/**
 * The suite runs the compiled app (`node dist/host/main.js`, what `npm start` runs). CI builds
 * before `npm test`; when dist is missing or older than src/ or host/, it is built here once.
 */
export function ensureBuilt(): void {
  const sources = Math.max(newestMtime(path.join(ROOT, 'src'), '.ts'), newestMtime(path.join(ROOT, 'host'), '.ts'));
  const built = existsSync(MAIN_JS) ? newestMtime(path.join(ROOT, 'dist'), '.js') : 0;
  if (built >= sources) return;
  const result = spawnSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 180_000,
  });
  // tsc emits even when it reports type errors; the CI type-check step is what reports those.
  if (!existsSync(MAIN_JS)) throw new Error(`the build did not produce ${MAIN_JS}:\n${result.stdout}\n${result.stderr}`);
  if (result.status !== 0) console.warn(`chaos: tsc reported errors while building dist; the suite runs what it emitted:\n${result.stdout.slice(0, 2000)}`);
}

// ---- Logs ------------------------------------------------------------------------------------

/** Every line logged by the app and the stubs, in one file; the tail is kept for failure messages. */
export class LogCapture {
  readonly file: string;
  lines = 0;
  #fd: number | undefined;
  readonly #tail: string[] = [];
  readonly #partial = new Map<string, string>();

  constructor(file: string) {
    this.file = file;
    this.#fd = openSync(file, 'a');
  }

  /** A chunk of a stream; complete lines are written, a trailing partial line waits for the rest. */
  write(source: string, chunk: string): void {
    const text = (this.#partial.get(source) ?? '') + chunk;
    const parts = text.split('\n');
    this.#partial.set(source, parts.pop() ?? '');
    for (const line of parts) this.line(line);
  }

  line(line: string): void {
    if (this.#fd === undefined) return;
    writeSync(this.#fd, `${line}\n`);
    this.lines += 1;
    this.#tail.push(line);
    if (this.#tail.length > 80) this.#tail.shift();
  }

  tail(n = 40): string {
    return this.#tail.slice(-n).join('\n');
  }

  flush(): void {
    for (const rest of this.#partial.values()) if (rest !== '') this.line(rest);
    this.#partial.clear();
  }

  close(): void {
    this.flush();
    if (this.#fd !== undefined) closeSync(this.#fd);
    this.#fd = undefined;
  }

  /** Counts lines containing each needle (and matching each pattern); returns the hits with one example line each. */
  async search(needles: ReadonlyMap<string, string>, patterns: ReadonlyMap<string, RegExp>): Promise<{ name: string; lines: number; example: string }[]> {
    this.flush();
    const hits = new Map<string, { lines: number; example: string }>();
    const input = createReadStream(this.file, { encoding: 'utf8' });
    const reader = createInterface({ input, crlfDelay: Infinity });
    for await (const line of reader) {
      for (const [name, needle] of needles) {
        if (needle !== '' && line.includes(needle)) {
          const hit = hits.get(name) ?? { lines: 0, example: line.slice(0, 300) };
          hit.lines += 1;
          hits.set(name, hit);
        }
      }
      for (const [name, pattern] of patterns) {
        pattern.lastIndex = 0;
        if (pattern.test(line)) {
          const hit = hits.get(name) ?? { lines: 0, example: line.slice(0, 300) };
          hit.lines += 1;
          hits.set(name, hit);
        }
      }
    }
    return [...hits].map(([name, hit]) => ({ name, ...hit }));
  }
}

// ---- Storage ---------------------------------------------------------------------------------

/** Azurite with its data in a folder, on fixed ports, so a stop and a start keep both. */
export class ChaosStorage {
  readonly location: string;
  #ports: { blobPort: number; queuePort: number; tablePort: number } | undefined;
  #azurite: AzuriteInstance | undefined;
  outages = 0;
  downMs = 0;

  constructor(location: string) {
    this.location = location;
  }

  get ports(): { blobPort: number; queuePort: number; tablePort: number } {
    if (this.#ports === undefined) throw new Error('Azurite was never started');
    return this.#ports;
  }

  get up(): boolean {
    return this.#azurite !== undefined;
  }

  get connectionString(): string {
    return developmentConnectionString(this.ports);
  }

  /** The connection string with the table endpoint on another port (a proxy in front of Azurite). */
  connectionStringWithTablePort(tablePort: number): string {
    return developmentConnectionString({ ...this.ports, tablePort });
  }

  async start(): Promise<void> {
    if (this.#azurite !== undefined) return;
    // First start: free ports picked by the OS; later starts: the same ones.
    let lastError: unknown;
    for (let attempt = 0; attempt < 5; attempt += 1) {
      try {
        this.#azurite = await startAzurite({ location: this.location, ...(this.#ports ?? {}), startTimeoutMs: 30_000 });
        this.#ports ??= { blobPort: this.#azurite.blobPort, queuePort: this.#azurite.queuePort, tablePort: this.#azurite.tablePort };
        return;
      } catch (err) {
        lastError = err;
        await sleep(500);
      }
    }
    throw new Error(`Azurite did not start: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
  }

  /** Stops Azurite (SIGTERM: it saves its data), keeps the folder and the ports. */
  async stop(): Promise<void> {
    const azurite = this.#azurite;
    this.#azurite = undefined;
    await azurite?.stop();
  }

  /** Stops Azurite for `ms`, then starts it again on the same ports with the same data. */
  async outage(ms: number): Promise<{ stoppedAt: number; startedAt: number }> {
    const stoppedAt = Date.now();
    await this.stop();
    await sleep(ms);
    await this.start();
    const startedAt = Date.now();
    this.outages += 1;
    this.downMs += startedAt - stoppedAt;
    return { stoppedAt, startedAt };
  }

  table(name: string): TableClient {
    return TableClient.fromConnectionString(this.connectionString, name, { allowInsecureConnection: true, retryOptions: { maxRetries: 1 } });
  }

  queue(name: string): QueueClient {
    return new QueueClient(this.connectionString, name, { retryOptions: { maxTries: 2 } });
  }

  async close(): Promise<void> {
    await this.stop();
  }
}

/**
 * An HTTP proxy in front of Azurite's table endpoint, for storage faults finer than "all down":
 * `failWhen` decides per request whether the connection is reset instead of forwarded.
 */
export class StorageProxy {
  readonly port: number;
  failWhen: ((method: string, url: string) => boolean) | undefined;
  forwarded = 0;
  failed = 0;
  readonly #server: http.Server;
  readonly #agent: http.Agent;

  private constructor(server: http.Server, agent: http.Agent, port: number) {
    this.#server = server;
    this.#agent = agent;
    this.port = port;
  }

  static async start(targetPort: () => number): Promise<StorageProxy> {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const holder: { proxy?: StorageProxy } = {};
    const server = http.createServer((req, res) => {
      const proxy = holder.proxy;
      if (proxy?.failWhen?.(req.method ?? 'GET', req.url ?? '/')) {
        proxy.failed += 1;
        req.socket.destroy();
        return;
      }
      if (proxy) proxy.forwarded += 1;
      const upstream = http.request(
        { host: '127.0.0.1', port: targetPort(), method: req.method, path: req.url, headers: req.headers, agent },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      upstream.on('error', () => res.destroy());
      req.pipe(upstream);
    });
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    holder.proxy = new StorageProxy(server, agent, (server.address() as { port: number }).port);
    return holder.proxy;
  }

  async close(): Promise<void> {
    this.#agent.destroy();
    this.#server.closeAllConnections();
    await new Promise((resolve) => this.#server.close(resolve));
  }
}

// ---- The app process -------------------------------------------------------------------------

export interface AppExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly at: number;
}

/** `node dist/host/main.js` in its own process group, with environment overrides; stdout and stderr go to the log capture. */
export class AppProcess {
  readonly port: number;
  readonly url: string;
  #env: Record<string, string>;
  #child: ChildProcess | undefined;
  #exit: Promise<AppExit> | undefined;
  readonly exits: AppExit[] = [];
  starts = 0;
  readonly #log: LogCapture;

  constructor(options: { port: number; env: Record<string, string>; log: LogCapture }) {
    this.port = options.port;
    this.url = `http://127.0.0.1:${options.port}`;
    this.#env = options.env;
    this.#log = options.log;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  get alive(): boolean {
    return this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null;
  }

  /** Changes settings for the next start. */
  setEnv(patch: Record<string, string>): void {
    this.#env = { ...this.#env, ...patch };
  }

  async start(): Promise<void> {
    if (this.alive) throw new Error('the app is already running');
    let lastError: unknown;
    // A build running in parallel (the e2e test runs `npm start`, which builds) can catch a file half
    // written: a start that fails that way is retried.
    for (let attempt = 0; attempt < 3; attempt += 1) {
      try {
        await this.#startOnce();
        return;
      } catch (err) {
        lastError = err;
        await this.kill();
        await sleep(1_000);
      }
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  async #startOnce(): Promise<void> {
    this.starts += 1;
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.#env, PORT: String(this.port), NODE_EXTRA_CA_CERTS: ensureLocalCertificate().certPath };
    delete env.NODE_OPTIONS;
    const child = spawn(process.execPath, [MAIN_JS], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    this.#child = child;
    child.stdout?.setEncoding('utf8');
    child.stderr?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => this.#log.write(`app${child.pid}.out`, chunk));
    child.stderr?.on('data', (chunk: string) => this.#log.write(`app${child.pid}.err`, chunk));
    this.#exit = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        const exit = { code, signal, at: Date.now() };
        this.exits.push(exit);
        resolve(exit);
      }),
    );
    const agent = new Agent({ keepAliveTimeout: 1_000 });
    try {
      await waitFor('the app to serve (GET /admin/host/status: Running)', 60_000, async () => {
        if (!this.alive) throw new Error(`the app exited during start-up:\n${this.#log.tail(30)}`);
        const response = await request(`${this.url}/admin/host/status`, { dispatcher: agent, headersTimeout: 2_000, bodyTimeout: 2_000 });
        const body = (await response.body.json()) as { state?: string };
        return body.state === 'Running' ? true : undefined;
      }, 100);
    } catch (err) {
      if (!this.alive) throw new Error(`the app exited during start-up:\n${this.#log.tail(30)}`, { cause: err });
      throw err;
    } finally {
      await agent.close();
    }
  }

  #signal(signal: NodeJS.Signals): void {
    const pid = this.#child?.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, signal);
    } catch {
      // Already gone.
    }
  }

  /** SIGKILL to the process group; resolves once the process has exited. */
  async kill(): Promise<AppExit | undefined> {
    if (!this.alive) return this.exits.at(-1);
    this.#signal('SIGKILL');
    return Promise.race([this.#exit!, sleep(10_000).then(() => undefined)]);
  }

  /** SIGTERM (drains), then SIGKILL after `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    if (!this.alive) return;
    this.#signal('SIGTERM');
    const exited = await Promise.race([this.#exit!, sleep(graceMs).then(() => undefined)]);
    if (exited === undefined) await this.kill();
  }

  /** Resident set size of the app process, in MiB (Linux /proc). */
  rssMb(): number | undefined {
    const pid = this.pid;
    if (pid === undefined || !this.alive) return undefined;
    try {
      const match = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return match ? Number(match[1]) / 1024 : undefined;
    } catch {
      return undefined;
    }
  }

  /** `GET /admin/host/status` answers Running. */
  async running(): Promise<boolean> {
    try {
      const response = await request(`${this.url}/admin/host/status`, { headersTimeout: 5_000, bodyTimeout: 5_000 });
      const body = (await response.body.json()) as { state?: string };
      return body.state === 'Running';
    } catch {
      return false;
    }
  }
}

// ---- The whole rig ---------------------------------------------------------------------------

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
    this.issuer = await ChannelTokenIssuer.create();
    this.openId = await startOpenIdServer({ issuer: this.issuer });
    this.#closers.push(() => this.openId.close());
    this.entra = await startEntraServer({ apps: [{ clientId: APP_ID, tenantId: BOT_TENANT, clientSecret: this.appPassword }] });
    this.#closers.push(() => this.entra.close());
    this.connector = await startConnectorServer({ auth: { jwks: () => this.entra.jwks(), appIds: [APP_ID] }, log: stubLog });
    this.#closers.push(() => this.connector.close());
    this.foreign = await startConnectorServer({ auth: false, log: stubLog });
    this.#closers.push(() => this.foreign.close());
    this.app = new AppProcess({ port: await freePort(), env: this.appEnv(this.storage.connectionString), log: this.log });
    this.#closers.push(() => this.app.stop(10_000));
    await this.app.start();
  }

  appEnv(storageConnectionString: string): Record<string, string> {
    return {
      AzureWebJobsStorage: storageConnectionString,
      MicrosoftAppId: APP_ID,
      MicrosoftAppType: 'SingleTenant',
      MicrosoftAppTenantId: BOT_TENANT,
      MicrosoftAppPassword: this.appPassword,
      BOT_OPENID_METADATA_URL: this.openId.metadataUrl,
      BOT_AUTHORITY_HOST: this.entra.authorityHost,
      BOT_TRUSTED_SERVICE_URLS: this.connector.origin,
      BOT_GLOBAL_SERVICE_URL: this.connector.serviceUrl('teams'),
      OUTBOUND_QUEUE,
      CONNECTOR_TIMEOUT_MS: String(CONNECTOR_TIMEOUT_MS),
      DELIVERY_MAX_ATTEMPTS: String(MAX_ATTEMPTS),
      HOST_QUEUE_MESSAGE_LEASE_SECONDS: String(QUEUE_LEASE_SECONDS),
      HOST_LOG_LEVEL: 'info',
      // After a failed invocation (storage down), look at the message again soon.
      AzureFunctionsJobHost__extensions__queues__visibilityTimeout: '00:00:01',
      AzureFunctionsJobHost__extensions__queues__maxPollingInterval: '00:00:01',
    };
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
  async post(body: string | Buffer, headers: Record<string, string>, options: { method?: string; timeoutMs?: number } = {}): Promise<PostAnswer> {
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
      return { status: 0, body: err instanceof Error ? `${err.name}: ${err.message}` : String(err), ms: performance.now() - started };
    }
  }

  /** POSTs an activity signed for its own serviceUrl. */
  async postSigned(activity: Activity): Promise<PostAnswer> {
    const token = await this.token(activity.serviceUrl ?? '');
    return this.post(JSON.stringify(activity), { authorization: `Bearer ${token}`, 'content-type': 'application/json; charset=utf-8' });
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
      return await this.storage.table('conversations').getEntity<Record<string, unknown>>(toTableKey(conversationId), 'ref');
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 404) return undefined;
      throw err;
    }
  }

  /** Every entity of a table (bounded). */
  async scan(tableName: string, select?: string[]): Promise<Record<string, unknown>[]> {
    const rows: Record<string, unknown>[] = [];
    const client = this.storage.table(tableName);
    const iterator = client.listEntities<Record<string, unknown>>(select === undefined ? {} : { queryOptions: { select } });
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
      await Promise.all(receivedMessageItems.map((item) => queue.deleteMessage(item.messageId, item.popReceipt).catch(() => undefined)));
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
      waitFor('enqueueing a job', 60_000, async () => {
        try {
          await queue.sendMessage(text);
          return { refused: undefined };
        } catch (err) {
          const status = (err as { statusCode?: number }).statusCode;
          if (status !== undefined && status >= 400 && status < 500) return { refused: status };
          throw err;
        }
      }, 250).then((r) => r.refused),
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
