/**
 * Bench section 4, broadcast under limits: one tenant's recipients through the app's sender and a
 * host-like queue loop, against a Connector stub enforcing Teams' published limits: time against the
 * theoretical minimum, and 429s. See bench/README.md "4. Broadcast under limits".
 */
import path from 'node:path';
import { QueueClient } from '@azure/storage-queue';
import { WINDOW_SAFETY_MS } from '../src/core/rateLimiter';
import type { BenchRig } from './lib/benchRig';
import { BENCH_DIST, fmt, fmtInt, print, renderTable, runPool, stubClientEnv, summarize, verdict } from './lib/common';
import { benchConversationId } from './lib/identities';
import { conversationStore, seedPersonalChats } from './lib/seeding';
import type { OutboundWorkerConfig } from './outboundWorker';

export interface BroadcastParams {
  readonly recipients: number;
  /** The app's BOT_TENANT_RATE_PER_SECOND. */
  readonly tenantRate: number;
  /** host.json queue `batchSize` and `newBatchThreshold` of the host-like loop. */
  readonly batchSize: number;
  readonly newBatchThreshold: number;
  readonly deadlineMs: number;
}

export const BROADCAST_FULL: BroadcastParams = {
  recipients: 1000,
  tenantRate: 50,
  batchSize: 16,
  newBatchThreshold: 8,
  deadlineMs: 120_000,
};
export const BROADCAST_QUICK: BroadcastParams = {
  recipients: 200,
  tenantRate: 50,
  batchSize: 16,
  newBatchThreshold: 8,
  deadlineMs: 60_000,
};

/** The targets from the issue: share of the allowed rate, and of requests throttled. */
export const BROADCAST_TARGETS = { minShareOfAllowed: 0.965, maxThrottledShare: 0.005 };

export async function broadcast(p: BroadcastParams, rig: BenchRig): Promise<boolean> {
  const storage = await rig.azurite();
  const { handle: stubs, ready } = await rig.stubs({ rateLimit: true, strictActivities: true });
  const serviceUrl = ready.serviceUrl;
  const store = conversationStore(storage.connectionString);
  await seedPersonalChats(store, p.recipients, { prefix: 'bc', serviceUrl, salt: 5 });

  const runId = Date.now().toString(36);
  const jobs = new QueueClient(storage.connectionString, 'outbound-messages');
  await jobs.createIfNotExists();
  await new QueueClient(storage.connectionString, 'outbound-messages-poison').createIfNotExists();
  const enqueue = await runPool(p.recipients, 16, Date.now() + 120_000, async (i) => {
    await jobs.sendMessage(
      JSON.stringify({
        id: `bench-${runId}-bc-${i}`,
        to: { conversationId: benchConversationId('bc', i) },
        text: `Broadcast ${i}: maintenance tonight at 22:00.`,
      }),
    );
  });
  if (enqueue.timedOut) throw new Error('broadcast: enqueueing timed out');
  await stubs.request({ cmd: 'reset' });

  const workerConfig: OutboundWorkerConfig = {
    mode: 'broadcast',
    connectionString: storage.connectionString,
    appSettings: ready.appSettings,
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
  const worker = rig.child({
    label: 'broadcast worker',
    args: [path.join(BENCH_DIST, 'outboundWorker.js')],
    env: stubClientEnv(),
    config: workerConfig,
    firstTimeoutMs: p.deadlineMs + 60_000,
  });
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
  // Delay from the slot to Teams' answer: an answer within the margin lets the send count from it.
  const answeredAfter = (result.answeredAfterMs ?? []) as number[];
  const answer = summarize(answeredAfter);
  const withinMargin = answeredAfter.filter((ms) => ms < WINDOW_SAFETY_MS).length / Math.max(1, answeredAfter.length);

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
  const met =
    !result.timedOut &&
    failures === 0 &&
    share >= BROADCAST_TARGETS.minShareOfAllowed &&
    throttledShare < BROADCAST_TARGETS.maxThrottledShare;
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
        [
          'Connector requests / 429s',
          `${fmtInt(stubStats.requests)} / ${fmtInt(throttled)} (${fmt(throttledShare * 100, 2)} %)`,
        ],
        [
          'Limiter slot -> arrival at the stub, p50 / p99 / max ms',
          `${fmt(delay.p50, 0)} / ${fmt(delay.p99, 0)} / ${fmt(delay.max, 0)}`,
        ],
        [
          `Limiter slot -> Teams' answer, p50 / p99 / max ms (answered within the ${WINDOW_SAFETY_MS} ms margin)`,
          `${fmt(answer.p50, 0)} / ${fmt(answer.p99, 0)} / ${fmt(answer.max, 0)} (${fmt(withinMargin * 100, 1)} %)`,
        ],
        [
          '429s by limit (stub)',
          Object.entries((stub.throttledBy ?? {}) as Record<string, number>)
            .map(([k, v]) => `${k} ${fmtInt(v)}`)
            .join(', ') || 'none',
        ],
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
        `Target: at least ${fmt(BROADCAST_TARGETS.minShareOfAllowed * 100, 1)} % of the allowed rate and under ${fmt(BROADCAST_TARGETS.maxThrottledShare * 100, 1)} % of requests throttled -> ${verdict(met)}${result.timedOut ? ' (TIMED OUT)' : ''}.`,
        `The app's own limiter (BOT_TENANT_RATE_PER_SECOND=${p.tenantRate}, conversation windows, ${p.tenantRate} per second plus up to its ${WINDOW_SAFETY_MS} ms safety margin: a send counts from the earlier of its answer and its slot plus the margin) paces the sends; the stub answers 429 past Teams' limits (50/s per app per tenant, 7/1 s, 8/2 s, 60/30 s per conversation).`,
        `Host-like loop over the Azurite queue: receive ${p.batchSize}, fetch again when at most ${p.newBatchThreshold} are running (up to ${p.batchSize + p.newBatchThreshold} in flight), visibility 30 s, empty-poll back-off 100 ms..2 s; jobs the sender puts back (deferred or retried: ${fmtInt((tally.deferred ?? 0) + retried)}) come back through the queue.`,
        `Outcomes: ${JSON.stringify(tally)}.`,
      ],
    ),
  );
  const errors = result.errors as string[] | undefined;
  if (errors?.length) print(`broadcast error samples: ${errors.join(' | ')}`);
  return met;
}
