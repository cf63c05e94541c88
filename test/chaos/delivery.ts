/**
 * Part 1, delivery under faults: jobs to many conversations while the Bot Connector stub injects,
 * at random (seeded), every failure Teams can give, including the two that hide a delivered
 * message (a drop after the stub accepted it, and an answer slower than the client timeout). The
 * app is SIGKILLed once mid-run, while the stub holds one of its calls open, and started again, and
 * Azurite is stopped for a few seconds once.
 *
 * Every job must end `sent` (the stub has it at least once) or `failed` (with a reason, in the
 * record and in the poison queue), and every outcome must follow from what the stub and the harness
 * saw, never from what the app says about itself:
 * - a job fails only on a 500, or after its attempts ran out on transient faults; a transient
 *   fault is always followed by another try;
 * - a job arrives more than once only when as many of its deliveries went unseen by the app: an
 *   ambiguous fault the stub injected (it delivered, then dropped the connection or answered after
 *   the client's timeout), a call the stub held open when the app was killed, a delivery the app had
 *   not recorded when it died (the harness reads the table while the app is down), or one answered
 *   while storage was stopped. The app's own `ambiguousResends` counter is reported, not trusted.
 */
import { expect } from 'vitest';
import { Faults, personalMessage, type ConnectorRequestRecord, type RandomFaultKind } from '../../host/emulator';
import {
  APP_ID,
  CONNECTOR_TIMEOUT_MS,
  MAX_ATTEMPTS,
  OUTBOUND_QUEUE,
  PLAN,
  SEED,
  jobIdOfText,
  mapLimit,
  printTable,
  rngFor,
  sleep,
  waitFor,
  type ChaosRig,
} from './harness';

/** Per-request probability of each fault (about 28 % of requests fail one way or another). */
export const FAULT_PROBABILITIES: Readonly<Partial<Record<RandomFaultKind, number>>> = {
  throttle: 0.03,
  throttleHttpDate: 0.025,
  throttleNoRetryAfter: 0.02,
  preconditionFailed: 0.025,
  serviceError: 0.015,
  badGateway: 0.025,
  serviceUnavailable: 0.025,
  gatewayTimeout: 0.025,
  drop: 0.03,
  dropAfterAccept: 0.025,
  delay: 0.025,
};

/** How long the stub holds the call the SIGKILL lands in: well past the kill and the restart. */
const HOLD_AT_KILL_MS = 4_000;

const FAULT_LABELS: readonly (readonly [RegExp, string])[] = [
  [new RegExp(`^delay ${HOLD_AT_KILL_MS}ms$`), 'a call held open across the SIGKILL (then delivered)'],
  [/^429 \(Retry-After \d+s as seconds\)$/, '429, Retry-After in seconds'],
  [/^429 \(Retry-After \d+s as http-date\)$/, '429, Retry-After as an HTTP date'],
  [/^429 \(Retry-After absent\)$/, '429, no Retry-After'],
  [/^412 /, '412 PreconditionFailed'],
  [/^500 /, '500 ServiceError (not retried)'],
  [/^502 /, '502 BadGateway'],
  [/^503 /, '503 ServiceUnavailable'],
  [/^504 /, '504 GatewayTimeout'],
  [/^drop$/, 'connection dropped before a response'],
  [/^drop after accept$/, 'dropped after accepting (ambiguous)'],
  [/^delay /, `answer after ${CONNECTOR_TIMEOUT_MS + 500} ms > client timeout (ambiguous)`],
];

function faultLabel(fault: string): string {
  return FAULT_LABELS.find(([pattern]) => pattern.test(fault))?.[1] ?? fault;
}

/** A request whose outcome the app could not see although the stub delivered the message. */
function isAmbiguous(record: ConnectorRequestRecord): boolean {
  return record.fault === 'drop after accept' || (record.fault?.startsWith('delay') ?? false);
}

/**
 * The app records `sent` right after the answer. A delivery this long before the kill that the
 * table (read while the app was down) does not show as sent was lost with the process.
 */
const KILL_WINDOW_MS = 5_000;
/**
 * While storage is down, the app keeps trying to record a delivery for half its lease (three
 * connector timeouts plus 15 s: docs/delivery.md, docs/reliability.md). Only storage that stays
 * down longer than that after the answer can make it lose the record.
 */
const RECORD_RETRY_MS = (3 * CONNECTOR_TIMEOUT_MS + 15_000) / 2;

/** A fault (or the stub's own 429) the sender must retry: anything but a 500. */
function isTransient(record: ConnectorRequestRecord): boolean {
  if (record.throttled !== undefined) return true;
  if (record.fault === undefined) return false;
  return !record.fault.startsWith('500 ');
}

interface Conversation {
  readonly id: string;
  readonly tenantId: string;
  readonly serviceUrl: string;
  readonly user: { id: string; name: string; aadObjectId: string };
}

interface Job {
  readonly id: string;
  readonly text: string;
  readonly conversation: Conversation;
  readonly message: string;
}

export async function deliveryUnderFaults(rig: ChaosRig): Promise<void> {
  const rng = rngFor('delivery');
  const prefix = `p1-${SEED}-`;
  const regions = ['amer', 'emea', 'apac', 'teams'];
  const tenants = Array.from(
    { length: PLAN.tenants },
    (_, i) => `7c0a0000-0000-4000-8000-${String(i + 1).padStart(12, '0')}`,
  );
  const conversations: Conversation[] = Array.from({ length: PLAN.conversations }, (_, i) => ({
    id: `a:chaos-delivery-${SEED}-${i}`,
    tenantId: tenants[i % tenants.length]!,
    serviceUrl: rig.connector.serviceUrl(regions[i % regions.length]),
    user: {
      id: `29:chaos-delivery-user-${i}`,
      name: `Delivery User ${i}`,
      aadObjectId: `d0000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    },
  }));

  // The app learns every conversation from a signed activity, as from Teams.
  await mapLimit(conversations, 8, async (c) => {
    const answer = await rig.postSigned(
      personalMessage({
        appId: APP_ID,
        tenantId: c.tenantId,
        serviceUrl: c.serviceUrl,
        user: c.user,
        conversationId: c.id,
        text: 'hello',
      }),
    );
    expect(answer.status, `capture of ${c.id}: ${answer.body}`).toBe(200);
  });

  const forms = { conversation: 0, user: 0, raw: 0, base64: 0 };
  const jobs: Job[] = Array.from({ length: PLAN.jobs }, (_, i) => {
    const conversation = conversations[i % conversations.length]!;
    const id = `${prefix}${i}`;
    const text = `[job:${id}] chaos delivery ${i}`;
    const form = rng.weighted([
      [85, 'conversation'],
      [10, 'user'],
      [5, 'raw'],
    ] as const);
    forms[form] += 1;
    const body =
      form === 'conversation'
        ? { id, to: { conversationId: conversation.id }, text }
        : form === 'user'
          ? { id, to: { aadObjectId: conversation.user.aadObjectId, tenantId: conversation.tenantId }, text }
          : { id, type: 'message', conversation: { id: conversation.id }, text };
    const json = JSON.stringify(body);
    const base64 = rng.chance(0.3);
    if (base64) forms.base64 += 1;
    return { id, text, conversation, message: base64 ? Buffer.from(json).toString('base64') : json };
  });

  const requestsBefore = rig.connector.requests.length;
  const deliveredBefore = rig.connector.delivered.length;
  rig.connector.setRandomFaults({
    seed: SEED,
    probabilities: FAULT_PROBABILITIES,
    retryAfterSeconds: 1,
    delayMs: CONNECTOR_TIMEOUT_MS + 500,
  });
  const started = Date.now();
  const chaos = {
    killedAt: 0,
    exitedAt: 0,
    inFlightAtKill: 0,
    restartMs: 0,
    outageAt: 0,
    outageMs: 0,
    outage: { stoppedAt: 0, startedAt: 0 },
    heldSeq: -1,
  };
  /** Our jobs recorded `sent` in the table as it was while the app was down after the kill. */
  const sentAtKill = new Set<string>();
  let drainedAt: number;
  try {
    const delivered = new Set<string>();
    let scanned = deliveredBefore;
    const progress = (): number => {
      const all = rig.connector.delivered;
      for (; scanned < all.length; scanned += 1) {
        const id = jobIdOfText(all[scanned]!.activity?.text);
        if (id?.startsWith(prefix)) delivered.add(id);
      }
      return delivered.size;
    };

    await rig.enqueue(jobs.map((j) => j.message));

    // The crash: SIGKILL once a quarter of the jobs arrived (or after 20 s), then start again.
    await waitFor(
      'a quarter of the jobs delivered',
      120_000,
      () => (progress() >= jobs.length * 0.25 || Date.now() - started > 20_000 ? true : undefined),
      50,
    );
    // Kill while the app has a Bot Connector call open: that is the crash the ambiguous window is
    // about. The stub holds the next call for one of these jobs open (then delivers it), so there
    // is one; without it the test fails here rather than kill at a quiet moment.
    const ours = (ctx: { operation: string; body: unknown }): boolean =>
      ctx.operation === 'sendToConversation' &&
      (jobIdOfText((ctx.body as { text?: unknown } | undefined)?.text)?.startsWith(prefix) ?? false);
    rig.connector.injectFault(Faults.delay(HOLD_AT_KILL_MS), { match: ours, times: 1 });
    const held = await waitFor(
      'a Bot Connector call held open at the stub',
      60_000,
      () =>
        rig.connector.requests.find(
          (r, k) => k >= requestsBefore && r.outcome === 'pending' && r.fault === `delay ${HOLD_AT_KILL_MS}ms`,
        ),
      5,
    );
    chaos.heldSeq = held.seq;
    chaos.killedAt = Date.now();
    chaos.inFlightAtKill = rig.connector.requests.filter(
      (r, k) => k >= requestsBefore && r.outcome === 'pending',
    ).length;
    await rig.app.kill();
    chaos.exitedAt = Date.now();
    expect(held.outcome, 'the held call was still open when the app died').toBe('pending');
    // The table as the app left it: nothing writes to it until the restart.
    for (const r of await rig.scan('deliveries', ['jobId', 'status']))
      if (r.status === 'sent' && String(r.jobId).startsWith(prefix)) sentAtKill.add(String(r.jobId));
    await sleep(1_000);
    const restart = Date.now();
    await rig.app.start();
    chaos.restartMs = Date.now() - restart;

    // The outage: Azurite stopped for a few seconds once more than half arrived (or 20 s later).
    const afterRestart = Date.now();
    await waitFor(
      'more than half of the jobs delivered',
      180_000,
      () => (progress() >= jobs.length * 0.55 || Date.now() - afterRestart > 20_000 ? true : undefined),
      50,
    );
    chaos.outageAt = Date.now();
    const outage = await rig.storage.outage(PLAN.outageMs);
    chaos.outage = outage;
    chaos.outageMs = outage.startedAt - outage.stoppedAt;

    // Drain: every job sent or failed, and nothing left on the queue (visible or not).
    const ids = new Set(jobs.map((j) => j.id));
    try {
      await waitFor(
        'every job to reach sent or failed, and the queue to empty',
        PLAN.drainLimitMs,
        async () => {
          const rows = await rig.scan('deliveries', ['jobId', 'status']);
          const terminal = rows.filter(
            (r) => ids.has(String(r.jobId)) && (r.status === 'sent' || r.status === 'failed'),
          ).length;
          if (terminal < jobs.length) return undefined;
          return (await rig.queueLength(OUTBOUND_QUEUE)) === 0 ? true : undefined;
        },
        1_000,
      );
    } catch (err) {
      const rows = await rig.scan('deliveries').catch(() => []);
      const stuck = rows.filter((r) => ids.has(String(r.jobId)) && r.status !== 'sent' && r.status !== 'failed');
      const missing = jobs.filter((j) => !rows.some((r) => r.jobId === j.id)).map((j) => j.id);
      throw new Error(
        `${(err as Error).message}\n${stuck.length} jobs not finished: ${JSON.stringify(stuck.slice(0, 5).map((r) => ({ jobId: r.jobId, status: r.status, attempts: r.attempts, lastErrorCode: r.lastErrorCode, leaseUntil: r.leaseUntil, history: r.history })))}\n` +
          `${missing.length} jobs without a record: ${missing.slice(0, 10).join(', ')}\nqueue: ${await rig.queueLength(OUTBOUND_QUEUE).catch(() => -1)}\n${rig.log.tail(20)}`,
        { cause: err },
      );
    }
    drainedAt = Date.now();
  } finally {
    rig.connector.clearFaults();
  }

  // ---- Verdict per job, from the stub's and the harness's own observations ------------------
  await rig.readPoison();
  const requests = rig.connector.requests.slice(requestsBefore);
  const requestsByJob = new Map<string, ConnectorRequestRecord[]>();
  const faultCounts = new Map<string, number>();
  let ambiguousInjected = 0;
  let ambiguousDelivered = 0;
  let stubThrottled = 0;
  for (const r of requests) {
    if (r.fault !== undefined) faultCounts.set(faultLabel(r.fault), (faultCounts.get(faultLabel(r.fault)) ?? 0) + 1);
    if (r.throttled !== undefined) stubThrottled += 1;
    if (isAmbiguous(r)) {
      ambiguousInjected += 1;
      if (r.delivered) ambiguousDelivered += 1;
    }
    const id = jobIdOfText((r.body as { text?: unknown } | undefined)?.text);
    if (id !== undefined) requestsByJob.set(id, [...(requestsByJob.get(id) ?? []), r]);
  }
  /**
   * Why the app may not have seen that this delivery happened, as the harness saw it (or undefined).
   * Each delivery counts once, for the first reason that applies.
   */
  const unseenBecause = (r: ConnectorRequestRecord, jobId: string): string | undefined => {
    const finished = r.finishedAt ?? Number.POSITIVE_INFINITY;
    if (r.time <= chaos.exitedAt && finished >= chaos.killedAt) return 'in flight at the kill';
    if (finished < chaos.killedAt && finished >= chaos.killedAt - KILL_WINDOW_MS && !sentAtKill.has(jobId))
      return 'not recorded when the app died';
    if (isAmbiguous(r)) return 'ambiguous fault';
    if (finished >= chaos.outage.stoppedAt && chaos.outage.startedAt - finished >= RECORD_RETRY_MS)
      return 'answered while storage stayed stopped for longer than the app retries';
    return undefined;
  };
  const unseenCounts = new Map<string, number>();

  const records = new Map(
    (await rig.scan('deliveries')).filter((r) => String(r.jobId).startsWith(prefix)).map((r) => [String(r.jobId), r]),
  );
  const poisoned = new Map(
    rig.poison.filter((p) => p.teamsCourier?.jobId.startsWith(prefix)).map((p) => [p.teamsCourier!.jobId, p]),
  );
  const hostPoisoned = rig.poison.filter((p) => p.teamsCourier === undefined && p.raw.includes(prefix));
  const failedCodes = new Map<string, number>();
  let sent = 0;
  let failed = 0;
  let once = 0;
  let duplicatedJobs = 0;
  let duplicateDeliveries = 0;
  let ambiguousResends = 0;
  let jobsWithTakeover = 0;
  const problems: string[] = [];
  for (const job of jobs) {
    const record = records.get(job.id);
    const mine = requestsByJob.get(job.id) ?? [];
    const got = mine.filter((r) => r.delivered);
    const resends = Number(record?.ambiguousResends ?? 0);
    ambiguousResends += resends;
    if (resends > 0) jobsWithTakeover += 1;
    let unseen = 0;
    for (const r of got) {
      const why = unseenBecause(r, job.id);
      if (why === undefined) continue;
      unseen += 1;
      unseenCounts.set(why, (unseenCounts.get(why) ?? 0) + 1);
    }
    const seen = `${got.length} deliveries, ${unseen} of them unseen by the app; requests ${JSON.stringify(mine.map((r) => r.fault ?? r.status))}`;
    if (got.length === 1) once += 1;
    if (got.length > 1) {
      duplicatedJobs += 1;
      duplicateDeliveries += got.length - 1;
      if (got.length - 1 > unseen)
        problems.push(`${job.id}: delivered more often than the ambiguous window explains: ${seen}`);
    }
    if (got.some((d) => d.conversationId !== job.conversation.id))
      problems.push(`${job.id}: delivered to the wrong conversation`);
    // A transient fault is always tried again, unless the job gave up on transient faults.
    const gaveUp = record?.status === 'failed' && String(record.lastErrorReason ?? '').startsWith('gave up after ');
    mine.forEach((r, i) => {
      if (isTransient(r) && i === mine.length - 1 && !gaveUp)
        problems.push(`${job.id}: "${r.fault ?? `stub ${r.status}`}" was not tried again: ${seen}`);
    });
    if (record?.status === 'sent') {
      sent += 1;
      if (got.length === 0) problems.push(`${job.id}: recorded sent, never delivered`);
      if (!got.some((d) => d.assignedActivityId === record.activityId))
        problems.push(`${job.id}: recorded activity id ${String(record.activityId)} is not one the stub issued`);
    } else if (record?.status === 'failed') {
      failed += 1;
      const code = String(record.lastErrorCode ?? '(none)');
      failedCodes.set(code, (failedCodes.get(code) ?? 0) + 1);
      if (typeof record.lastErrorReason !== 'string' || record.lastErrorReason === '')
        problems.push(`${job.id}: failed without a reason`);
      if (!poisoned.get(job.id)?.teamsCourier?.reason)
        problems.push(`${job.id}: failed but not in the poison queue with a reason`);
      if (got.length > unseen) problems.push(`${job.id}: failed but delivered: ${seen}`);
      // Only two failures are right here: Teams' 500, and attempts spent on transient faults.
      const last = mine.at(-1);
      if (gaveUp) {
        // Every try met a transient fault; the crash and the outage may each have used one attempt without a request.
        if (mine.some((r) => !isTransient(r)) || mine.length < MAX_ATTEMPTS - 2)
          problems.push(
            `${job.id}: gave up, but its requests do not show ${MAX_ATTEMPTS} transient faults: ${seen} (${String(record.lastErrorReason)})`,
          );
      } else if (!(last?.fault?.startsWith('500 ') === true && code === 'ServiceError')) {
        problems.push(
          `${job.id}: failed with ${code} (${String(record.lastErrorReason)}), which the stub's answers do not explain: ${seen}`,
        );
      }
    } else {
      problems.push(`${job.id}: status ${String(record?.status ?? 'no record')}`);
    }
  }
  const lost = jobs.length - sent - failed;
  const heldRequest = requests.find((r) => r.seq === chaos.heldSeq);

  printTable('1. Delivery under faults', [
    ['jobs enqueued (plain / base64)', `${jobs.length} (${jobs.length - forms.base64} / ${forms.base64})`],
    [
      'targets: conversationId / user (aadObjectId) / raw activity',
      `${forms.conversation} / ${forms.user} / ${forms.raw}`,
    ],
    ['conversations / tenants', `${conversations.length} / ${tenants.length}`],
    ['Bot Connector requests', requests.length],
    ['faults injected', [...faultCounts.values()].reduce((a, b) => a + b, 0)],
    ...[...faultCounts].sort(([a], [b]) => a.localeCompare(b)).map(([label, n]) => [`  ${label}`, n] as const),
    ["429 from the stub's own Teams rate limits", stubThrottled],
    [
      'SIGKILL of the app (requests in flight at the kill)',
      `1 (${chaos.inFlightAtKill}, one of them held open by the stub), back serving in ${chaos.restartMs} ms`,
    ],
    ['Azurite stopped', `1 × ${(chaos.outageMs / 1000).toFixed(1)} s`],
    ['**sent**', sent],
    [
      '**failed, with a reason** (by code)',
      `${failed} (${[...failedCodes].map(([c, n]) => `${c} ${n}`).join(', ') || 'none'})`,
    ],
    ['**lost**', lost],
    ['delivered exactly once', once],
    ['jobs delivered more than once / extra deliveries', `${duplicatedJobs} / ${duplicateDeliveries}`],
    ['ambiguous faults injected / of them delivered', `${ambiguousInjected} / ${ambiguousDelivered}`],
    [
      'deliveries the app could not have seen, by why (harness)',
      [...unseenCounts].map(([why, n]) => `${why}: ${n}`).join(', ') || 'none',
    ],
    ['lease takeovers the app recorded (ambiguousResends) / jobs', `${ambiguousResends} / ${jobsWithTakeover}`],
    [
      'duplicates not explained by the ambiguous window',
      problems.filter((p) => p.includes('more often than the ambiguous window')).length,
    ],
    [
      "failures or missed retries the stub's answers do not explain",
      problems.filter((p) => p.includes('do not explain') || p.includes('not tried again') || p.includes('do not show'))
        .length,
    ],
    ['moved to poison by the host (no reason)', hostPoisoned.length],
    ['time from first enqueue to drained', `${((drainedAt - started) / 1000).toFixed(1)} s`],
  ]);

  // The kill landed in the ambiguous window: the held call was delivered after the app died.
  expect(chaos.inFlightAtKill).toBeGreaterThan(0);
  expect(heldRequest?.delivered, 'the call held at the kill was delivered').toBe(true);
  expect(problems, problems.slice(0, 20).join('\n')).toEqual([]);
  expect(lost).toBe(0);
  expect(hostPoisoned).toHaveLength(0);
  expect(sent + failed).toBe(jobs.length);
  expect(await rig.queueLength(OUTBOUND_QUEUE)).toBe(0);
  expect(rig.app.exits.filter((e) => e.signal !== 'SIGKILL')).toHaveLength(0);
}
