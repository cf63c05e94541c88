/**
 * The stats rollup against Azurite: three instances count a seeded set of delivery records, flush
 * into the hourly rows, and `readStats` / `teams-courier stats` give exactly what the records say,
 * at one batch transaction per flush; then the real sender's outcomes through `deps.stats`.
 */
import { describe, expect, it } from 'vitest';
import { Faults, fixtureActivity, mulberry32 } from '../../host/emulator';
import { LATENCY_BUCKETS_MS, latencyBucket, type StatsOutcome } from '../../src/core/stats';
import { createStatsRollup, readStats, UNKNOWN_TENANT, type StatsRollup } from '../../src/store/statsRollup';
import type { TableClient } from '../../src/store/tableClients';
import { TABLES } from '../../src/store/tables';
import { run } from '../cli/helpers';
import { useSenderEnv } from '../helpers/senderEnv';

const env = useSenderEnv();

/** The table, counting the batch transactions made through it. */
function countingTable(table: TableClient): { table: TableClient; transactions: () => number } {
  let transactions = 0;
  const proxy = new Proxy(table, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'submitTransaction' && typeof value === 'function') {
        return (...args: unknown[]) => {
          transactions += 1;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { table: proxy, transactions: () => transactions };
}

interface SeededRecord {
  readonly tenantId?: string;
  readonly status: 'sent' | 'failed';
  readonly code?: string;
  readonly createdAt: number;
  readonly doneAt: number;
  readonly throttled: number;
}

const TENANTS = ['tenant-a', 'tenant-b', 'tenant-c', undefined];
const CODES = ['BotNotRegistered', 'ConversationBlockedByUser', 'ConversationNotFound', 'Throttled'];

/** 600 delivery records over the last 100 minutes (two or three hour partitions), from one seed. */
function seededRecords(now: number): SeededRecord[] {
  const random = mulberry32(20261125);
  return Array.from({ length: 600 }, () => {
    const tenantId = TENANTS[Math.floor(random() * TENANTS.length)];
    const createdAt = now - 100 * 60_000 + Math.floor(random() * 95 * 60_000);
    // Mostly a second or two; some minutes (a backlog, a retry's backoff).
    const latency = random() < 0.9 ? Math.floor(random() * 2_500) : Math.floor(random() * 300_000);
    const failed = random() < 0.1;
    return {
      ...(tenantId === undefined ? {} : { tenantId }),
      status: failed ? 'failed' : 'sent',
      ...(failed ? { code: CODES[Math.floor(random() * CODES.length)] } : {}),
      createdAt,
      doneAt: createdAt + latency,
      throttled: random() < 0.05 ? 1 : 0,
    } as SeededRecord;
  });
}

function outcomesOf(r: SeededRecord): StatsOutcome[] {
  const tenant = r.tenantId === undefined ? {} : { tenantId: r.tenantId };
  const out: StatsOutcome[] = [];
  for (let i = 0; i < r.throttled; i += 1)
    out.push(
      { kind: 'throttled', at: new Date(r.doneAt), ...tenant },
      { kind: 'retry', at: new Date(r.doneAt), code: 'Throttled', ...tenant },
    );
  out.push(
    r.status === 'sent'
      ? { kind: 'sent', at: new Date(r.doneAt), latencyMs: r.doneAt - r.createdAt, ...tenant }
      : { kind: 'failed', at: new Date(r.doneAt), code: r.code!, ...tenant },
  );
  return out;
}

/** What the records themselves say: counts, failures by code, exact nearest-rank percentiles. */
function expected(records: readonly SeededRecord[]) {
  const sent = records.filter((r) => r.status === 'sent');
  const failedByCode: Record<string, number> = {};
  for (const r of records) if (r.status === 'failed') failedByCode[r.code!] = (failedByCode[r.code!] ?? 0) + 1;
  const latencies = sent.map((r) => r.doneAt - r.createdAt).sort((a, b) => a - b);
  const nearestRank = (p: number): number | undefined =>
    latencies[Math.max(1, Math.ceil((p / 100) * latencies.length)) - 1];
  // The histogram reports the upper bound of the bucket the exact value falls in.
  const bound = (v: number | undefined): number | undefined =>
    v === undefined ? undefined : (LATENCY_BUCKETS_MS[latencyBucket(v)] ?? Infinity);
  return {
    sent: sent.length,
    failed: records.length - sent.length,
    failedByCode,
    throttled: records.reduce((n, r) => n + r.throttled, 0),
    p50: bound(nearestRank(50)),
    p99: bound(nearestRank(99)),
    max: latencies.at(-1) ?? 0,
  };
}

describe('the stats rollup', () => {
  it('adds up three instances exactly, from a seeded set of records, at one transaction per flush', async () => {
    const e = env();
    const now = Date.now();
    const records = seededRecords(now);
    const counting = countingTable(e.storage.table(TABLES.stats));
    const instances: StatsRollup[] = ['i-one', 'i-two', 'i-three'].map((instanceId) =>
      createStatsRollup({ table: counting.table, instanceId, flushIntervalMs: 0, now: () => new Date(now) }),
    );
    records.forEach((r, i) => {
      for (const outcome of outcomesOf(r)) instances[i % 3]!.record(outcome);
      // Flushes in between: each replaces the instance's rows with its running totals.
      if (i === 300) for (const instance of instances) void instance.flush();
    });
    await Promise.all(instances.map((i) => i.flush()));
    // Idempotent: flushing again with nothing new writes nothing; and a repeated write changes nothing.
    const before = counting.transactions();
    await Promise.all(instances.map((i) => i.flush()));
    expect(counting.transactions()).toBe(before);
    // At most one batch per hour partition per instance per flush (5 rows each: all + 4 tenants).
    expect(before).toBeLessThanOrEqual(3 * 3 * 2);

    const report = await readStats(e.storage.table(TABLES.stats), {
      from: new Date(now - 2 * 3_600_000),
      to: new Date(now),
    });
    const want = expected(records);
    expect(report.totals).toMatchObject({
      sent: want.sent,
      failed: want.failed,
      failedByCode: want.failedByCode,
      throttled: want.throttled,
      latencyMaxMs: want.max,
    });
    expect(report.totals.retried).toBe(want.throttled);

    // One tenant, and every tenant.
    const onlyA = await readStats(e.storage.table(TABLES.stats), {
      from: new Date(now - 2 * 3_600_000),
      to: new Date(now),
      tenantId: 'tenant-a',
    });
    expect(onlyA.totals).toMatchObject({
      sent: expected(records.filter((r) => r.tenantId === 'tenant-a')).sent,
      failed: expected(records.filter((r) => r.tenantId === 'tenant-a')).failed,
    });
    const perTenant = await readStats(e.storage.table(TABLES.stats), {
      from: new Date(now - 2 * 3_600_000),
      to: new Date(now),
      byTenant: true,
    });
    expect([...perTenant.byTenant!.keys()].sort()).toEqual(['tenant-a', 'tenant-b', 'tenant-c', UNKNOWN_TENANT].sort());
    expect(perTenant.byTenant!.get(UNKNOWN_TENANT)!.sent).toBe(
      expected(records.filter((r) => r.tenantId === undefined)).sent,
    );
    expect(perTenant.totals.sent).toBe(want.sent);

    // The CLI reads the same rows and adds the queue counts.
    const cli = await run(['stats', '--since', '2h', '--json'], {
      env: { AzureWebJobsStorage: e.storage.azurite.connectionString, OUTBOUND_QUEUE: e.config.queueName },
    });
    expect(cli.code, cli.stderr).toBe(0);
    const json = JSON.parse(cli.stdout) as Record<string, unknown> & { enqueueToSent: Record<string, unknown> };
    expect(json).toMatchObject({
      sent: want.sent,
      failed: want.failed,
      failedByCode: want.failedByCode,
      throttled: want.throttled,
      pending: expect.any(Number),
      poisoned: expect.any(Number),
    });
    expect(json.enqueueToSent).toMatchObject({ p50Ms: want.p50, p99Ms: want.p99, maxMs: want.max });

    const text = await run(['stats', '--since', '2h', '--tenant', 'tenant-b'], {
      env: { AzureWebJobsStorage: e.storage.azurite.connectionString, OUTBOUND_QUEUE: e.config.queueName },
    });
    expect(text.stdout).toContain('for tenant tenant-b');
    expect(text.stdout).toMatch(
      new RegExp(`^sent\\s+${expected(records.filter((r) => r.tenantId === 'tenant-b')).sent}\\b`, 'm'),
    );
    expect(text.stdout).toMatch(/^enqueue→sent\s+p50 ≤ /m);
  });

  it('reads a window with no counts as zeros, without a table', async () => {
    const e = env();
    const report = await readStats(e.storage.table('statsneverwritten'), {
      from: new Date(Date.now() - 3_600_000),
      to: new Date(),
    });
    expect(report).toMatchObject({ rows: 0, totals: { sent: 0, failed: 0 } });
  });

  it("counts the real sender's outcomes: sent with the time from enqueue, throttled, failed by code", async () => {
    const e = env();
    const rollup = createStatsRollup({
      table: e.storage.table(TABLES.stats),
      instanceId: 'sender-test',
      flushIntervalMs: 0,
    });
    const tenantId = 'tenant-sender-stats';
    const chat = async (conversationId: string) => {
      const activity = fixtureActivity('message.personal', {
        serviceUrl: e.connector.serviceUrl('amer'),
        conversationId,
      });
      (activity.conversation as Record<string, string>).tenantId = tenantId;
      await e.capture(activity);
    };
    await chat('a:stats-ok');
    await chat('a:stats-429');
    await chat('a:stats-blocked');
    e.connector.injectFault(Faults.throttle(1), { match: { conversationId: 'a:stats-429' }, times: 1 });
    e.connector.injectFault(Faults.error('ConversationBlockedByUser'), {
      match: { conversationId: 'a:stats-blocked' },
      times: 1,
    });
    const queuedAt = new Date(Date.now() - 60_000);
    await e.enqueue({ id: 'stats-ok', to: { conversationId: 'a:stats-ok' }, text: 'x' });
    await e.enqueue({ id: 'stats-429', to: { conversationId: 'a:stats-429' }, text: 'x' });
    await e.enqueue({ id: 'stats-blocked', to: { conversationId: 'a:stats-blocked' }, text: 'x' });
    await e.drain({ deps: { stats: { queuedAt, record: (o) => rollup.record(o) } } });
    await rollup.flush();

    const report = await readStats(e.storage.table(TABLES.stats), {
      from: new Date(Date.now() - 3_600_000),
      to: new Date(),
      tenantId,
    });
    expect(report.totals).toMatchObject({
      sent: 2,
      failed: 1,
      failedByCode: { ConversationBlockedByUser: 1 },
      throttled: 1,
      retried: 1,
    });
    // Enqueued a minute ago (the queue message's insertion time): about a minute from enqueue to sent.
    expect(report.totals.latencyMaxMs).toBeGreaterThanOrEqual(60_000);
    const sentLine = e.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.event === 'job.sent' && l.jobId === 'stats-ok');
    expect(sentLine).toMatchObject({ tenantId, queuedMs: expect.any(Number) });
    const retryLine = e.logs
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.event === 'job.retrying' && l.jobId === 'stats-429');
    expect(retryLine).toMatchObject({ throttled: true, httpStatus: 429, tenantId });
    await rollup.close();
  });
});
