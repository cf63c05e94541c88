/**
 * Bench section 3, outbound throughput: jobs through the app's real delivery path in a child
 * process, next to the Bot Framework SDK sending the same messages, CPU per message. See
 * bench/README.md "3. Outbound throughput".
 */
import path from 'node:path';
import { QueueClient } from '@azure/storage-queue';
import { baselineVersion, ensureBaselineInstalled } from './lib/baseline';
import type { BenchRig } from './lib/benchRig';
import {
  BASELINE_DIR,
  BENCH_DIST,
  fmt,
  fmtInt,
  print,
  processCpuMs,
  renderTable,
  runPool,
  stubClientEnv,
  verdict,
  type Message,
} from './lib/common';
import {
  BENCH_APP_ID,
  BENCH_APP_SECRET,
  BENCH_BOT_NAME,
  BENCH_BOT_TENANT,
  BENCH_USER_TENANT,
  benchConversationId,
} from './lib/identities';
import { conversationStore, seedPersonalChats } from './lib/seeding';
import type { OutboundWorkerConfig } from './outboundWorker';

export interface OutboundParams {
  readonly messages: number;
  readonly warmup: number;
  readonly concurrency: number;
  /** Jobs for the queue-worker comparison (each side its own queue; Azurite slows past ~2k). */
  readonly workerJobs: number;
  /** Alternated rounds of the queue-worker comparison; the medians decide. */
  readonly workerRounds: number;
}

export const OUTBOUND_FULL: OutboundParams = {
  messages: 2000,
  warmup: 100,
  concurrency: 16,
  workerJobs: 1000,
  workerRounds: 5,
};
export const OUTBOUND_QUICK: OutboundParams = {
  messages: 300,
  warmup: 50,
  concurrency: 16,
  workerJobs: 300,
  workerRounds: 1,
};

/** Issue 12's target on CPU per job (section 3b): the botbuilder worker's over teams-courier's. */
export const OUTBOUND_MIN_CPU_RATIO = 1.5;

interface RunFigures {
  readonly tally: Record<string, number>;
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly timedOut: boolean;
}

function sentCount(tally: Record<string, number>): number {
  return tally.sent ?? 0;
}

export async function outbound(p: OutboundParams, rig: BenchRig): Promise<boolean> {
  ensureBaselineInstalled();
  const storage = await rig.azurite();
  // Not strict about activity ids: botbuilder's proactive sendActivity is a reply to the continuation
  // activity's random id, which Teams accepts in a personal chat.
  const { handle: stubs, ready } = await rig.stubs({ rateLimit: false, strictActivities: false });
  const serviceUrl = ready.serviceUrl;
  const store = conversationStore(storage.connectionString);
  await seedPersonalChats(store, p.messages, { prefix: 'out', serviceUrl, salt: 3 });
  await seedPersonalChats(store, p.warmup, { prefix: 'outwarm', serviceUrl, salt: 4 });

  const runId = Date.now().toString(36);
  const workerConfig: OutboundWorkerConfig = {
    mode: 'throughput',
    connectionString: storage.connectionString,
    appSettings: ready.appSettings,
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
  const app = rig.child({
    label: 'outbound worker',
    args: [path.join(BENCH_DIST, 'outboundWorker.js')],
    env: stubClientEnv(),
    config: workerConfig,
    firstTimeoutMs: 300_000,
  });
  const appResult = await app.first;
  const azCpu = (processCpuMs(storage.process.pid) ?? NaN) - (azBefore ?? NaN);
  const stubMid = await stubs.request({ cmd: 'stats' });
  // The app's transport alone (same client, same token cache), for the breakdown row.
  const transport = rig.child({
    label: 'connector-only worker',
    args: [path.join(BENCH_DIST, 'outboundWorker.js')],
    env: stubClientEnv(),
    config: { ...workerConfig, mode: 'connector' },
    firstTimeoutMs: 300_000,
  });
  const transportResult = await transport.first;
  const stubMid2 = await stubs.request({ cmd: 'stats' });

  const baselineConfig = {
    authorityHost: ready.authorityHost,
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
  const bb = rig.child({
    label: 'botbuilder baseline',
    args: [path.join(BASELINE_DIR, 'botbuilderSend.js')],
    cwd: BASELINE_DIR,
    env: stubClientEnv(),
    config: baselineConfig,
    firstTimeoutMs: 300_000,
  });
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
  const complete = aSent === p.messages && bSent === p.messages;

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
    fmtInt(
      Object.entries(f.tally)
        .filter(([k]) => k !== 'sent')
        .reduce((s, [, v]) => s + v, 0),
    ),
  ];
  print(
    renderTable(
      `3. Outbound throughput: ${fmtInt(p.messages)} jobs to ${fmtInt(p.messages)} conversations, concurrency ${p.concurrency}, stub without delay or limits`,
      ['Sender (own process)', 'sent', 'wall s', 'msgs/s', 'CPU ms/msg', 'msgs/s per core', 'not sent'],
      [
        row('teams-courier processJobMessage (real delivery path)', a, aSent, aRate, aCpuPer),
        row('botbuilder CloudAdapter.continueConversationAsync + sendActivity', b, bSent, bRate, bCpuPer),
        [
          'ratio teams-courier / botbuilder',
          '',
          '',
          fmt(aRate / bRate, 2),
          fmt(aCpuPer / bCpuPer, 2),
          fmt(perCoreRatio, 2),
          '',
        ],
        row(
          'breakdown: teams-courier connector client alone (POST only)',
          t,
          tSent,
          (tSent / t.wallMs) * 1000,
          t.cpuMs / tSent,
        ),
      ],
      [
        `No target of its own: the delivery path with its lookup and record, against botbuilder's send alone, is a breakdown. Issue 3 set "3x the baseline per core" here; issue 12 replaced it with whole queue workers doing comparable work (section 3b). Every job sent: ${complete ? 'yes' : 'NO'}. "msgs/s per core" = 1000 / CPU ms per message of the sender's own process (user + system, process.cpuUsage).`,
        `Not equal work: the teams-courier path also does its store lookup and delivery-record writes on Azurite (${fmt(tableOps / p.messages, 2)} table requests per message: ${opsDetail}) and one structured log line per job; botbuilder only POSTs. Each sends one POST per message to the stub over HTTPS with a cached bot token.`,
        `Other processes during the runs: Azurite ${fmt(azCpu / p.messages, 3)} CPU ms/msg (teams-courier run only); Bot Connector + Entra stub ${fmt(stubCpuApp / p.messages, 3)} ms/msg (teams-courier run), ${fmt(stubCpuBb / p.messages, 3)} ms/msg (botbuilder run).`,
        `The breakdown row sends the same messages through the app's connector client only (token cache, trust check, keep-alive undici POST; no store, no delivery record, no limiter, no log): teams-courier's CPU beyond it, ${fmt(aCpuPer - t.cpuMs / tSent, 3)} ms/msg, is the store lookup, the claim and the record.`,
        `Requests at the Connector stub (warm-up included): teams-courier ${opsDelta(stubMid, stubBefore)}; botbuilder ${opsDelta(stubAfter, stubMid2)} (the SDK's proactive sendActivity replies to the continuation activity's id; the stub accepts that as Teams does in a personal chat).`,
        `Warm-up: ${p.warmup} sends each on other conversations first (token, table creation, TLS, JIT). Outcomes: teams-courier ${JSON.stringify(a.tally)}, botbuilder ${JSON.stringify(b.tally)}.`,
        `Each sender runs in its own child process: dist/bench/outboundWorker.js (teams-courier, from dist) and bench/baseline/botbuilderSend.js (botbuilder ${baselineVersion()}, from bench/baseline/node_modules).`,
      ],
    ),
  );
  const appErrors = appResult.errors as string[] | undefined;
  const bbErrors = bbResult.errors as string[] | undefined;
  if (appErrors?.length) print(`teams-courier error samples: ${appErrors.join(' | ')}`);
  if (bbErrors?.length) print(`botbuilder error samples: ${bbErrors.join(' | ')}`);
  const samples = appResult.samples as string[] | undefined;
  if (samples?.length) print(`teams-courier warning samples: ${samples.join(' | ')}`);
  const worker = await queueWorkers(p, rig, serviceUrl, ready.appSettings, ready.authorityHost);
  return complete && worker;
}

/** Puts `count` plain jobs for benchConversationId(prefix, i) on `queueName`. */
async function enqueueJobs(
  connectionString: string,
  queueName: string,
  prefix: string,
  count: number,
  runId: string,
): Promise<void> {
  const queue = new QueueClient(connectionString, queueName);
  await queue.createIfNotExists();
  await new QueueClient(connectionString, `${queueName}-poison`).createIfNotExists();
  const enqueue = await runPool(count, 16, Date.now() + 120_000, async (i) => {
    await queue.sendMessage(
      JSON.stringify({
        id: `bench-${runId}-${prefix}-${i}`,
        to: { conversationId: benchConversationId(prefix, i) },
        text: `Benchmark message ${i}: the build passed.`,
      }),
    );
  });
  if (enqueue.timedOut) throw new Error(`outbound: enqueueing ${count} jobs timed out`);
}

/**
 * The issue's comparison: whole queue workers. teams-courier's sender with a host-like queue loop
 * (receive 16 + 8, claim, send, record, delete), next to a Bot Framework SDK worker (receive 32, one
 * table read, continueConversationAsync + sendActivity, delete), same number of jobs, each from its
 * own queue, no Teams limits.
 *
 * Every run gets an Azurite of its own, seeded with the same n references and filled with its n
 * jobs: Azurite's point operations scan the rows that share a RowKey, so a table that grew round by
 * round would slow later runs (and teams-courier's deliveries table grows by n a run), and its
 * queue garbage collector, every 60 s, deletes the extents of earlier runs' messages one at a time
 * with an index rebuild each, which blocked it for 40-120 s in one round of five.
 */
async function queueWorkers(
  p: OutboundParams,
  rig: BenchRig,
  serviceUrl: string,
  appSettings: Readonly<Record<string, string>>,
  authorityHost: string,
): Promise<boolean> {
  const n = p.workerJobs;
  const runId = `w${Date.now().toString(36)}`;
  /** Runs `run` on a fresh, seeded and filled Azurite; adds Azurite's CPU meanwhile: storage's share of the jobs. */
  const onFreshAzurite = async <T>(
    prefix: string,
    queueName: string,
    round: number,
    run: (connectionString: string) => Promise<T>,
  ): Promise<T & { azuriteCpuMs: number }> => {
    const azurite = await rig.azurite();
    try {
      await seedPersonalChats(conversationStore(azurite.connectionString), n, { prefix, serviceUrl, salt: 6 });
      await enqueueJobs(azurite.connectionString, queueName, prefix, n, `${runId}r${round}`);
      const before = processCpuMs(azurite.process.pid) ?? NaN;
      const result = await run(azurite.connectionString);
      return { ...result, azuriteCpuMs: (processCpuMs(azurite.process.pid) ?? NaN) - before };
    } finally {
      await azurite.stop();
    }
  };
  const runOurs = (prefix: string, hostQueue: 'host' | 'sdk', round: number, floor?: 'post' | 'lookup') =>
    onFreshAzurite(prefix, 'outbound-messages', round, async (connectionString) => {
      const child = rig.child({
        label: `teams-courier queue worker (${hostQueue})`,
        args: [path.join(BENCH_DIST, 'outboundWorker.js')],
        env: stubClientEnv(),
        config: {
          mode: 'broadcast',
          connectionString,
          appSettings,
          serviceUrl,
          runId,
          prefix,
          count: n,
          concurrency: 24,
          // The most BOT_TENANT_RATE_PER_SECOND allows: no run here reaches it.
          tenantRatePerSecond: 1_000,
          batchSize: 16,
          newBatchThreshold: 8,
          maxPollingMs: 2_000,
          hostQueue,
          ...(floor === undefined ? {} : { floor }),
          deadlineMs: 240_000,
        } satisfies OutboundWorkerConfig,
        firstTimeoutMs: 300_000,
      });
      return (await child.first) as Message & {
        cpuMs: number;
        sent: number;
        wallMs: number;
        tally: Record<string, number>;
      };
    });
  const runTheirs = (round: number) =>
    onFreshAzurite('wb', 'bench-botbuilder', round, async (connectionString) => {
      const theirs = rig.child({
        label: 'botbuilder queue worker',
        args: [path.join(BASELINE_DIR, 'botbuilderWorker.js')],
        cwd: BASELINE_DIR,
        env: stubClientEnv(),
        config: {
          authorityHost,
          tenantId: BENCH_BOT_TENANT,
          appId: BENCH_APP_ID,
          appSecret: BENCH_APP_SECRET,
          connectionString,
          queueName: 'bench-botbuilder',
          tableName: 'conversations',
          count: n,
          deadlineMs: 240_000,
          botName: BENCH_BOT_NAME,
        },
        firstTimeoutMs: 300_000,
      });
      return (await theirs.first).measured as RunFigures;
    });

  const s = await runOurs('ws', 'sdk', 0);
  // Alternated rounds, each worker a fresh process on its own freshly filled queue; medians decide.
  interface Round {
    readonly cpuPer: number;
    readonly rate: number;
    readonly sent: number;
    readonly azuritePer: number;
  }
  const ours: Round[] = [];
  const lookupFloor: Round[] = [];
  const baseline: Round[] = [];
  const runOne = async (round: number, which: 'ours' | 'lookup' | 'theirs'): Promise<void> => {
    if (which !== 'theirs') {
      const a = await runOurs('wk', 'host', round, which === 'lookup' ? 'lookup' : undefined);
      (which === 'ours' ? ours : lookupFloor).push({
        cpuPer: a.cpuMs / a.sent,
        rate: (a.sent / a.wallMs) * 1000,
        sent: a.sent,
        azuritePer: a.azuriteCpuMs / a.sent,
      });
      return;
    }
    const b = await runTheirs(round);
    const bSent = sentCount(b.tally);
    baseline.push({
      cpuPer: b.cpuMs / bSent,
      rate: (bSent / b.wallMs) * 1000,
      sent: bSent,
      azuritePer: b.azuriteCpuMs / bSent,
    });
  };
  for (let round = 0; round < p.workerRounds; round += 1) {
    // Who goes first rotates too: the machine's load drifts.
    const kinds = ['ours', 'theirs', 'lookup'] as const;
    for (let i = 0; i < kinds.length; i += 1) await runOne(round, kinds[(round + i) % kinds.length]!);
  }
  const floor = await runOurs('wk', 'host', p.workerRounds, 'post');
  const median = (values: number[]): number => {
    const sorted = [...values].sort((x, y) => x - y);
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  };
  const aCpuPer = median(ours.map((r) => r.cpuPer));
  const bCpuPer = median(baseline.map((r) => r.cpuPer));
  const aRate = median(ours.map((r) => r.rate));
  const bRate = median(baseline.map((r) => r.rate));
  const aAzurite = median(ours.map((r) => r.azuritePer));
  const lRate = median(lookupFloor.map((r) => r.rate));
  const bAzurite = median(baseline.map((r) => r.azuritePer));
  const allSent = [...ours, ...baseline].every((r) => r.sent === n);
  const cpuRatio = bCpuPer / aCpuPer;
  const met = allSent && cpuRatio >= OUTBOUND_MIN_CPU_RATIO && aRate > bRate;
  const each = (runs: Round[]): string =>
    runs.map((r) => `${fmtInt(r.rate)} jobs/s at ${fmt(r.cpuPer, 3)} ms (Azurite ${fmt(r.azuritePer, 2)})`).join(', ');
  print(
    renderTable(
      `3b. Queue workers: ${fmtInt(n)} jobs from a queue to ${fmtInt(n)} conversations, stub without delay or limits`,
      ['Worker (own process; median of the rounds)', 'jobs/s', 'CPU ms/job', 'Azurite CPU ms/job'],
      [
        [
          'teams-courier sender, host-like loop (receive 16 + 8, claim, send, record, delete)',
          fmtInt(aRate),
          fmt(aCpuPer, 3),
          fmt(aAzurite, 2),
        ],
        [
          'botbuilder worker (receive 32, table read, continueConversationAsync + sendActivity, delete)',
          fmtInt(bRate),
          fmt(bCpuPer, 3),
          fmt(bAzurite, 2),
        ],
        ['botbuilder / teams-courier', fmt(aRate / bRate, 2), fmt(cpuRatio, 2), fmt(bAzurite / aAzurite, 2)],
        [
          'breakdown: teams-courier, the same loop receiving and deleting through @azure/storage-queue (one round)',
          fmtInt((s.sent / s.wallMs) * 1000),
          fmt(s.cpuMs / s.sent, 3),
          fmt(s.azuriteCpuMs / s.sent, 2),
        ],
        [
          "floor without the record: the same loop reading the reference, then POSTing with the connector client (no claim or record; the botbuilder worker's work)",
          fmtInt(lRate),
          fmt(median(lookupFloor.map((r) => r.cpuPer)), 3),
          fmt(median(lookupFloor.map((r) => r.azuritePer)), 2),
        ],
        [
          'floor: the same loop POSTing each job with the connector client alone (no reference read, claim or record; one round)',
          fmtInt((floor.sent / floor.wallMs) * 1000),
          fmt(floor.cpuMs / floor.sent, 3),
          fmt(floor.azuriteCpuMs / floor.sent, 2),
        ],
      ],
      [
        `Target: at least ${OUTBOUND_MIN_CPU_RATIO}x less CPU per job than the botbuilder worker, and more jobs/s -> ${verdict(met)} (${fmt(cpuRatio, 2)}x less CPU, ${fmt(aRate / bRate, 2)}x the jobs/s).`,
        "teams-courier does more per job: the claim and the outcome record (once per job id, the status API) on top of the reference read. Both read the same seeded reference rows and talk to the same stubs; CPU is each worker process's own (process.cpuUsage), from its first receive to its last delete.",
        `The loop plays the Functions host: it receives and deletes with the local host's queue client (host/queueClients.ts: direct HTTP calls, src/store/queueRest.ts), as \`npm start\` does. In Azure the host is a .NET process and does this outside the Node worker; the breakdown row is the same worker with the SDK's queue client instead, ${fmt(s.cpuMs / s.sent - aCpuPer, 3)} ms/job more.`,
        `Every run has a fresh Azurite, seeded with the same ${fmtInt(n)} references (see queueWorkers). Azurite CPU is the emulator's own while the worker runs: storage's share of each job. Azurite serves requests on one thread; when that thread is busy throughout, jobs/s is 1,000 / Azurite's ms per job, whatever the worker does.`,
        `${p.workerRounds} rounds of ${fmtInt(n)} jobs each, the order rotating. teams-courier: ${each(ours)}; botbuilder: ${each(baseline)}; without the record: ${each(lookupFloor)}.`,
        `Outcomes of the one-round rows: SDK queue client ${JSON.stringify(s.tally)} (polls ${String(s.polls)}, empty ${String(s.emptyPolls)}), floor ${JSON.stringify(floor.tally)}.`,
      ],
    ),
  );
  return met;
}
