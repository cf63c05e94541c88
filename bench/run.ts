/**
 * `npm run bench` (`npm run bench -- --quick` for a smoke run): teams-courier's performance figures
 * next to baselines measured in the same run, printed as tables. See bench/README.md.
 *
 *   1. Inbound: POST /api/messages on the local Functions host vs bare Azurite operations.
 *   2. Cold start: loading the function app's entry modules vs require('botbuilder').
 *   3. Outbound throughput: processJobMessage vs botbuilder CloudAdapter, CPU per message.
 *   4. Broadcast under Teams' limits: time vs the theoretical minimum, 429s.
 *
 * Everything runs on loopback, every loop is bounded in count and time, and every process and
 * server started here is stopped before exit.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { QueueClient } from '@azure/storage-queue';
import { Agent, request } from 'undici';
import { startAzurite, type AzuriteInstance } from '../host/azurite';
import { ChannelTokenIssuer, personalMessage, startOpenIdServer, trustEmulatorCertificate } from '../host/emulator';
import { findFiles } from '../host/glob';
import { createOpenIdKeyCache, fetchJsonDocument } from '../src/auth/openIdKeys';
import { createChannelTokenVerifier } from '../src/auth/verifyChannelToken';
import { handleMessages } from '../src/inbound/handleMessages';
import { createLogger } from '../src/log';
import { SETTINGS } from '../src/config';
import { parseActivity, toCapturePlan, type CapturePlan } from '../src/core/activity';
import { WINDOW_SAFETY_MS } from '../src/core/rateLimiter';
import { createConversationStore, type ConversationStore } from '../src/store/conversationStore';
import { createTableClient, type TableClient } from '../src/store/tableClients';
import { TABLES } from '../src/store/tables';
import {
  BASELINE_DIR,
  BENCH_DIST,
  REPO_ROOT,
  cpuMsSince,
  emulatorCertPath,
  fmt,
  fmtInt,
  installLoopbackGuard,
  killOnExit,
  median,
  processCpuMs,
  renderTable,
  runPool,
  startChild,
  summarize,
  withTimeout,
  type ChildHandle,
  type LatencySummary,
  type Message,
} from './lib/common';
import { BENCH_APP_ID, BENCH_APP_SECRET, BENCH_BOT_NAME, BENCH_BOT_TENANT, BENCH_USER_TENANT, benchAadObjectId, benchConversationId, benchUserId } from './lib/identities';
import { scaleOut, SCALE_OUT_FULL, SCALE_OUT_QUICK } from './scaleOut';
import type { OutboundWorkerConfig } from './outboundWorker';

// ---- Parameters -----------------------------------------------------------------------------------

const SECTIONS = ['inbound', 'coldstart', 'outbound', 'broadcast', 'scale'] as const;
type Section = (typeof SECTIONS)[number];

interface Params {
  readonly inbound: { readonly requests: number; readonly warmup: number; readonly conversations: number; readonly concurrency: number };
  readonly coldStart: { readonly runs: number };
  readonly outbound: { readonly messages: number; readonly warmup: number; readonly concurrency: number };
  readonly broadcast: { readonly recipients: number; readonly tenantRate: number; readonly batchSize: number; readonly newBatchThreshold: number; readonly deadlineMs: number };
}

const FULL: Params = {
  inbound: { requests: 3000, warmup: 200, conversations: 500, concurrency: 16 },
  coldStart: { runs: 15 },
  outbound: { messages: 2000, warmup: 100, concurrency: 16 },
  broadcast: { recipients: 1000, tenantRate: 50, batchSize: 16, newBatchThreshold: 8, deadlineMs: 120_000 },
};

const QUICK: Params = {
  inbound: { requests: 600, warmup: 100, conversations: 100, concurrency: 16 },
  coldStart: { runs: 5 },
  outbound: { messages: 300, warmup: 50, concurrency: 16 },
  broadcast: { recipients: 200, tenantRate: 50, batchSize: 16, newBatchThreshold: 8, deadlineMs: 60_000 },
};

/** Targets from the issues (2, 3, 12), checked and printed with each section. */
const TARGETS = {
  inboundP99Ms: 50,
  coldStartMaxRatio: 0.25,
  /** CPU per job: the botbuilder worker's over teams-courier's. */
  outboundMinPerCoreRatio: 1.5,
  broadcastMinShareOfAllowed: 0.965,
  broadcastMaxThrottledShare: 0.005,
};

/** The serviceUrl inbound activities carry. Nothing is sent there: inbound only stores it. */
const INBOUND_SERVICE_URL = 'https://smba.trafficmanager.net/amer/';

interface Args {
  readonly quick: boolean;
  readonly only: readonly Section[];
}

function parseArgs(argv: readonly string[]): Args {
  let quick = false;
  let only: Section[] = [...SECTIONS];
  for (const arg of argv) {
    if (arg === '--quick') quick = true;
    else if (arg.startsWith('--only=')) {
      const wanted = arg.slice('--only='.length).split(',').map((s) => s.trim());
      const unknown = wanted.filter((w) => !(SECTIONS as readonly string[]).includes(w));
      if (unknown.length > 0) throw new Error(`unknown section(s) ${unknown.join(', ')}; choose from ${SECTIONS.join(', ')}`);
      only = wanted as Section[];
    } else if (arg === '--help' || arg === '-h') {
      console.log('usage: npm run bench [-- --quick] [-- --only=inbound,coldstart,outbound,broadcast,scale]');
      process.exit(0);
    } else throw new Error(`unknown argument ${arg} (try --help)`);
  }
  return { quick, only };
}

// ---- Output ---------------------------------------------------------------------------------------

function print(text = ''): void {
  process.stdout.write(`${text}\n`);
}

function verdict(met: boolean): string {
  return met ? 'MET' : 'MISSED';
}

function gitDescription(): string {
  try {
    const git = (args: string[]): string => execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8', timeout: 5_000, stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git(['rev-parse', '--short', 'HEAD']);
    const dirty = git(['status', '--porcelain', '--', 'src', 'host', 'package.json', 'package-lock.json']);
    return dirty === '' ? commit : `${commit} (with uncommitted changes in src/host)`;
  } catch {
    return 'unknown';
  }
}

function printEnvironment(args: Args): void {
  const cpus = os.cpus();
  const rows: [string, string][] = [
    ['Node', `${process.version} (${process.arch})`],
    ['CPU', `${cpus[0]?.model.trim() ?? 'unknown'}`],
    ['Cores', `${cpus.length} (availableParallelism ${os.availableParallelism()})`],
    ['Memory', `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`],
    ['Load average at start (1/5/15 min)', os.loadavg().map((l) => l.toFixed(2)).join(' / ')],
    ['OS', `${os.type()} ${os.release()}`],
    ['Commit', gitDescription()],
    ['Mode', args.quick ? 'quick (--quick: smaller N, smoke run)' : 'full'],
    ['Sections', args.only.join(', ')],
    ['Started', new Date().toISOString()],
  ];
  print('# teams-courier benchmark');
  print();
  print(renderTable('Environment', ['', ''], rows));
}

// ---- Shared helpers -------------------------------------------------------------------------------

const cleanups: (() => Promise<unknown>)[] = [];

async function runCleanups(): Promise<void> {
  for (const cleanup of cleanups.splice(0).reverse()) {
    try {
      await withTimeout(cleanup(), 10_000, 'cleanup');
    } catch {
      // best effort
    }
  }
}

async function azurite(): Promise<AzuriteInstance> {
  const instance = await startAzurite();
  killOnExit(instance.process);
  cleanups.push(() => instance.stop());
  return instance;
}

function child(options: Parameters<typeof startChild>[0]): ChildHandle {
  const handle = startChild(options);
  cleanups.push(() => handle.stop());
  return handle;
}

/** Environment for children that talk to the HTTPS stubs: trust their self-signed certificate, and only that. */
function stubClientEnv(): Record<string, string | undefined> {
  return { NODE_EXTRA_CA_CERTS: emulatorCertPath(), NODE_OPTIONS: undefined };
}

function captureActivity(prefix: string, i: number, serviceUrl: string, salt: number, text: string): Record<string, unknown> {
  return personalMessage({
    appId: BENCH_APP_ID,
    tenantId: BENCH_USER_TENANT,
    serviceUrl,
    botName: BENCH_BOT_NAME,
    conversationId: benchConversationId(prefix, i),
    user: { id: benchUserId(prefix, i), name: `Bench User ${i}`, aadObjectId: benchAadObjectId(i, salt) },
    text,
  }) as unknown as Record<string, unknown>;
}

/** Stores `count` personal-chat references as if Teams had sent a message from each (serviceUrl = the stub). */
async function seedReferences(store: ConversationStore, prefix: string, count: number, serviceUrl: string, salt: number): Promise<void> {
  const deadline = Date.now() + 120_000;
  let failures = 0;
  const { timedOut } = await runPool(count, 16, deadline, async (i) => {
    const plan = toCapturePlan(parseActivity(captureActivity(prefix, i, serviceUrl, salt, 'hello')));
    if (plan.kind !== 'capture') throw new Error(`not capturable: ${plan.reason}`);
    try {
      await store.capture(plan as Extract<CapturePlan, { kind: 'capture' }>, new Date());
    } catch {
      failures += 1;
    }
  });
  if (timedOut || failures > 0) throw new Error(`seeding ${prefix}: ${failures} failures${timedOut ? ', timed out' : ''}`);
}

function conversationStore(connectionString: string): ConversationStore {
  const storage = { kind: 'connectionString' as const, connectionString };
  return createConversationStore({ conversations: createTableClient(storage, TABLES.conversations), userChats: createTableClient(storage, TABLES.userChats) });
}

interface TimedResult {
  /** Operations started. */
  readonly attempted: number;
  readonly latencies: number[];
  /** Latency of operation i (undefined when it threw). */
  readonly perIndex: (number | undefined)[];
  readonly errors: number;
  readonly errorSamples: string[];
  readonly wallMs: number;
  readonly statuses: Record<string, number>;
  readonly timedOut: boolean;
}

/** Runs `op` `count` times at `concurrency`, timing each call (ms). */
async function timed(count: number, concurrency: number, deadlineMs: number, op: (i: number) => Promise<number | void>): Promise<TimedResult> {
  const latencies: number[] = [];
  const perIndex: (number | undefined)[] = [];
  const statuses: Record<string, number> = {};
  const errorSamples: string[] = [];
  let errors = 0;
  const t0 = performance.now();
  const { started, timedOut } = await runPool(count, concurrency, Date.now() + deadlineMs, async (i) => {
    const start = performance.now();
    try {
      const status = await op(i);
      const ms = performance.now() - start;
      latencies.push(ms);
      perIndex[i] = ms;
      if (typeof status === 'number') {
        statuses[status] = (statuses[status] ?? 0) + 1;
        if (status >= 300) errors += 1;
      }
    } catch (err) {
      errors += 1;
      if (errorSamples.length < 3) errorSamples.push(err instanceof Error ? err.message : String(err));
    }
  });
  return { attempted: started, latencies, perIndex, errors, errorSamples, wallMs: performance.now() - t0, statuses, timedOut };
}

function latencyRow(label: string, result: TimedResult, s: LatencySummary): (string | number)[] {
  return [label, fmtInt(result.attempted), fmtInt((s.count / result.wallMs) * 1000), fmt(s.p50, 2), fmt(s.p90, 2), fmt(s.p99, 2), fmt(s.max, 2), fmtInt(result.errors)];
}

// ---- 1. Inbound ---------------------------------------------------------------------------------

async function inbound(p: Params['inbound']): Promise<boolean> {
  const storage = await azurite();
  const issuer = await ChannelTokenIssuer.create();
  const openId = await startOpenIdServer({ issuer });
  cleanups.push(() => openId.close());

  // Hermetic settings: every setting the app knows is removed unless set here, whatever
  // local.settings.json or the shell says.
  const env: Record<string, string | null> = {};
  for (const setting of SETTINGS) env[setting.name] = null;
  Object.assign(env, {
    FUNCTIONS_WORKER_RUNTIME: 'node',
    MicrosoftAppId: BENCH_APP_ID,
    MicrosoftAppType: 'SingleTenant',
    MicrosoftAppTenantId: BENCH_BOT_TENANT,
    MicrosoftAppPassword: BENCH_APP_SECRET,
    AzureWebJobsStorage: storage.connectionString,
    BOT_OPENID_METADATA_URL: openId.metadataUrl,
    OUTBOUND_QUEUE: 'outbound-messages',
    HOST_LOG_LEVEL: null,
    PORT: null,
  });
  const host = child({ label: 'host', args: [path.join(BENCH_DIST, 'hostProcess.js')], env: stubClientEnv(), config: { env }, firstTimeoutMs: 60_000 });
  const ready = await host.first;
  const url = `${String(ready.url)}/api/messages`;

  // Activities and tokens ahead of time: one token per conversation (Teams reuses its tokens too).
  const prepare = async (prefix: string, conversations: number, count: number): Promise<{ body: string; headers: Record<string, string> }[]> => {
    const tokens: string[] = [];
    for (let c = 0; c < conversations; c += 1) tokens.push(await issuer.mintChannelToken({ appId: BENCH_APP_ID, serviceUrl: INBOUND_SERVICE_URL }));
    return Array.from({ length: count }, (_, i) => {
      const c = i % conversations;
      const activity = captureActivity(prefix, c, INBOUND_SERVICE_URL, 1, `Message ${i} to the bot`);
      return {
        body: JSON.stringify(activity),
        headers: {
          authorization: `Bearer ${tokens[c]!}`,
          'content-type': 'application/json; charset=utf-8',
          'x-ms-conversation-id': benchConversationId(prefix, c),
          'x-ms-tenant-id': BENCH_USER_TENANT,
        },
      };
    });
  };
  const warmRequests = await prepare('warm', Math.min(p.warmup, 50), p.warmup);
  const measuredRequests = await prepare('in', p.conversations, p.requests);

  const agent = new Agent({ connections: p.concurrency, keepAliveTimeout: 30_000, pipelining: 1 });
  cleanups.push(() => agent.close());
  const post = async (r: { body: string; headers: Record<string, string> }): Promise<number> => {
    const response = await request(url, { method: 'POST', headers: r.headers, body: r.body, dispatcher: agent, headersTimeout: 15_000, bodyTimeout: 15_000 });
    await response.body.dump();
    return response.statusCode;
  };

  const warm = await timed(warmRequests.length, p.concurrency, 60_000, (i) => post(warmRequests[i]!));
  if (warm.errors > 0) throw new Error(`inbound warm-up: ${warm.errors} errors (${JSON.stringify(warm.statuses)}; ${warm.errorSamples.join('; ')})\n${host.output()}`);

  const hostBefore = await host.request({ cmd: 'stats' });
  const azuriteBefore = processCpuMs(storage.process.pid);
  const selfBefore = process.cpuUsage();
  const measured = await timed(measuredRequests.length, p.concurrency, 180_000, (i) => post(measuredRequests[i]!));
  const selfCpu = cpuMsSince(selfBefore);
  const azuriteCpu = (processCpuMs(storage.process.pid) ?? NaN) - (azuriteBefore ?? NaN);
  const hostAfter = await host.request({ cmd: 'stats' });
  const hostCpu = Number(hostAfter.cpuMs) - Number(hostBefore.cpuMs);
  const tallyBefore = hostBefore.tally as Record<string, number>;
  const tallyAfter = hostAfter.tally as Record<string, number>;
  const mix = (k: string): number => (tallyAfter[k] ?? 0) - (tallyBefore[k] ?? 0);

  // Bare Azurite, same run, same concurrency, from this process.
  const storageConfig = { kind: 'connectionString' as const, connectionString: storage.connectionString };
  const baseline: TableClient = createTableClient(storageConfig, 'benchbaseline');
  await baseline.createTable();
  const entity = (i: number): Record<string, unknown> & { partitionKey: string; rowKey: string } => {
    const c = i % p.conversations;
    const now = new Date().toISOString();
    return {
      partitionKey: `a%3A1bench-base-${String(c).padStart(6, '0')}`,
      rowKey: 'ref',
      conversationId: benchConversationId('base', c),
      conversationType: 'personal',
      tenantId: BENCH_USER_TENANT,
      serviceUrl: INBOUND_SERVICE_URL,
      botId: `28:${BENCH_APP_ID}`,
      botName: BENCH_BOT_NAME,
      userId: benchUserId('base', c),
      userAadObjectId: benchAadObjectId(c, 2),
      userName: `Bench User ${c}`,
      locale: 'en-US',
      installed: true,
      installedChangedAt: now,
      firstSeenAt: now,
      lastSeenAt: now,
    };
  };
  await timed(p.warmup, p.concurrency, 60_000, async (i) => {
    await baseline.upsertEntity(entity(i), 'Replace');
  });
  let cpu = process.cpuUsage();
  const upserts = await timed(p.requests, p.concurrency, 180_000, async (i) => {
    await baseline.upsertEntity(entity(i), 'Replace');
  });
  const upsertCpu = cpuMsSince(cpu) / p.requests;
  cpu = process.cpuUsage();
  const reads = await timed(p.requests, p.concurrency, 180_000, async (i) => {
    const e = entity(i);
    await baseline.getEntity(e.partitionKey, e.rowKey);
  });
  const readCpu = cpuMsSince(cpu) / p.requests;

  // Component cost: the app's token verifier alone, warm keys, one token after the other.
  trustEmulatorCertificate();
  const verifier = createChannelTokenVerifier({
    appId: BENCH_APP_ID,
    issuer: issuer.issuer,
    keys: createOpenIdKeyCache({ metadataUrl: openId.metadataUrl, fetchJson: fetchJsonDocument }),
  });
  const verifyTokens = measuredRequests.slice(0, Math.min(500, p.conversations)).map((r) => r.headers.authorization!);
  for (const token of verifyTokens.slice(0, 50)) await verifier.verify(token);
  const verifyCpu = process.cpuUsage();
  for (const token of verifyTokens) await verifier.verify(token);
  const verifyCpuMs = cpuMsSince(verifyCpu) / verifyTokens.length;

  // Breakdown: the app's handler called in this process (no HTTP server, no host, no
  // @azure/functions), same verifier type, same store on the same Azurite, a fresh set of chats.
  const directRequests = await prepare('direct', p.conversations, p.requests);
  const directStore = conversationStore(storage.connectionString);
  const directLog = createLogger(() => undefined);
  const callDirect = async (r: { body: string; headers: Record<string, string> }): Promise<number> => {
    const body = Buffer.from(r.body);
    const response = await handleMessages(
      {
        method: 'POST',
        headers: { get: (name: string) => r.headers[name.toLowerCase()] ?? (name.toLowerCase() === 'content-length' ? String(body.length) : null) },
        body: new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(body);
            controller.close();
          },
        }),
      },
      { verifier, store: directStore, now: () => new Date(), log: directLog },
    );
    return response.status;
  };
  const directWarm = await prepare('dwarm', Math.min(p.warmup, 50), p.warmup);
  await timed(directWarm.length, p.concurrency, 60_000, (i) => callDirect(directWarm[i]!));
  const directAzBefore = processCpuMs(storage.process.pid);
  const directCpu = process.cpuUsage();
  const direct = await timed(p.requests, p.concurrency, 180_000, (i) => callDirect(directRequests[i]!));
  const directCpuMs = cpuMsSince(directCpu) / p.requests;
  const directAzCpu = ((processCpuMs(storage.process.pid) ?? NaN) - (directAzBefore ?? NaN)) / p.requests;

  const s = summarize(measured.latencies);
  // Request i is the first from its chat when i < conversations (created), a repeat otherwise (unchanged).
  const firsts = summarize(measured.perIndex.slice(0, p.conversations).filter((x): x is number => x !== undefined));
  const repeats = summarize(measured.perIndex.slice(p.conversations).filter((x): x is number => x !== undefined));
  const split = (label: string, x: LatencySummary): (string | number)[] => [label, fmtInt(x.count), '', fmt(x.p50, 2), fmt(x.p90, 2), fmt(x.p99, 2), fmt(x.max, 2), ''];
  const u = summarize(upserts.latencies);
  const r = summarize(reads.latencies);
  const n = measured.latencies.length;
  const met = measured.errors === 0 && !measured.timedOut && s.p99 < TARGETS.inboundP99Ms;
  print(
    renderTable(
      `1. Inbound: POST /api/messages on the local host, concurrency ${p.concurrency}, warm key cache`,
      ['Operation', 'N', 'per s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors'],
      [
        latencyRow('POST /api/messages (signed message activity)', measured, s),
        split('  of which the first from each chat (created)', firsts),
        split('  of which repeats (unchanged)', repeats),
        latencyRow('breakdown: handleMessages called in-process (no HTTP, no host)', direct, summarize(direct.latencies)),
        latencyRow('Azurite upsertEntity (Replace), bare TableClient', upserts, u),
        latencyRow('Azurite getEntity (point read), bare TableClient', reads, r),
      ],
      [
        `Target: p99 under ${TARGETS.inboundP99Ms} ms on a ${os.cpus().length}-core machine -> ${verdict(met)} (p99 ${fmt(s.p99, 1)} ms)${measured.timedOut ? ' (TIMED OUT)' : ''}.`,
        `Activities: ${fmtInt(p.requests)} message activities over ${fmtInt(p.conversations)} personal chats after a ${p.warmup}-request warm-up (other chats; fills the OpenID key cache). Outcome mix from the app's logs: created ${fmtInt(mix('created'))}, updated ${fmtInt(mix('updated'))}, unchanged ${fmtInt(mix('unchanged'))}. Created = 1 read + 1 insert + 1 userchats upsert; unchanged = 1 read.`,
        `Statuses: ${JSON.stringify(measured.statuses)}. Each request: RS256 verification of its channel token (no verified-token cache), JSON parse, table operations.`,
        `CPU during the measured run: host process ${fmt(hostCpu / n, 2)} ms/request, Azurite ${fmt(azuriteCpu / n, 2)} ms/request, load generator ${fmt(selfCpu / n, 2)} ms/request; host wrote ${fmtInt(mix('lines'))} log lines (formatted, not printed).`,
        `The breakdown row calls src/inbound/handleMessages directly from this process with the same kind of requests (a fresh set of chats, same mix): ${fmt(directCpuMs, 2)} ms CPU/request here plus ${fmt(directAzCpu, 2)} ms in Azurite. Of the host process's ${fmt(hostCpu / n, 2)} ms/request, the ${fmt(hostCpu / n - directCpuMs, 2)} ms beyond that is the local host's HTTP server, the @azure/functions invocation model and the log lines (in Azure, the .NET Functions host and the worker's gRPC channel replace the first part).`,
        `Component costs, measured alone in this process: one bare Azurite operation through @azure/data-tables, client side, upsertEntity ${fmt(upsertCpu, 3)} ms CPU, getEntity ${fmt(readCpu, 3)} ms CPU; one channel-token verification by the app's verifier (src/auth/verifyChannelToken.ts, warm keys) ${fmt(verifyCpuMs, 3)} ms CPU.`,
        `The host runs in its own process (dist/bench/hostProcess.js -> startHost), Azurite in another (in memory); the load generator (this process) uses one keep-alive undici Agent with ${p.concurrency} connections. All three share the machine's cores.`,
      ],
    ),
  );
  if (measured.errorSamples.length > 0) print(`Inbound error samples: ${measured.errorSamples.join(' | ')}`);
  return met;
}

// ---- 2. Cold start --------------------------------------------------------------------------------

function ensureBaselineInstalled(): void {
  if (existsSync(path.join(BASELINE_DIR, 'node_modules', 'botbuilder', 'package.json'))) return;
  print(`(installing the botbuilder baseline into ${path.relative(REPO_ROOT, BASELINE_DIR)}/node_modules: npm install --prefix bench/baseline --no-audit --no-fund)`);
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const result = spawnSync(npm, ['install', '--prefix', BASELINE_DIR, '--no-audit', '--no-fund'], { cwd: REPO_ROOT, stdio: ['ignore', 'inherit', 'inherit'], timeout: 300_000 });
  if (result.status !== 0) throw new Error(`npm install --prefix bench/baseline failed (status ${result.status}${result.error ? `, ${result.error.message}` : ''})`);
}

interface ColdRun {
  readonly wallMs: number;
  readonly loadMs?: number;
}

/** Spawns `node -e code` and returns its whole wall time and the load time it reports. */
function spawnTimed(code: string, cwd: string): Promise<ColdRun> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (v === undefined) continue;
    // Same conditions for every variant: no preloads, no compile cache, no extra CA bundle to parse.
    if (k === 'NODE_OPTIONS' || k === 'NODE_COMPILE_CACHE' || k === 'NODE_EXTRA_CA_CERTS') continue;
    env[k] = v;
  }
  return new Promise((resolve, reject) => {
    const start = process.hrtime.bigint();
    const proc = spawn(process.execPath, ['-e', code], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    killOnExit(proc);
    let out = '';
    let err = '';
    proc.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    proc.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 30_000);
    proc.once('exit', (codeNum) => {
      clearTimeout(timer);
      const wallMs = Number(process.hrtime.bigint() - start) / 1e6;
      if (codeNum !== 0) return reject(new Error(`node -e exited ${codeNum}: ${err.slice(-1000)}`));
      const line = out.split('\n').find((l) => l.startsWith('@@cold '));
      const loadMs = line === undefined ? undefined : Number((JSON.parse(line.slice(7)) as { loadMs: number }).loadMs);
      resolve(loadMs === undefined ? { wallMs } : { wallMs, loadMs });
    });
  });
}

async function coldStart(p: Params['coldStart']): Promise<boolean> {
  ensureBaselineInstalled();
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { main: string };
  const entryFiles = findFiles(pkg.main, REPO_ROOT).map((f) => path.join(REPO_ROOT, f));
  if (entryFiles.length === 0) throw new Error(`no files match package.json main "${pkg.main}" (run npm run build)`);
  const core = path.join(REPO_ROOT, 'dist', 'host', 'functionsCore.js');
  const report = "process.stdout.write('@@cold ' + JSON.stringify({ loadMs: Number(process.hrtime.bigint() - s) / 1e6 }) + '\\n');";
  // (a) As the worker does: @azure/functions-core is provided first (dist/host/functionsCore.js,
  // not timed), then every file matching package.json main is required (timed).
  const appCode = [
    `const { FunctionsCore, installCoreModule } = require(${JSON.stringify(core)});`,
    'const core = new FunctionsCore(() => {}); installCoreModule(core.api);',
    'const s = process.hrtime.bigint();',
    `for (const f of ${JSON.stringify(entryFiles)}) { core.currentEntryPoint = f; require(f); }`,
    report,
    "if (core.functions.size === 0) { console.error('no functions registered'); process.exit(3); }",
  ].join('\n');
  const libraryCode = [
    `const { FunctionsCore, installCoreModule } = require(${JSON.stringify(core)});`,
    'const core = new FunctionsCore(() => {}); installCoreModule(core.api);',
    'const s = process.hrtime.bigint();',
    "require('@azure/functions');",
    report,
  ].join('\n');
  const botbuilderCode = ['const s = process.hrtime.bigint();', "require('botbuilder');", report].join('\n');

  const variants = [
    { key: 'app', label: `(a) app entry modules (${pkg.main}: ${entryFiles.length} files)`, code: appCode, cwd: REPO_ROOT },
    { key: 'botbuilder', label: "(b) require('botbuilder') (bench/baseline)", code: botbuilderCode, cwd: BASELINE_DIR },
    { key: 'empty', label: '(c) node -e 0', code: '0', cwd: REPO_ROOT },
    { key: 'library', label: "    of (a): require('@azure/functions') alone", code: libraryCode, cwd: REPO_ROOT },
  ];
  const runs = new Map<string, ColdRun[]>(variants.map((v) => [v.key, []]));
  // One untimed run of each first (file-system cache), then rounds in rotating order.
  for (const v of variants) await spawnTimed(v.code, v.cwd);
  const deadline = Date.now() + 240_000;
  for (let round = 0; round < p.runs && Date.now() < deadline; round += 1) {
    for (let k = 0; k < variants.length; k += 1) {
      const v = variants[(round + k) % variants.length]!;
      runs.get(v.key)!.push(await spawnTimed(v.code, v.cwd));
    }
  }

  const stat = (key: string, field: 'wallMs' | 'loadMs'): { median: number; min: number } => {
    const values = runs
      .get(key)!
      .map((r) => r[field])
      .filter((x): x is number => x !== undefined);
    return { median: median(values), min: Math.min(...values) };
  };
  const app = stat('app', 'loadMs');
  const bb = stat('botbuilder', 'loadMs');
  const emptyWall = stat('empty', 'wallMs');
  const ratio = app.median / bb.median;
  const wallRatio = (stat('app', 'wallMs').median - emptyWall.median) / (stat('botbuilder', 'wallMs').median - emptyWall.median);
  const met = ratio <= TARGETS.coldStartMaxRatio;
  const bbVersion = (JSON.parse(readFileSync(path.join(BASELINE_DIR, 'node_modules', 'botbuilder', 'package.json'), 'utf8')) as { version: string }).version;
  print(
    renderTable(
      `2. Cold start: fresh node processes, ${runs.get('app')!.length} runs each, rotating order`,
      ['Variant', 'load median ms', 'load min ms', 'process median ms', 'process min ms'],
      variants.map((v) => {
        const load = stat(v.key, 'loadMs');
        const wall = stat(v.key, 'wallMs');
        return [v.label, fmt(load.median, 1), fmt(load.min, 1), fmt(wall.median, 1), fmt(wall.min, 1)];
      }),
      [
        `Ratio app / botbuilder (median load time): ${fmt(ratio, 3)} -> target at most ${fmt(TARGETS.coldStartMaxRatio, 3)}: ${verdict(met)}. On whole-process time minus the empty process: ${fmt(wallRatio, 3)}.`,
        `"load" is measured inside the child with process.hrtime around the require(s); "process" is spawn to exit as seen by this process. botbuilder ${bbVersion} from bench/baseline/node_modules.`,
        '(a) installs the local host\'s @azure/functions-core first (untimed), as the Functions worker provides it, so @azure/functions registers the functions for real; nothing else (config, storage, identity, undici) is loaded until a request needs it.',
        'Warm file-system cache (one untimed run of each first); NODE_OPTIONS, NODE_COMPILE_CACHE and NODE_EXTRA_CA_CERTS are removed from the children\'s environment.',
      ],
    ),
  );
  return met;
}

// ---- 3. Outbound throughput ---------------------------------------------------------------------

interface RunFigures {
  readonly tally: Record<string, number>;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly timedOut: boolean;
}

async function startStubs(rateLimit: boolean, strictActivities: boolean): Promise<{ handle: ChildHandle; ready: Message }> {
  const handle = child({ label: 'stubs', args: [path.join(BENCH_DIST, 'stubProcess.js')], env: stubClientEnv(), config: { rateLimit, strictActivities }, firstTimeoutMs: 30_000 });
  const ready = await handle.first;
  return { handle, ready };
}

function sentCount(tally: Record<string, number>): number {
  return tally.sent ?? 0;
}

async function outbound(p: Params['outbound']): Promise<boolean> {
  ensureBaselineInstalled();
  const storage = await azurite();
  // Not strict about activity ids: botbuilder's proactive sendActivity is a reply to the continuation
  // activity's random id, which Teams accepts in a personal chat.
  const { handle: stubs, ready } = await startStubs(false, false);
  const serviceUrl = String(ready.serviceUrl);
  const store = conversationStore(storage.connectionString);
  await seedReferences(store, 'out', p.messages, serviceUrl, 3);
  await seedReferences(store, 'outwarm', p.warmup, serviceUrl, 4);

  const runId = Date.now().toString(36);
  const workerConfig: OutboundWorkerConfig = {
    mode: 'throughput',
    connectionString: storage.connectionString,
    authorityHost: String(ready.authorityHost),
    connectorOrigin: String(ready.connectorOrigin),
    serviceUrl,
    runId,
    prefix: 'out',
    count: p.messages,
    concurrency: p.concurrency,
    warmupPrefix: 'outwarm',
    warmup: p.warmup,
    // Far above anything reached here: the limiter is exercised but never waits.
    tenantRatePerSecond: 100_000,
    deadlineMs: 240_000,
  };

  const stubBefore = await stubs.request({ cmd: 'stats' });
  const azBefore = processCpuMs(storage.process.pid);
  const app = child({ label: 'outbound worker', args: [path.join(BENCH_DIST, 'outboundWorker.js')], env: stubClientEnv(), config: workerConfig, firstTimeoutMs: 300_000 });
  const appResult = await app.first;
  const azCpu = (processCpuMs(storage.process.pid) ?? NaN) - (azBefore ?? NaN);
  const stubMid = await stubs.request({ cmd: 'stats' });
  // The app's transport alone (same client, same token cache), for the breakdown row.
  const transport = child({ label: 'connector-only worker', args: [path.join(BENCH_DIST, 'outboundWorker.js')], env: stubClientEnv(), config: { ...workerConfig, mode: 'connector' }, firstTimeoutMs: 300_000 });
  const transportResult = await transport.first;
  const stubMid2 = await stubs.request({ cmd: 'stats' });

  const baselineConfig = {
    authorityHost: String(ready.authorityHost),
    tenantId: BENCH_BOT_TENANT,
    appId: BENCH_APP_ID,
    appSecret: BENCH_APP_SECRET,
    userTenantId: BENCH_USER_TENANT,
    serviceUrl,
    prefix: 'out',
    count: p.messages,
    warmupPrefix: 'outwarm',
    warmup: p.warmup,
    concurrency: p.concurrency,
    deadlineMs: 240_000,
    botName: BENCH_BOT_NAME,
  };
  const bb = child({ label: 'botbuilder baseline', args: [path.join(BASELINE_DIR, 'botbuilderSend.js')], cwd: BASELINE_DIR, env: stubClientEnv(), config: baselineConfig, firstTimeoutMs: 300_000 });
  const bbResult = await bb.first;
  const stubAfter = await stubs.request({ cmd: 'stats' });

  const a = appResult.measured as RunFigures;
  const b = bbResult.measured as RunFigures;
  const t = transportResult.measured as RunFigures;
  const tSent = sentCount(t.tally);
  const aSent = sentCount(a.tally);
  const bSent = sentCount(b.tally);
  const aCpuPer = a.cpuMs / aSent;
  const bCpuPer = b.cpuMs / bSent;
  const aRate = (aSent / a.wallMs) * 1000;
  const bRate = (bSent / b.wallMs) * 1000;
  const perCoreRatio = 1000 / aCpuPer / (1000 / bCpuPer);
  const met = aSent === p.messages && bSent === p.messages && perCoreRatio >= TARGETS.outboundMinPerCoreRatio;

  const requests = appResult.requests as Record<string, number>;
  const tableOps = Object.values(requests).reduce((sum, v) => sum + v, 0);
  const opsDetail = Object.entries(requests)
    .sort(([x], [y]) => x.localeCompare(y))
    .map(([k, v]) => `${k}: ${fmt(v / p.messages, 2)}`)
    .join(', ');
  const opsDelta = (after: Message, before: Message): string => {
    const a2 = (after.byOperation ?? {}) as Record<string, number>;
    const b2 = (before.byOperation ?? {}) as Record<string, number>;
    return Object.entries(a2)
      .map(([k, v]) => [k, v - (b2[k] ?? 0)] as const)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k} ${fmtInt(v)}`)
      .join(', ');
  };
  const stubCpuApp = Number(stubMid.cpuMs) - Number(stubBefore.cpuMs);
  const stubCpuBb = Number(stubAfter.cpuMs) - Number(stubMid2.cpuMs);
  const row = (label: string, f: RunFigures, sent: number, rate: number, cpuPer: number): (string | number)[] => [
    label,
    fmtInt(sent),
    fmt(f.wallMs / 1000, 2),
    fmtInt(rate),
    fmt(cpuPer, 3),
    fmtInt(1000 / cpuPer),
    fmtInt(Object.entries(f.tally).filter(([k]) => k !== 'sent').reduce((s, [, v]) => s + v, 0)),
  ];
  print(
    renderTable(
      `3. Outbound throughput: ${fmtInt(p.messages)} jobs to ${fmtInt(p.messages)} conversations, concurrency ${p.concurrency}, stub without delay or limits`,
      ['Sender (own process)', 'sent', 'wall s', 'msgs/s', 'CPU ms/msg', 'msgs/s per core', 'not sent'],
      [
        row('teams-courier processJobMessage (real delivery path)', a, aSent, aRate, aCpuPer),
        row('botbuilder CloudAdapter.continueConversationAsync + sendActivity', b, bSent, bRate, bCpuPer),
        ['ratio teams-courier / botbuilder', '', '', fmt(aRate / bRate, 2), fmt(aCpuPer / bCpuPer, 2), fmt(perCoreRatio, 2), ''],
        row('breakdown: teams-courier connector client alone (POST only)', t, tSent, (tSent / t.wallMs) * 1000, t.cpuMs / tSent),
      ],
      [
        `Target: at least ${TARGETS.outboundMinPerCoreRatio}x the baseline per core -> ${verdict(met)} (${fmt(perCoreRatio, 2)}x). "msgs/s per core" = 1000 / CPU ms per message of the sender's own process (user + system, process.cpuUsage).`,
        `Not equal work: the teams-courier path also does its store lookup and delivery-record writes on Azurite (${fmt(tableOps / p.messages, 2)} table requests per message: ${opsDetail}) and one structured log line per job; botbuilder only POSTs. Each sends one POST per message to the stub over HTTPS with a cached bot token.`,
        `Other processes during the runs: Azurite ${fmt(azCpu / p.messages, 3)} CPU ms/msg (teams-courier run only); Bot Connector + Entra stub ${fmt(stubCpuApp / p.messages, 3)} ms/msg (teams-courier run), ${fmt(stubCpuBb / p.messages, 3)} ms/msg (botbuilder run).`,
        `The breakdown row sends the same messages through the app's connector client only (token cache, trust check, keep-alive undici POST; no store, no delivery record, no limiter, no log): teams-courier's CPU beyond it, ${fmt(aCpuPer - t.cpuMs / tSent, 3)} ms/msg, is the store lookup, the claim and the record.`,
        `Requests at the Connector stub (warm-up included): teams-courier ${opsDelta(stubMid, stubBefore)}; botbuilder ${opsDelta(stubAfter, stubMid2)} (the SDK's proactive sendActivity replies to the continuation activity's id; the stub accepts that as Teams does in a personal chat).`,
        `Warm-up: ${p.warmup} sends each on other conversations first (token, table creation, TLS, JIT). Outcomes: teams-courier ${JSON.stringify(a.tally)}, botbuilder ${JSON.stringify(b.tally)}.`,
        `Each sender runs in its own child process: dist/bench/outboundWorker.js (teams-courier, from dist) and bench/baseline/botbuilderSend.js (botbuilder ${readBaselineVersion()}, from bench/baseline/node_modules).`,
      ],
    ),
  );
  const appErrors = appResult.errors as string[] | undefined;
  const bbErrors = bbResult.errors as string[] | undefined;
  if (appErrors?.length) print(`teams-courier error samples: ${appErrors.join(' | ')}`);
  if (bbErrors?.length) print(`botbuilder error samples: ${bbErrors.join(' | ')}`);
  const samples = appResult.samples as string[] | undefined;
  if (samples?.length) print(`teams-courier warning samples: ${samples.join(' | ')}`);
  return met;
}

function readBaselineVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(BASELINE_DIR, 'node_modules', 'botbuilder', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

// ---- 4. Broadcast under limits ------------------------------------------------------------------

async function broadcast(p: Params['broadcast']): Promise<boolean> {
  const storage = await azurite();
  const { handle: stubs, ready } = await startStubs(true, true);
  const serviceUrl = String(ready.serviceUrl);
  const store = conversationStore(storage.connectionString);
  await seedReferences(store, 'bc', p.recipients, serviceUrl, 5);

  const runId = Date.now().toString(36);
  const jobs = new QueueClient(storage.connectionString, 'outbound-messages');
  await jobs.createIfNotExists();
  await new QueueClient(storage.connectionString, 'outbound-messages-poison').createIfNotExists();
  const enqueue = await runPool(p.recipients, 16, Date.now() + 120_000, async (i) => {
    await jobs.sendMessage(JSON.stringify({ id: `bench-${runId}-bc-${i}`, to: { conversationId: benchConversationId('bc', i) }, text: `Broadcast ${i}: maintenance tonight at 22:00.` }));
  });
  if (enqueue.timedOut) throw new Error('broadcast: enqueueing timed out');
  await stubs.request({ cmd: 'reset' });

  const workerConfig: OutboundWorkerConfig = {
    mode: 'broadcast',
    connectionString: storage.connectionString,
    authorityHost: String(ready.authorityHost),
    connectorOrigin: String(ready.connectorOrigin),
    serviceUrl,
    runId,
    prefix: 'bc',
    count: p.recipients,
    concurrency: p.batchSize + p.newBatchThreshold,
    tenantRatePerSecond: p.tenantRate,
    batchSize: p.batchSize,
    newBatchThreshold: p.newBatchThreshold,
    maxPollingMs: 2_000,
    deadlineMs: p.deadlineMs,
  };
  const worker = child({ label: 'broadcast worker', args: [path.join(BENCH_DIST, 'outboundWorker.js')], env: stubClientEnv(), config: workerConfig, firstTimeoutMs: p.deadlineMs + 60_000 });
  const result = await worker.first;
  const stub = await stubs.request({ cmd: 'stats' });
  const arrivals = (await stubs.request({ cmd: 'arrivals' })).arrivals as Record<string, number[]>;
  // Delay from the app limiter's granted slot to the request's arrival at the Connector stub.
  const acquired = (result.acquired ?? {}) as Record<string, number[]>;
  const slotDelays: number[] = [];
  for (const [conversationId, times] of Object.entries(acquired)) {
    const seen = arrivals[conversationId] ?? [];
    times.forEach((t, k) => {
      if (seen[k] !== undefined) slotDelays.push(seen[k]! - t);
    });
  }
  const delay = summarize(slotDelays);

  const stubStats = stub.stats as { requests: number; delivered: number; throttled: number };
  const tally = result.tally as Record<string, number>;
  const sent = Number(result.sent);
  const wallS = Number(result.wallMs) / 1000;
  const minS = p.recipients / p.tenantRate;
  const rate = sent / wallS;
  const share = rate / p.tenantRate;
  const firstAt = Number(stub.firstDeliveryAt);
  const lastAt = Number(stub.lastDeliveryAt);
  const steadyRate = sent > 1 && lastAt > firstAt ? ((sent - 1) / (lastAt - firstAt)) * 1000 : NaN;
  const throttled = stubStats.throttled;
  const throttledShare = stubStats.requests > 0 ? throttled / stubStats.requests : NaN;
  const failures = Object.entries(tally)
    .filter(([k]) => k.startsWith('failed'))
    .reduce((s, [, v]) => s + v, 0);
  const met = !result.timedOut && failures === 0 && share >= TARGETS.broadcastMinShareOfAllowed && throttledShare < TARGETS.broadcastMaxThrottledShare;
  const retried = Object.entries(tally)
    .filter(([k]) => k.startsWith('retrying'))
    .reduce((s, [, v]) => s + v, 0);
  print(
    renderTable(
      `4. Broadcast under Teams' limits: ${fmtInt(p.recipients)} recipients in one tenant, stub enforcing the published limits`,
      ['Measure', 'Value'],
      [
        ['Recipients (distinct conversations, one tenant)', fmtInt(p.recipients)],
        ['Sent / failed', `${fmtInt(sent)} / ${fmtInt(failures)}`],
        ['Total time (first receive to last job done) s', fmt(wallS, 2)],
        [`Theoretical minimum at ${p.tenantRate}/s s`, fmt(minS, 2)],
        ['Achieved rate msgs/s', fmt(rate, 2)],
        [`Share of the allowed ${p.tenantRate}/s`, `${fmt(share * 100, 1)} %`],
        ['Steady rate at the stub (first to last delivery) msgs/s', fmt(steadyRate, 2)],
        ['Connector requests / 429s', `${fmtInt(stubStats.requests)} / ${fmtInt(throttled)} (${fmt(throttledShare * 100, 2)} %)`],
        ['Limiter slot -> arrival at the stub, p50 / p99 / max ms', `${fmt(delay.p50, 0)} / ${fmt(delay.p99, 0)} / ${fmt(delay.max, 0)}`],
        ['429s by limit (stub)', Object.entries((stub.throttledBy ?? {}) as Record<string, number>).map(([k, v]) => `${k} ${fmtInt(v)}`).join(', ') || 'none'],
        ['Invocations (incl. deferred and retried)', fmtInt(Number(result.invocations))],
        ['Deferred back to the queue by the rate limit', fmtInt(tally.deferred ?? 0)],
        [
          'Put back for a retry, by code',
          Object.entries(tally)
            .filter(([k]) => k.startsWith('retrying:'))
            .map(([k, v]) => `${k.slice('retrying:'.length)} ${fmtInt(v)}`)
            .join(', ') || '0',
        ],
        ['Polls / empty polls', `${fmtInt(Number(result.polls))} / ${fmtInt(Number(result.emptyPolls))}`],
      ],
      [
        `Target: at least ${fmt(TARGETS.broadcastMinShareOfAllowed * 100, 0)} % of the allowed rate and under ${fmt(TARGETS.broadcastMaxThrottledShare * 100, 0)} % of requests throttled -> ${verdict(met)}${result.timedOut ? ' (TIMED OUT)' : ''}.`,
        `The app's own limiter (BOT_TENANT_RATE_PER_SECOND=${p.tenantRate}, conversation windows, ${p.tenantRate} per ${1000 + WINDOW_SAFETY_MS} ms with its ${WINDOW_SAFETY_MS} ms safety margin) paces the sends; the stub answers 429 past Teams' limits (50/s per app per tenant, 7/1 s, 8/2 s, 60/30 s per conversation).`,
        `Host-like loop over the Azurite queue: receive ${p.batchSize}, fetch again when at most ${p.newBatchThreshold} are running (up to ${p.batchSize + p.newBatchThreshold} in flight), visibility 30 s, empty-poll back-off 100 ms..2 s; jobs the sender puts back (deferred or retried: ${fmtInt((tally.deferred ?? 0) + retried)}) come back through the queue.`,
        `Outcomes: ${JSON.stringify(tally)}.`,
      ],
    ),
  );
  const errors = result.errors as string[] | undefined;
  if (errors?.length) print(`broadcast error samples: ${errors.join(' | ')}`);
  return met;
}

// ---- Main ---------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const params = args.quick ? QUICK : FULL;
  installLoopbackGuard();
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));
  // A bound on the whole run, whatever happens inside.
  const watchdog = setTimeout(
    () => {
      print(`bench: the whole run exceeded its time limit; stopping.`);
      process.exit(2);
    },
    args.quick ? 240_000 : 1_500_000,
  );
  watchdog.unref();

  printEnvironment(args);
  const verdicts: [string, boolean | 'error'][] = [];
  const sections: Record<Section, [string, () => Promise<boolean>]> = {
    inbound: ['1. Inbound', () => inbound(params.inbound)],
    coldstart: ['2. Cold start', () => coldStart(params.coldStart)],
    outbound: ['3. Outbound throughput', () => outbound(params.outbound)],
    broadcast: ['4. Broadcast under limits', () => broadcast(params.broadcast)],
    scale: ['5. Scale-out', () => scaleOut(args.quick ? SCALE_OUT_QUICK : SCALE_OUT_FULL, print)],
  };
  for (const key of args.only) {
    const [name, run] = sections[key];
    const t0 = Date.now();
    try {
      verdicts.push([name, await run()]);
    } catch (err) {
      verdicts.push([name, 'error']);
      print(`### ${name}: FAILED TO RUN\n\n${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    } finally {
      await runCleanups();
    }
    print(`(${name} took ${fmt((Date.now() - t0) / 1000, 1)} s)`);
    print();
  }
  print(
    renderTable(
      'Targets',
      ['Section', 'Target'],
      verdicts.map(([name, v]) => [name, v === 'error' ? 'ERROR (did not run)' : verdict(v)]),
      [`Load average at the end (1/5/15 min): ${os.loadavg().map((l) => l.toFixed(2)).join(' / ')}; anything else busy on the machine skews every figure above.`],
    ),
  );
  clearTimeout(watchdog);
  process.exitCode = verdicts.some(([, v]) => v === 'error') ? 1 : 0;
}

main()
  .catch((err: unknown) => {
    console.error(err instanceof Error ? err.stack : err);
    process.exitCode = 1;
  })
  .finally(() => {
    void runCleanups().then(() => {
      // Children are gone; leave even if a keep-alive socket lingers.
      setTimeout(() => process.exit(), 200).unref();
    });
  });
