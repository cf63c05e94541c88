/**
 * Child process: teams-courier's real delivery path (src/outbound/processJob.ts) with the
 * dependencies the app itself builds (src/runtime.ts getSenderDeps, configured through app
 * settings): tables and queues on Azurite, @azure/identity's ClientSecretCredential against the
 * Entra stub, the keep-alive undici connector client against the Bot Connector stub, and the app's
 * rate limiter. Only the Functions host is left out; this process plays its part.
 *
 * Modes (BENCH_CONFIG.mode):
 * - `throughput`: processJobMessage for `count` in-memory jobs, `concurrency` at a time, after a
 *   warm-up on other conversations. Reports wall time and this process's CPU.
 * - `connector`: the same sends through the app's connector client alone (token cache + keep-alive
 *   POST, no store, no delivery record, no limiter, no log): the transport's share of the cost.
 * - `broadcast`: a host-like loop over the Azurite job queue (receive `batchSize`, fetch again when
 *   at most `newBatchThreshold` are running, polling back-off up to `maxPollingMs`) until every job
 *   is sent or failed, or `deadlineMs` passes. Deferred and retried jobs come back through the queue.
 *
 * Prints one result message and exits.
 */
import { QueueClient } from '@azure/storage-queue';
import { QueueClients, type HostQueue } from '../host/queueClients';
import { SETTINGS } from '../src/config';
import { createSendBudget, type SendBudget } from '../src/outbound/sendBudget';
import { createBudgetRoster } from '../src/store/budgetRoster';
import { createLogger, type LogLevel } from '../src/log';
import { processJobMessage, type JobResult, type SenderDeps } from '../src/outbound/processJob';
import { getConfig, getSenderDeps, getTableClient, resetRuntime } from '../src/runtime';
import { observeDirectRequests, type TableClient } from '../src/store/tableClients';
import { TABLES } from '../src/store/tables';
import { childConfig, cpuMsSince, emit, installLoopbackGuard, runPool, sleep } from './lib/common';
import { BENCH_APP_ID, BENCH_BOT_NAME, BENCH_USER_TENANT, benchConversationId } from './lib/identities';

export interface OutboundWorkerConfig {
  readonly mode: 'throughput' | 'connector' | 'broadcast';
  readonly connectionString: string;
  /** The stub world's app settings (bot identity, Entra authority, trusted Connector origin): `StubReady.appSettings`. */
  readonly appSettings: Readonly<Record<string, string>>;
  /** Where the seeded references point (the Connector stub's `/amer/`). */
  readonly serviceUrl: string;
  readonly runId: string;
  /** Conversation id prefix of the measured jobs (benchConversationId(prefix, i)). */
  readonly prefix: string;
  readonly count: number;
  readonly concurrency: number;
  /** Throughput: warm-up jobs to benchConversationId(warmupPrefix, i) before measuring. */
  readonly warmupPrefix?: string;
  readonly warmup?: number;
  /** Rate limiter tenant budget per second (the app default is 50). */
  readonly tenantRatePerSecond: number;
  readonly batchSize?: number;
  readonly newBatchThreshold?: number;
  readonly maxPollingMs?: number;
  /**
   * Broadcast: who receives and deletes the messages in the host's stead. `host` (the default): the
   * local host's own queue client (host/queueClients.ts, direct HTTP calls); `sdk`: @azure/storage-queue's.
   */
  readonly hostQueue?: 'host' | 'sdk';
  /**
   * Broadcast: the floors of the loop, what is left when parts of the sender go. `post`: each job is
   * POSTed with the connector client alone, no reference read, claim or record. `lookup`: the
   * reference is read through the app's conversation store first (the botbuilder worker's work),
   * still no claim or record: what the once-only record alone costs is the distance to the full loop.
   */
  readonly floor?: 'post' | 'lookup';
  readonly deadlineMs: number;
}

const config = childConfig<OutboundWorkerConfig>();

/** Counts table requests (table + method + status): the SDK's through a pipeline policy, the direct ones through their observer. */
function countRequests(client: TableClient, into: Record<string, number>, label: string): void {
  observeDirectRequests(client, (method, status) => {
    const key = `${label} ${method} ${status}`;
    into[key] = (into[key] ?? 0) + 1;
  });
  client.pipeline.addPolicy({
    name: 'benchRequestCounter',
    async sendRequest(request, next) {
      let status: string = 'error';
      try {
        const response = await next(request);
        status = String(response.status);
        return response;
      } catch (err) {
        // The SDK's deserialization turns a 404/409/412 into a RestError inside the pipeline.
        const code = (err as { statusCode?: unknown }).statusCode;
        if (typeof code === 'number') status = String(code);
        throw err;
      } finally {
        const key = `${label} ${request.method} ${status}`;
        into[key] = (into[key] ?? 0) + 1;
      }
    },
  });
}

/**
 * The app's send budget, unchanged, except that every granted slot (acquire returned 0) is noted
 * with its time, per scope key (the conversation id), so the delay from slot to arrival at the
 * Connector can be measured.
 */
function recordingAcquisitions(inner: SendBudget, into: Record<string, number[]>, answeredAfter: number[]): SendBudget {
  return {
    instanceId: inner.instanceId,
    prepare: (tenantId) => inner.prepare(tenantId),
    waitTime: (conversationId, tenantId) => inner.waitTime(conversationId, tenantId),
    throttled: (conversationId, tenantId, untilMs) => inner.throttled(conversationId, tenantId, untilMs),
    close: () => inner.close(),
    settle: (conversationId, tenantId, slot) => {
      if (slot.grantedAt !== undefined) answeredAfter.push(Date.now() - slot.grantedAt);
      inner.settle(conversationId, tenantId, slot);
    },
    acquire: async (conversationId, tenantId, slot) => {
      const wait = await inner.acquire(conversationId, tenantId, slot);
      if (wait === 0) (into[conversationId] ??= []).push(Date.now());
      return wait;
    },
  };
}

/**
 * The app's own composition root (src/runtime.ts getSenderDeps), configured through the same app
 * settings as in Azure. Throughput mode swaps in a send budget with a tenant rate no run reaches.
 */
function buildDeps(
  requests: Record<string, number>,
  logs: Record<LogLevel, number>,
  samples: string[],
  acquired: Record<string, number[]>,
  answeredAfter: number[] = [],
): { deps: SenderDeps; jobs: Promise<HostQueue>; close(): Promise<void> } {
  // Hermetic: only the settings given here, whatever the parent's environment holds.
  for (const setting of SETTINGS) delete process.env[setting.name];
  Object.assign(process.env, {
    ...config.appSettings,
    AzureWebJobsStorage: config.connectionString,
    ...(config.mode === 'broadcast' ? { BOT_TENANT_RATE_PER_SECOND: String(config.tenantRatePerSecond) } : {}),
  });
  resetRuntime();
  const { outbound } = getConfig();
  for (const name of Object.values(TABLES)) countRequests(getTableClient(name), requests, name);
  // Formatted and redacted like in production (context.log); counted instead of written.
  const log = createLogger((level, line) => {
    logs[level] += 1;
    if ((level === 'warn' || level === 'error') && samples.length < 5) samples.push(line.slice(0, 500));
  });
  const appDeps = getSenderDeps(log);
  const budget =
    config.mode === 'throughput'
      ? createSendBudget({
          roster: createBudgetRoster(getTableClient(TABLES.budget)),
          ratePerSecond: config.tenantRatePerSecond,
        })
      : appDeps.budget;
  const deps: SenderDeps = { ...appDeps, budget: recordingAcquisitions(budget, acquired, answeredAfter) };
  // The host's view of the job queue (receive / delete), separate from the app's own queue client.
  const jobs: Promise<HostQueue> =
    config.hostQueue === 'sdk'
      ? Promise.resolve(new QueueClient(config.connectionString, outbound.queueName))
      : new QueueClients().get({
          connection: {
            kind: 'connectionString',
            settingName: 'AzureWebJobsStorage',
            connectionString: config.connectionString,
          },
          queueName: outbound.queueName,
        });
  return {
    deps,
    jobs,
    // Leave the budget's roster before exiting, as a host does on shutdown: the next worker of the
    // run would otherwise see this one as a live member and wait to join its tenant.
    close: async () => {
      await deps.budget.close();
      resetRuntime();
    },
  };
}

function jobText(prefix: string, i: number): string {
  return JSON.stringify({
    id: `bench-${config.runId}-${prefix}-${i}`,
    to: { conversationId: benchConversationId(prefix, i) },
    text: `Benchmark message ${i}: the build passed.`,
  });
}

/** What the sender POSTs for a plain text job (src/core/outgoing.ts), straight to the connector client. */
function postDirectly(deps: SenderDeps, conversationId: string, text: string): Promise<{ status: number }> {
  const activity = {
    type: 'message',
    from: { id: `28:${BENCH_APP_ID}`, name: BENCH_BOT_NAME },
    conversation: { id: conversationId, tenantId: BENCH_USER_TENANT },
    text,
    textFormat: 'markdown',
  };
  return deps.connector.sendToConversation(config.serviceUrl, conversationId, activity);
}

type Tally = Record<string, number>;
function tallyResult(tally: Tally, result: JobResult): void {
  const key =
    result.status === 'failed' || result.status === 'retrying' ? `${result.status}:${result.code}` : result.status;
  tally[key] = (tally[key] ?? 0) + 1;
}

async function throughput(): Promise<Record<string, unknown>> {
  const requests: Record<string, number> = {};
  const logs: Record<LogLevel, number> = { debug: 0, info: 0, warn: 0, error: 0 };
  const samples: string[] = [];
  const { deps, close } = buildDeps(requests, logs, samples, {});
  const deadline = Date.now() + config.deadlineMs;
  const errors: string[] = [];

  const run = async (
    prefix: string,
    n: number,
  ): Promise<{ tally: Tally; wallMs: number; cpuMs: number; timedOut: boolean }> => {
    const tally: Tally = {};
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    const { timedOut } = await runPool(n, config.concurrency, deadline, async (i) => {
      try {
        if (config.mode === 'connector') {
          const answer = await postDirectly(
            deps,
            benchConversationId(prefix, i),
            `Benchmark message ${i}: the build passed.`,
          );
          const key = answer.status >= 200 && answer.status < 300 ? 'sent' : `http:${answer.status}`;
          tally[key] = (tally[key] ?? 0) + 1;
          return;
        }
        // Like the Functions host with messageEncoding "none": JSON text is parsed before the call.
        const result = await processJobMessage(
          JSON.parse(jobText(prefix, i)),
          { messageId: `m-${prefix}-${i}`, dequeueCount: 1 },
          deps,
        );
        tallyResult(tally, result);
      } catch (err) {
        tally.thrown = (tally.thrown ?? 0) + 1;
        if (errors.length < 5) errors.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
      }
    });
    return { tally, wallMs: performance.now() - t0, cpuMs: cpuMsSince(cpu), timedOut };
  };

  const warmup = config.warmup && config.warmupPrefix ? await run(config.warmupPrefix, config.warmup) : undefined;
  for (const key of Object.keys(requests)) delete requests[key];
  for (const key of Object.keys(logs) as LogLevel[]) logs[key] = 0;
  const measured = await run(config.prefix, config.count);
  await close();
  return {
    mode: config.mode,
    warmup,
    measured,
    requests,
    logs,
    samples,
    errors,
    rssMb: process.memoryUsage().rss / 1048576,
  };
}

async function broadcast(): Promise<Record<string, unknown>> {
  const requests: Record<string, number> = {};
  const logs: Record<LogLevel, number> = { debug: 0, info: 0, warn: 0, error: 0 };
  const samples: string[] = [];
  const acquired: Record<string, number[]> = {};
  const answeredAfter: number[] = [];
  const built = buildDeps(requests, logs, samples, acquired, answeredAfter);
  const { deps, close } = built;
  const jobs = await built.jobs;
  const batchSize = config.batchSize ?? 16;
  const threshold = config.newBatchThreshold ?? 8;
  const maxPollingMs = config.maxPollingMs ?? 2_000;
  const t0 = Date.now();
  const deadline = t0 + config.deadlineMs;
  const cpu = process.cpuUsage();

  const tally: Tally = {};
  const finished = new Set<string>();
  const sentAt: number[] = [];
  const errors: string[] = [];
  let invocations = 0;
  let thrown = 0;
  let polls = 0;
  let emptyPolls = 0;
  const inflight = new Set<Promise<void>>();

  const handle = async (m: {
    messageId: string;
    popReceipt: string;
    messageText: string;
    dequeueCount: number;
  }): Promise<void> => {
    let input: unknown = m.messageText;
    try {
      input = JSON.parse(m.messageText);
    } catch {
      // base64 or garbage: the sender decodes or rejects it
    }
    invocations += 1;
    try {
      const result =
        config.floor !== undefined
          ? await postOnly(input, config.floor)
          : await processJobMessage(input, { messageId: m.messageId, dequeueCount: m.dequeueCount }, deps);
      tallyResult(tally, result);
      if (result.status === 'sent') {
        sentAt.push(Date.now());
        finished.add(result.jobId);
      } else if (result.status === 'failed' || result.status === 'skipped') {
        finished.add(result.jobId);
      }
      await jobs.deleteMessage(m.messageId, m.popReceipt);
    } catch (err) {
      // Like the host: not deleted, so it comes back after the visibility timeout.
      thrown += 1;
      if (errors.length < 5) errors.push(err instanceof Error ? `${err.name}: ${err.message}` : String(err));
    }
  };

  const postOnly = async (input: unknown, floor: 'post' | 'lookup'): Promise<JobResult> => {
    const job = input as { id: string; to: { conversationId: string }; text: string };
    if (floor === 'lookup' && (await deps.conversations.get(job.to.conversationId)) === undefined)
      throw new Error(`no reference for ${job.to.conversationId}`);
    const answer = await postDirectly(deps, job.to.conversationId, job.text);
    if (answer.status >= 300) throw new Error(`the stub answered ${answer.status}`);
    return { status: 'sent', jobId: job.id, conversationId: job.to.conversationId, ambiguous: false };
  };

  let pollDelay = 100;
  while (finished.size < config.count && Date.now() < deadline) {
    if (inflight.size > threshold) {
      await Promise.race(inflight);
      continue;
    }
    polls += 1;
    let received: { messageId: string; popReceipt: string; messageText: string; dequeueCount: number }[];
    try {
      received = (await jobs.receiveMessages({ numberOfMessages: batchSize, visibilityTimeout: 30 }))
        .receivedMessageItems;
    } catch (err) {
      if (errors.length < 5) errors.push(`receive: ${err instanceof Error ? err.message : String(err)}`);
      received = [];
    }
    if (received.length === 0) {
      emptyPolls += 1;
      // The host's randomized exponential back-off (host/queueListener.ts), from 100 ms to maxPollingInterval.
      await sleep(Math.min(pollDelay, Math.max(0, deadline - Date.now())));
      pollDelay = Math.min(maxPollingMs, pollDelay * 2 * (0.8 + Math.random() * 0.4));
      continue;
    }
    pollDelay = 100;
    for (const m of received) {
      const p: Promise<void> = handle(m).finally(() => inflight.delete(p));
      inflight.add(p);
    }
  }
  const endedAt = Date.now();
  // Let what is running finish (each job is bounded by the connector timeout).
  await Promise.race([Promise.allSettled([...inflight]), sleep(20_000)]);
  const cpuMs = cpuMsSince(cpu);
  await close();
  const firstSent = sentAt.length > 0 ? Math.min(...sentAt) : undefined;
  const lastSent = sentAt.length > 0 ? Math.max(...sentAt) : undefined;
  return {
    mode: 'broadcast',
    startedAt: t0,
    endedAt,
    wallMs: endedAt - t0,
    timedOut: finished.size < config.count,
    finished: finished.size,
    sent: sentAt.length,
    firstSentAt: firstSent ?? null,
    lastSentAt: lastSent ?? null,
    tally,
    invocations,
    thrown,
    polls,
    emptyPolls,
    cpuMs,
    requests,
    logs,
    samples,
    errors,
    acquired,
    answeredAfterMs: answeredAfter,
  };
}

async function main(): Promise<void> {
  installLoopbackGuard();
  const result = config.mode === 'broadcast' ? await broadcast() : await throughput();
  emit(result);
  // Let stdout drain, then leave even if a keep-alive socket lingers.
  setTimeout(() => process.exit(0), 100).unref();
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
