/**
 * Bench section 1, inbound: POST /api/messages on the local Functions host (its own process) at
 * concurrency 16 with a warm key cache, next to bare Azurite operations and the app's handler
 * called in-process, in the same run. See bench/README.md "1. Inbound".
 */
import os from 'node:os';
import path from 'node:path';
import { Agent, request } from 'undici';
import { startStubWorld, trustEmulatorCertificate } from '../host/emulator';
import { createOpenIdKeyCache, fetchJsonDocument } from '../src/auth/openIdKeys';
import { createChannelTokenVerifier } from '../src/auth/verifyChannelToken';
import { handleMessages } from '../src/inbound/handleMessages';
import { createLogger } from '../src/log';
import { SETTINGS } from '../src/config';
import { createTableClient, type TableClient } from '../src/store/tableClients';
import type { BenchRig } from './lib/benchRig';
import {
  BENCH_DIST,
  cpuMsSince,
  fmt,
  fmtInt,
  print,
  processCpuMs,
  renderTable,
  runPool,
  stubClientEnv,
  summarize,
  verdict,
  type LatencySummary,
} from './lib/common';
import {
  BENCH_APP_ID,
  BENCH_APP_SECRET,
  BENCH_BOT_NAME,
  BENCH_BOT_TENANT,
  BENCH_USER_TENANT,
  benchAadObjectId,
  benchConversationId,
  benchUserId,
} from './lib/identities';
import { benchMessage, conversationStore } from './lib/seeding';

export interface InboundParams {
  readonly requests: number;
  readonly warmup: number;
  readonly conversations: number;
  readonly concurrency: number;
}

export const INBOUND_FULL: InboundParams = { requests: 3000, warmup: 200, conversations: 500, concurrency: 16 };
export const INBOUND_QUICK: InboundParams = { requests: 600, warmup: 100, conversations: 100, concurrency: 16 };

/** The target from the issue: p99 under 50 ms. */
export const INBOUND_TARGET_P99_MS = 50;

/** The serviceUrl inbound activities carry. Nothing is sent there: inbound only stores it. */
const INBOUND_SERVICE_URL = 'https://smba.trafficmanager.net/amer/';

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
async function timed(
  count: number,
  concurrency: number,
  deadlineMs: number,
  op: (i: number) => Promise<number | void>,
): Promise<TimedResult> {
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
  return {
    attempted: started,
    latencies,
    perIndex,
    errors,
    errorSamples,
    wallMs: performance.now() - t0,
    statuses,
    timedOut,
  };
}

function latencyRow(label: string, result: TimedResult, s: LatencySummary): (string | number)[] {
  return [
    label,
    fmtInt(result.attempted),
    fmtInt((s.count / result.wallMs) * 1000),
    fmt(s.p50, 2),
    fmt(s.p90, 2),
    fmt(s.p99, 2),
    fmt(s.max, 2),
    fmtInt(result.errors),
  ];
}

export async function inbound(p: InboundParams, rig: BenchRig): Promise<boolean> {
  const storage = await rig.azurite();
  // In this process: the load generator signs the activities with the world's issuer.
  const world = await startStubWorld({
    bot: { appId: BENCH_APP_ID, tenantId: BENCH_BOT_TENANT, secret: BENCH_APP_SECRET },
  });
  rig.defer(() => world.close());
  const { issuer, openId } = world;

  // Hermetic settings: every setting the app knows is removed unless set here, whatever
  // local.settings.json or the shell says.
  const env: Record<string, string | null> = {};
  for (const setting of SETTINGS) env[setting.name] = null;
  Object.assign(env, {
    FUNCTIONS_WORKER_RUNTIME: 'node',
    ...world.appSettings({ AzureWebJobsStorage: storage.connectionString, OUTBOUND_QUEUE: 'outbound-messages' }),
    HOST_LOG_LEVEL: null,
    PORT: null,
  });
  const host = rig.child({
    label: 'host',
    args: [path.join(BENCH_DIST, 'hostProcess.js')],
    env: stubClientEnv(),
    config: { env },
    firstTimeoutMs: 60_000,
  });
  const ready = await host.first;
  const url = `${String(ready.url)}/api/messages`;

  // Activities and tokens ahead of time: one token per conversation (Teams reuses its tokens too).
  const prepare = async (
    prefix: string,
    conversations: number,
    count: number,
  ): Promise<{ body: string; headers: Record<string, string> }[]> => {
    const tokens: string[] = [];
    for (let c = 0; c < conversations; c += 1)
      tokens.push(await issuer.mintChannelToken({ appId: BENCH_APP_ID, serviceUrl: INBOUND_SERVICE_URL }));
    return Array.from({ length: count }, (_, i) => {
      const c = i % conversations;
      const activity = benchMessage(
        { prefix, index: c, serviceUrl: INBOUND_SERVICE_URL, salt: 1 },
        `Message ${i} to the bot`,
      );
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
  rig.defer(() => agent.close());
  const post = async (r: { body: string; headers: Record<string, string> }): Promise<number> => {
    const response = await request(url, {
      method: 'POST',
      headers: r.headers,
      body: r.body,
      dispatcher: agent,
      headersTimeout: 15_000,
      bodyTimeout: 15_000,
    });
    await response.body.dump();
    return response.statusCode;
  };

  const warm = await timed(warmRequests.length, p.concurrency, 60_000, (i) => post(warmRequests[i]!));
  if (warm.errors > 0)
    throw new Error(
      `inbound warm-up: ${warm.errors} errors (${JSON.stringify(warm.statuses)}; ${warm.errorSamples.join('; ')})\n${host.output()}`,
    );

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
        headers: {
          get: (name: string) =>
            r.headers[name.toLowerCase()] ?? (name.toLowerCase() === 'content-length' ? String(body.length) : null),
        },
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
  const split = (label: string, x: LatencySummary): (string | number)[] => [
    label,
    fmtInt(x.count),
    '',
    fmt(x.p50, 2),
    fmt(x.p90, 2),
    fmt(x.p99, 2),
    fmt(x.max, 2),
    '',
  ];
  const u = summarize(upserts.latencies);
  const r = summarize(reads.latencies);
  const n = measured.latencies.length;
  const met = measured.errors === 0 && !measured.timedOut && s.p99 < INBOUND_TARGET_P99_MS;
  print(
    renderTable(
      `1. Inbound: POST /api/messages on the local host, concurrency ${p.concurrency}, warm key cache`,
      ['Operation', 'N', 'per s', 'p50 ms', 'p90 ms', 'p99 ms', 'max ms', 'errors'],
      [
        latencyRow('POST /api/messages (signed message activity)', measured, s),
        split('  of which the first from each chat (created)', firsts),
        split('  of which repeats (unchanged)', repeats),
        latencyRow(
          'breakdown: handleMessages called in-process (no HTTP, no host)',
          direct,
          summarize(direct.latencies),
        ),
        latencyRow('Azurite upsertEntity (Replace), bare TableClient', upserts, u),
        latencyRow('Azurite getEntity (point read), bare TableClient', reads, r),
      ],
      [
        `Target: p99 under ${INBOUND_TARGET_P99_MS} ms on a ${os.cpus().length}-core machine -> ${verdict(met)} (p99 ${fmt(s.p99, 1)} ms)${measured.timedOut ? ' (TIMED OUT)' : ''}.`,
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
